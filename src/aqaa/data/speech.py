"""Speech synthesis for the corpus: flite and espeak-ng voices with controllable prosody, and festival's voices,
which no training data uses: they are the held-out voices that evaluation speaks in.

Every utterance comes back as float32 mono at the corpus sample rate, levelled to a reference peak and then
moved by the style's gain, so loud and quiet styles stay loud and quiet in the stored audio.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from aqaa.audio import resample

REFERENCE_PEAK = 0.5  # neutral speech peaks here (-6 dBFS): room for +6 dB "loud" before clipping


class SynthesisError(RuntimeError):
    """A synthesiser failed or produced no audio."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. `name` is the stable id stored in the corpus ("flite:awb", "espeak:en-us+f3")."""

    name: str
    engine: str  # "flite" | "espeak" | "festival"
    ident: str  # flite -voice NAME, espeak-ng -v SPEC, or festival's voice_NAME
    gender: str  # "male" | "female"
    base_f0: float  # median F0 of the voice's neutral speech in Hz (measured with pyin)
    pitch_control: bool = True  # flite's rms and festival's voices here ignore F0 targets


@dataclass(frozen=True)
class Prosody:
    """How to say something: multipliers on the voice's neutral rate and F0, and a level change."""

    rate: float = 1.0  # speaking-rate multiplier, > 1 is faster
    pitch: float = 1.0  # F0 multiplier
    gain_db: float = 0.0  # level relative to REFERENCE_PEAK
    expressive: float = 1.0  # F0 variation multiplier: 0 is monotone, > 1 livelier

    def scaled(self, rate: float = 1.0, pitch: float = 1.0, gain_db: float = 0.0) -> Prosody:
        """This prosody with a further (random) perturbation applied."""
        return Prosody(self.rate * rate, self.pitch * pitch, self.gain_db + gain_db, self.expressive)


FLITE_VOICES = {
    # name: (gender, median F0 Hz, honours F0 targets)
    "awb": ("male", 127.0, True),
    "kal": ("male", 100.0, True),
    "kal16": ("male", 89.0, True),
    "rms": ("male", 101.0, False),
    "slt": ("female", 172.0, True),
}
ESPEAK_VARIANT_GENDER = {
    **{f"m{i}": "male" for i in range(1, 8)},
    **{f"f{i}": "female" for i in range(1, 6)},
    "klatt": "male",
    "klatt2": "male",
}
ESPEAK_BASE_F0 = {"male": 95.0, "female": 186.0}  # measured medians of the variants (pyin)


FESTIVAL_VOICES = {
    # name: (gender, median F0 Hz); held out of every corpus (Debian: festvox-kdlpc16k, festvox-us-slt-hts)
    "ked_diphone": ("male", 100.0),  # a US male, LPC diphones: a speaker no training data has
    "cmu_us_slt_arctic_hts": ("female", 180.0),  # flite's slt speaker, through another synthesiser (HTS)
}


def festival_voice(ident: str) -> Voice:
    if ident not in FESTIVAL_VOICES:
        raise ValueError(f"unknown festival voice {ident!r}; known: {sorted(FESTIVAL_VOICES)}")
    gender, f0 = FESTIVAL_VOICES[ident]
    return Voice(f"festival:{ident}", "festival", ident, gender, f0, pitch_control=False)


def flite_voice(ident: str) -> Voice:
    if ident not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {ident!r}; known: {sorted(FLITE_VOICES)}")
    gender, f0, pitch_control = FLITE_VOICES[ident]
    return Voice(f"flite:{ident}", "flite", ident, gender, f0, pitch_control)


def espeak_voice(accent: str, variant: str) -> Voice:
    if variant not in ESPEAK_VARIANT_GENDER:
        raise ValueError(f"unknown espeak-ng variant {variant!r}; known: {sorted(ESPEAK_VARIANT_GENDER)}")
    gender = ESPEAK_VARIANT_GENDER[variant]
    spec = f"{accent}+{variant}"
    return Voice(f"espeak:{spec}", "espeak", spec, gender, ESPEAK_BASE_F0[gender])


def voice_from_name(name: str) -> Voice:
    """Inverse of `Voice.name`."""
    engine, _, ident = name.partition(":")
    if engine == "flite":
        return flite_voice(ident)
    if engine == "espeak" and "+" in ident:
        accent, _, variant = ident.partition("+")
        return espeak_voice(accent, variant)
    if engine == "festival":
        return festival_voice(ident)
    raise ValueError(f"not a voice name: {name!r} (expected 'flite:NAME', 'espeak:ACCENT+VARIANT' or 'festival:NAME')")


def require_synthesisers() -> None:
    """Fail early, with the fix, when a synthesiser binary is missing."""
    missing = [b for b in ("flite", "t2p", "espeak-ng") if shutil.which(b) is None]
    if missing:
        raise SynthesisError(
            f"missing synthesiser binaries: {', '.join(missing)}; install them with "
            "`sudo apt-get install flite espeak-ng` (or run `make setup`)"
        )


