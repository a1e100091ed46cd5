"""Prosody measured from speech: speaking rate, pitch, pitch spread and loudness.

The evaluation scores style and emotion from these numbers, relative to the same voice's neutral speech, and
singing from the pitch of each sung syllable. Everything is measured on the audio alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import numpy as np

FRAME = 1024  # 64 ms at 16 kHz: long enough for a 60 Hz period
HOP = 256
F0_MIN, F0_MAX = 60.0, 500.0


@dataclass(frozen=True)
class Prosody:
    seconds: float  # speech span: first to last frame above the silence threshold
    words_per_second: float | None  # None when the word count is unknown
    median_f0: float  # Hz, over voiced frames
    f0_spread: float  # standard deviation of F0 in semitones
    rms_db: float  # level of the speech frames, dB re full scale

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _frames(wav: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame YIN F0 (an order of magnitude faster than pYIN) and RMS, trimmed to the same length."""
    f0 = librosa.yin(wav, fmin=F0_MIN, fmax=F0_MAX, sr=sr, frame_length=FRAME, hop_length=HOP)
    rms = librosa.feature.rms(y=wav, frame_length=FRAME, hop_length=HOP)[0]
    n = min(len(f0), len(rms))
    return f0[:n], rms[:n]


def _voiced_f0(wav: np.ndarray, sr: int) -> np.ndarray:
    """F0 of the frames that carry energy."""
    f0, rms = _frames(wav, sr)
    loud = rms > 0.25 * (rms.max() if rms.size else 0.0)
    # YIN reports F0 at its search bound for unvoiced frames; drop those too.
    return f0[loud & (f0 > F0_MIN * 1.05) & (f0 < F0_MAX * 0.95)]


def speech_span(wav: np.ndarray, sr: int, threshold_db: float = -35.0) -> tuple[int, int]:
    """Sample range from the first to the last frame within `threshold_db` of the loudest frame."""
    rms = librosa.feature.rms(y=wav, frame_length=FRAME, hop_length=HOP)[0]
    if not rms.size or rms.max() == 0:
        return 0, 0
    active = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10) / rms.max()) > threshold_db)
    return int(active[0] * HOP), int(min(len(wav), active[-1] * HOP + FRAME))


def measure(wav: np.ndarray, sr: int, words: int | None = None) -> Prosody:
    """Prosody of one utterance; `words` (e.g. from its transcript) gives the speaking rate."""
    start, end = speech_span(wav, sr)
    if end <= start:
        raise ValueError("no speech found: the audio is silent")
    speech = wav[start:end]
    f0 = _voiced_f0(speech, sr)
    seconds = (end - start) / sr
    rms = librosa.feature.rms(y=speech, frame_length=FRAME, hop_length=HOP)[0]
    level = rms[rms > 0.25 * rms.max()]
    return Prosody(
        seconds=seconds,
        words_per_second=None if not words else words / seconds,
        median_f0=float(np.median(f0)) if f0.size else float("nan"),
        f0_spread=float(np.std(12 * np.log2(f0 / np.median(f0)))) if f0.size > 1 else 0.0,
        rms_db=float(20 * np.log10(np.sqrt(np.mean(level**2)) + 1e-12)),
    )


def relative(p: Prosody, neutral: Prosody) -> dict[str, float]:
    """How `p` differs from the same voice's neutral speech: rate and pitch ratios, level and spread deltas."""
    if p.words_per_second and neutral.words_per_second:
        rate = p.words_per_second / neutral.words_per_second
    else:
        rate = neutral.seconds / p.seconds  # same words: shorter means faster
    return {
        "rate": rate,
        "pitch": p.median_f0 / neutral.median_f0,
        "level_db": p.rms_db - neutral.rms_db,
        "spread": p.f0_spread - neutral.f0_spread,
    }


def syllable_pitches(wav: np.ndarray, sr: int, min_gap_s: float = 0.03) -> list[float]:
    """Median F0 of each sung syllable, syllables being loud stretches separated by dips of >= `min_gap_s`."""
    f0, rms = _frames(wav, sr)
    n = len(f0)
    loud = rms > 0.2 * rms.max()
    min_gap = max(1, int(min_gap_s * sr / HOP))
    pitches, run, gap = [], [], 0
    for i in range(n):
        if loud[i]:
            run.append(f0[i])
            gap = 0
            continue
        gap += 1
        if run and gap >= min_gap:
            pitches.append(float(np.median(run)))
            run = []
    if run:
        pitches.append(float(np.median(run)))
    return pitches


def melody_error(sung: list[float], notes_hz: list[float]) -> float:
    """Mean absolute error in semitones between the sung intervals and the asked ones (key-independent).

    A different number of syllables than notes scores as infinitely wrong: the melody was not followed.
    """
    if len(sung) != len(notes_hz) or len(sung) < 2:
        return float("inf")
    sung_st = 12 * np.log2(np.asarray(sung) / sung[0])
    asked_st = 12 * np.log2(np.asarray(notes_hz) / notes_hz[0])
    return float(np.mean(np.abs(sung_st - asked_st)))
