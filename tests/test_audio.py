"""Tests for aqaa.audio: loading, validation, writing and in-memory FLAC."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aqaa import audio
from aqaa.audio import (
    AudioError,
    check_waveform,
    decode_audio_bytes,
    encode_flac,
    lift_quiet,
    load_audio,
    peak_dbfs,
    peak_normalize,
    save_audio,
    trim_silence,
)

SR = 16000
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg not installed"
)


def sine(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(wav: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wav))
    return float(np.fft.rfftfreq(wav.size, 1 / sr)[np.argmax(spec)])


# --- errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load_audio(p)


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.wav: empty file \(0 bytes\)"):
        load_audio(p)


def test_corrupt_file(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match="corrupt.wav: not") as info:
        load_audio(p)
    assert isinstance(info.value, ValueError)


def test_text_file_is_not_audio(tmp_path):
    p = tmp_path / "notes.flac"
    p.write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.flac"):
        load_audio(p)


def test_zero_length_wav(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), SR)
    assert p.stat().st_size > 0  # a valid header with no frames, not an empty file
    with pytest.raises(AudioError, match=r"zero.wav: zero-length audio"):
        load_audio(p)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_non_finite_samples_in_file(tmp_path, bad, word):
    wav = sine()
    wav[100] = bad
    p = tmp_path / "bad.wav"
    sf.write(p, wav, SR, subtype="FLOAT")  # float WAV keeps NaN/inf intact
    with pytest.raises(AudioError, match=rf"bad.wav: non-finite samples.*{word}"):
        load_audio(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_in_array(bad):
    wav = sine()
    wav[5] = bad
    with pytest.raises(AudioError, match="<array>: non-finite"):
        check_waveform(wav)


def test_too_long_checked_from_header(tmp_path, monkeypatch):
    p = tmp_path / "long.wav"
    sf.write(p, sine(seconds=2.0), SR)

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded samples although the header already showed the file is too long")

    monkeypatch.setattr(audio.sf, "read", no_decode)
    with pytest.raises(AudioError, match=r"long.wav: too long: 2.0 s exceeds the limit of 1.5 s"):
        load_audio(p, max_seconds=1.5)


def test_max_seconds_allows_shorter(tmp_path):
    p = tmp_path / "ok.wav"
    sf.write(p, sine(seconds=1.0), SR)
    assert load_audio(p, max_seconds=1.5).size == SR


def test_check_waveform_errors():
    with pytest.raises(AudioError, match="<array>: zero-length"):
        check_waveform(np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="shape"):
        check_waveform(np.zeros((2, 3, 100), dtype=np.float32))
    with pytest.raises(AudioError, match="dtype"):
        check_waveform(np.array(["a", "b"]))
    with pytest.raises(AudioError, match="clip: too long"):
        check_waveform(np.zeros(SR * 3, dtype=np.float32), name="clip", max_seconds=2.0, sample_rate=SR)


# --- decoding and conversion ----------------------------------------------------------------------


def test_stereo_mixdown(tmp_path):
    left, right = sine(amp=0.6), sine(amp=0.2)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    wav = load_audio(p, normalize=False)
    assert wav.ndim == 1 and wav.dtype == np.float32
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-6)


def test_check_waveform_channel_layouts():
    stereo = np.stack([sine(amp=0.6), sine(amp=0.2)])  # (channels, n)
    a = check_waveform(stereo)
    b = check_waveform(stereo.T)  # (n, channels)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, sine(amp=0.4), atol=1e-6)


def test_check_waveform_int16_scaled():
    wav = check_waveform(np.array([0, 16384, -32768], dtype=np.int16))
    assert wav.dtype == np.float32
    np.testing.assert_allclose(wav, [0.0, 0.5, -1.0])


def test_resample_22050_to_16000(tmp_path):
    p = tmp_path / "hi.wav"
    sf.write(p, sine(freq=1000.0, seconds=2.0, sr=22050), 22050)
    wav = load_audio(p, sample_rate=16000)
    assert wav.shape == (32000,)
    assert dominant_freq(wav, 16000) == pytest.approx(1000.0, abs=2.0)


def test_peak_normalisation(tmp_path):
    p = tmp_path / "quiet.wav"
    sf.write(p, sine(amp=0.1), SR, subtype="FLOAT")
    assert np.max(np.abs(load_audio(p))) == pytest.approx(0.95, abs=1e-4)
    assert np.max(np.abs(load_audio(p, normalize=False))) == pytest.approx(0.1, abs=1e-4)


def test_silence_is_not_scaled(tmp_path):
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(SR, dtype=np.float32), SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would surface as a RuntimeWarning
        wav = load_audio(p)
    assert wav.shape == (SR,) and not wav.any()


def test_peak_normalize_extremes():
    tiny = np.array([1e-40, -2e-40, 0.0], dtype=np.float32)  # denormals: 0.95/peak overflows float32
    out = peak_normalize(tiny)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, [0.475, -0.95, 0.0], rtol=1e-5)
    zeros = np.zeros(8, dtype=np.float32)
    assert not peak_normalize(zeros).any()


def test_lift_quiet_raises_only_recordings_below_the_floor():
    quiet = sine(amp=10 ** (-30 / 20))
    assert peak_dbfs(quiet) == pytest.approx(-30.0, abs=1e-3)
    lifted, gain = lift_quiet(quiet, below_dbfs=-22.0, to_dbfs=-10.0)
    assert gain == pytest.approx(20.0, abs=1e-3) and peak_dbfs(lifted) == pytest.approx(-10.0, abs=1e-3)
    assert lifted.dtype == np.float32
    np.testing.assert_allclose(lifted, quiet * 10.0, rtol=1e-5, atol=1e-9)
    in_range = sine(amp=10 ** (-21 / 20))  # the corpus's quietest questions: a cue the LM reads, left alone
    same, gain = lift_quiet(in_range, -22.0, -10.0)
    assert gain == 0.0 and same is in_range
    silence = np.zeros(100, dtype=np.float32)
    assert lift_quiet(silence, -22.0, -10.0)[1] == 0.0 and peak_dbfs(silence) == -np.inf
    with pytest.raises(ValueError, match="to_dbfs"):
        lift_quiet(quiet, -10.0, -22.0)


def test_trim_silence_cuts_long_quiet_ends_to_the_kept_margins():
    tone = sine(seconds=1.0)
    hiss = (np.random.default_rng(0).normal(0, 1e-4, SR)).astype(np.float32)  # -80 dB under the tone's peak
    wav = np.concatenate([np.zeros(2 * SR, dtype=np.float32), tone, hiss])
    cut, lead, trail = trim_silence(wav, SR, below_peak_db=40, keep_lead_s=0.25, keep_trail_s=0.5)
    assert lead == pytest.approx(1.75, abs=0.011) and trail == pytest.approx(0.5, abs=0.011)
    np.testing.assert_array_equal(cut, wav[round(lead * SR): len(wav) - round(trail * SR)])
    assert np.abs(cut[: round(0.24 * SR)]).max() == 0 and np.abs(cut[round(0.26 * SR):]).max() > 0.1
    # margins already within the kept ones are left alone, as are silence and empty audio
    same, lead, trail = trim_silence(cut, SR, 40, 0.25, 0.5)
    assert (lead, trail) == (0.0, 0.0) and len(same) == len(cut)
    for nothing in (np.zeros(SR, dtype=np.float32), np.zeros(0, dtype=np.float32)):
        assert trim_silence(nothing, SR, 40, 0.25, 0.5)[1:] == (0.0, 0.0)
    # a threshold below the hiss keeps it
    assert trim_silence(wav, SR, below_peak_db=90, keep_lead_s=0.25, keep_trail_s=0.5)[2] == 0.0
    with pytest.raises(ValueError, match="below_peak_db"):
        trim_silence(wav, SR, 0, 0.25, 0.5)


def test_output_clipped_to_unit_range(tmp_path):
    p = tmp_path / "hot.wav"
    sf.write(p, sine(amp=2.0), SR, subtype="FLOAT")
    wav = load_audio(p, normalize=False)
    assert np.max(np.abs(wav)) <= 1.0


@needs_ffmpeg
def test_mp3(tmp_path):
    src = tmp_path / "tone.wav"
    sf.write(src, sine(freq=440.0, seconds=1.0, sr=22050, amp=0.3), 22050)
    mp3 = tmp_path / "tone.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), str(mp3)], check=True)
    wav = load_audio(mp3, sample_rate=SR)
    assert abs(wav.size - SR) < 0.1 * SR  # encoder padding adds a few ms
    assert np.max(np.abs(wav)) == pytest.approx(0.95, abs=1e-3)
    assert dominant_freq(wav, SR) == pytest.approx(440.0, abs=3.0)


@needs_ffmpeg
def test_m4a_uses_ffmpeg_fallback(tmp_path):
    # libsndfile reads mp3 itself, but not AAC/m4a, so this exercises the ffmpeg path for sure.
    src = tmp_path / "tone.wav"
    sf.write(src, np.stack([sine(amp=0.3), sine(amp=0.1)], axis=1), SR)
    m4a = tmp_path / "tone.m4a"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-c:a", "aac", str(m4a)], check=True
    )
    with pytest.raises(sf.SoundFileError):
        sf.info(str(m4a))
    wav = load_audio(m4a, sample_rate=SR)
    assert abs(wav.size - SR) < 0.1 * SR
    assert dominant_freq(wav, SR) == pytest.approx(440.0, abs=3.0)
    with pytest.raises(AudioError, match="tone.m4a: too long"):
        load_audio(m4a, max_seconds=0.5)


def test_unreadable_without_ffmpeg(tmp_path, monkeypatch):
    p = tmp_path / "voice.m4a"
    p.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match="voice.m4a: .*ffmpeg not available"):
        load_audio(p)


# --- writing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_load_round_trip(tmp_path, suffix):
    wav = sine(amp=0.5)
    p = tmp_path / "nested" / "dir" / f"out{suffix}"
    save_audio(p, wav, SR)
    info = sf.info(str(p))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    back = load_audio(p, normalize=False)
    np.testing.assert_allclose(back, wav, atol=1.5 / 32768)
    assert sorted(x.name for x in p.parent.iterdir()) == [p.name]  # no temp files left behind


def test_save_replaces_atomically_and_cleans_up_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "out.wav"
    save_audio(p, sine(amp=0.5), SR)
    save_audio(p, sine(amp=0.25), SR)  # overwriting works
    assert np.max(np.abs(load_audio(p, normalize=False))) == pytest.approx(0.25, abs=1e-3)
    before = p.read_bytes()

    def broken_write(file, *args, **kwargs):
        Path(file).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(audio.sf, "write", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        save_audio(p, sine(amp=0.9), SR)
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["out.wav"]


def test_save_clips_instead_of_wrapping(tmp_path):
    p = tmp_path / "hot.wav"
    save_audio(p, np.array([0.5, 1.7, -3.0, 0.0], dtype=np.float32), SR)
    back, _ = sf.read(p, dtype="int16")
    np.testing.assert_array_equal(back, [16384, 32767, -32768, 0])


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(AudioError, match=r"out.mp3: unsupported output format"):
        save_audio(tmp_path / "out.mp3", sine(), SR)
    with pytest.raises(AudioError, match="non-finite"):
        save_audio(tmp_path / "out.wav", np.array([0.0, np.nan], dtype=np.float32), SR)
    assert not (tmp_path / "out.wav").exists()


# --- in-memory FLAC ---------------------------------------------------------------------------------


def test_flac_bytes_round_trip():
    wav = sine(amp=0.7, sr=24000)
    data = encode_flac(wav, 24000)
    assert data[:4] == b"fLaC"
    back, sr = decode_audio_bytes(data)
    assert sr == 24000 and back.dtype == np.float32
    np.testing.assert_allclose(back, wav, atol=1.5 / 32768)
    resampled, sr16 = decode_audio_bytes(data, sample_rate=16000)
    assert sr16 == 16000 and resampled.size == 16000


def test_decode_bad_bytes():
    with pytest.raises(AudioError, match="<bytes>: empty"):
        decode_audio_bytes(b"")
    with pytest.raises(AudioError, match="<bytes>: not decodable"):
        decode_audio_bytes(b"RIFF" + bytes(100))
    with pytest.raises(AudioError, match="<array>: non-finite"):
        encode_flac(np.array([np.inf], dtype=np.float32), SR)