@dataclass
class Utterance:
    wav: np.ndarray  # (samples,) float32 at the requested sample rate
    phones: list[tuple[str, float]]  # flite only: (phone, end time in s); pauses are "pau"


def _quiet_audio_env(workdir: Path) -> dict[str, str]:
    """The environment for a synthesiser: ours, with PulseAudio's runtime directory pinned to `workdir`.

    espeak-ng 1.51 opens an audio device even when it writes to a file or stdout, and so starts a PulseAudio
    client. Where the client finds no runtime directory of its own (a fresh machine, a new $HOME, a cleaned
    /tmp), it makes one with a random name, and seeds the C library's `rand()` from /dev/urandom to draw it.
    espeak-ng's breath noise (the f1-f5 variants' `breath`) comes from that same unseeded `rand()`, so the first
    utterance in such a state sounded different from every later one, and a fresh machine's first corpus had
    other bytes than its second. With the path given, the client makes no random name and never seeds."""
    return {**os.environ, "PULSE_RUNTIME_PATH": str(workdir / "pulse")}


def _run(cmd: list[str], workdir: Path) -> bytes:
    proc = subprocess.run(cmd, capture_output=True, check=False, env=_quiet_audio_env(workdir))
    if proc.returncode != 0:
        raise SynthesisError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:300]}")
    return proc.stdout


def _flite(text: str, voice: Voice, prosody: Prosody, workdir: Path) -> tuple[np.ndarray, int, list]:
    wav_path = workdir / f"flite-{os.getpid()}.wav"
    cmd = ["flite", "-voice", voice.ident, "--setf", f"duration_stretch={1.0 / prosody.rate:.4f}"]
    if voice.pitch_control and (prosody.pitch != 1.0 or prosody.expressive != 1.0):
        f0 = voice.base_f0 * prosody.pitch
        # Default F0 spread is roughly 12% of the mean for these voices; scale it for expressiveness.
        cmd += ["--setf", f"int_f0_target_mean={f0:.1f}",
                "--setf", f"int_f0_target_stddev={0.12 * f0 * prosody.expressive:.1f}"]
    cmd += ["-psdur", "-t", text, "-o", str(wav_path)]
    out = _run(cmd, workdir).decode()
    audio, sr = sf.read(wav_path, dtype="float32")
    phones = []
    for item in out.split():
        phone, _, end = item.rpartition(":")
        phones.append((phone, float(end)))
    return audio, sr, phones


def _festival(text: str, voice: Voice, prosody: Prosody, workdir: Path) -> tuple[np.ndarray, int]:
    if shutil.which("text2wave") is None:
        raise SynthesisError("festival voices need festival's text2wave: `sudo apt-get install festival "
                             "festvox-kdlpc16k festvox-us-slt-hts` (or run `make setup`)")
    wav_path = workdir / f"festival-{os.getpid()}.wav"
    text_path = workdir / "text.txt"
    text_path.write_text(text)
    # Diphone voices take festival's duration stretch; HTS voices ignore it and take their engine's speed rate.
    rate = (f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {prosody.rate:.4f}))))'
            if voice.ident.endswith("_hts") else f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.4f})")
    _run(["text2wave", "-eval", f"(voice_{voice.ident})", "-eval", rate, "-o", str(wav_path), str(text_path)],
         workdir)
    audio, sr = sf.read(wav_path, dtype="float32")
    return audio, sr


def _espeak(text: str, voice: Voice, prosody: Prosody, workdir: Path) -> tuple[np.ndarray, int]:
    speed = int(round(175 * prosody.rate))
    pitch = int(round(min(99, max(0, 50 + 60 * math.log2(prosody.pitch)))))
    data = _run(["espeak-ng", "-v", voice.ident, "-s", str(speed), "-p", str(pitch), "--stdout", text], workdir)
    audio, sr = sf.read(io.BytesIO(data), dtype="float32")
    return audio, sr


def set_level(wav: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale to REFERENCE_PEAK, then apply gain_db; clip to [-1, 1]."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak == 0.0:
        return wav.astype(np.float32)
    scaled = wav * (REFERENCE_PEAK * 10 ** (gain_db / 20) / peak)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def synthesize(text: str, voice: Voice, prosody: Prosody, sample_rate: int, workdir: Path | None = None,
               level: bool = True) -> Utterance:
    """Speak `text` in `voice` with `prosody`; returns audio at `sample_rate` (levelled unless level=False)."""
    if not text.strip():
        raise SynthesisError("cannot synthesise empty text")
    phones: list[tuple[str, float]] = []
    if voice.engine == "flite":
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            audio, sr, phones = _flite(text, voice, prosody, Path(tmp))
    elif voice.engine == "espeak":
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            audio, sr = _espeak(text, voice, prosody, Path(tmp))
    elif voice.engine == "festival":
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            audio, sr = _festival(text, voice, prosody, Path(tmp))
    else:
        raise ValueError(f"unknown engine {voice.engine!r}")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise SynthesisError(f"{voice.name} produced no audio for {text!r}")
    audio = resample(audio.astype(np.float32), sr, sample_rate)
    if level:
        audio = set_level(audio, prosody.gain_db)
    return Utterance(audio, phones)
