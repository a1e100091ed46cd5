import shutil

import librosa
import numpy as np
import pytest

from aqaa.data.build import note_hz
from aqaa.data.effects import add_noise, add_room
from aqaa.data.speech import (
    REFERENCE_PEAK,
    Prosody,
    SynthesisError,
    espeak_voice,
    festival_voice,
    flite_voice,
    set_level,
    synthesize,
    voice_from_name,
)

pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                reason="synthesisers not installed")


def _median_f0(wav, sr=16000):
    """Median YIN F0 over the louder frames (fast; pyin is ten times slower)."""
    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=sr, frame_length=1024)
    rms = librosa.feature.rms(y=wav, frame_length=1024)[0][: len(f0)]
    return float(np.median(f0[: len(rms)][rms > 0.3 * rms.max()]))


def test_voice_names_round_trip():
    for voice in (flite_voice("slt"), espeak_voice("en", "f3"), festival_voice("ked_diphone")):
        assert voice_from_name(voice.name) == voice
    with pytest.raises(ValueError, match="not a voice name"):
        voice_from_name("sapi:kal")
    with pytest.raises(ValueError, match="unknown festival voice"):
        voice_from_name("festival:kal")


@pytest.mark.parametrize("voice", [flite_voice("kal16"), flite_voice("kal"), espeak_voice("en-us", "m3")])
def test_synthesis_resamples_and_levels(voice):
    utt = synthesize("Hello there, how are you?", voice, Prosody(), 16000)
    assert utt.wav.dtype == np.float32 and utt.wav.ndim == 1
    assert 0.8 < len(utt.wav) / 16000 < 3.0
    assert np.max(np.abs(utt.wav)) == pytest.approx(REFERENCE_PEAK, rel=1e-3)


def test_prosody_controls_rate_pitch_and_level():
    voice = flite_voice("kal16")
    text = "The capital of France is Paris."
    neutral = synthesize(text, voice, Prosody(), 16000).wav
    slow = synthesize(text, voice, Prosody(rate=0.65), 16000).wav
    high = synthesize(text, voice, Prosody(pitch=1.5), 16000).wav
    quiet = synthesize(text, voice, Prosody(gain_db=-14), 16000).wav
    assert len(slow) > 1.3 * len(neutral)
    assert _median_f0(high) > 1.3 * _median_f0(neutral)
    assert np.max(np.abs(quiet)) == pytest.approx(REFERENCE_PEAK * 10 ** (-14 / 20), rel=1e-3)


@pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival not installed")
@pytest.mark.parametrize("ident", ["ked_diphone", "cmu_us_slt_arctic_hts"])  # 16 and 32 kHz synthesisers
def test_festival_voices_speak_at_the_corpus_rate_and_honour_the_speaking_rate(ident):
    voice = festival_voice(ident)
    neutral = synthesize("One two three four five.", voice, Prosody(), 16000).wav
    slow = synthesize("One two three four five.", voice, Prosody(rate=0.7), 16000).wav
    assert neutral.dtype == np.float32 and 1.0 < len(neutral) / 16000 < 4.0
    assert np.max(np.abs(neutral)) == pytest.approx(REFERENCE_PEAK, rel=1e-3)
    assert len(slow) > 1.25 * len(neutral)
    assert 0.7 * voice.base_f0 < _median_f0(neutral) < 1.3 * voice.base_f0


def test_a_missing_festival_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SynthesisError, match="apt-get install festival"):
        synthesize("Hello.", festival_voice("ked_diphone"), Prosody(), 16000)


def test_espeak_pitch_and_rate():
    voice = espeak_voice("en-us", "m1")
    base = synthesize("One two three four five.", voice, Prosody(), 16000).wav
    fast_high = synthesize("One two three four five.", voice, Prosody(rate=1.5, pitch=1.4), 16000).wav
    assert len(fast_high) < 0.8 * len(base)
    assert _median_f0(fast_high) > 1.15 * _median_f0(base)


def test_note_frequencies():
    assert note_hz("A4") == pytest.approx(440.0)
    assert note_hz("C4") == pytest.approx(261.63, abs=0.01)
    assert note_hz("C3") == pytest.approx(130.81, abs=0.01)


def test_effects_keep_length_and_reach_the_snr():
    rng = np.random.default_rng(0)
    speech = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    noisy = add_noise(speech, 10.0, rng)
    snr = 10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    wet = add_room(speech, 0.3, 16000, rng)
    assert wet.shape == speech.shape and not np.allclose(wet, speech)


def test_set_level_leaves_silence_alone():
    assert not np.any(set_level(np.zeros(100, np.float32), 6.0))


def test_every_espeak_accent_honours_the_variant_gender():
    # "en-gb+f3" silently ignores its variant in espeak-ng; a gender label on such a voice would be a lie.
    from aqaa.data.config import ESPEAK_ACCENTS

    for accent in ESPEAK_ACCENTS:
        female = synthesize("How are you today?", espeak_voice(accent, "f3"), Prosody(), 16000).wav
        male = synthesize("How are you today?", espeak_voice(accent, "m1"), Prosody(), 16000).wav
        assert _median_f0(female) > 1.5 * _median_f0(male), accent


def test_espeak_speaks_alike_on_a_fresh_machine(tmp_path, monkeypatch):
    """espeak-ng's breath noise draws on the C library's rand(), which PulseAudio's client seeds from /dev/urandom
    when it first makes its runtime directory, as on a fresh machine; a new $HOME is such a first time. Every
    utterance must be the same whatever state the machine's audio client is in."""
    voice = espeak_voice("en-gb-scotland", "f3")  # a variant with breath noise

    def speak(home):
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        for name in ("PULSE_RUNTIME_PATH", "XDG_RUNTIME_DIR"):
            monkeypatch.delenv(name, raising=False)
        return synthesize("What is the opposite of full?", voice, Prosody(rate=1.06, pitch=1.09), 16000,
                          tmp_path).wav

    fresh = [speak(tmp_path / f"home{i}") for i in range(2)]
    warm = speak(tmp_path / "home1")
    assert np.array_equal(fresh[0], warm) and np.array_equal(fresh[1], warm)
