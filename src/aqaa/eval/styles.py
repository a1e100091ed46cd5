"""Hearing the speaking style of an answer: slow, fast, loud, quiet, high, low, and the four emotions.

A style is judged relative to the same system's neutral speech. Four features are measured on each answer:
speaking rate (phones per second, the phones from the transcript's dictionary pronunciations), median F0,
level (RMS dB) and F0 spread (semitones), and each is compared to the medians over the system's neutral answers.
The answer's style is the nearest style prototype of the asked group (instructions or emotions; neutral is
always a candidate), distances in units of each feature's measurement noise.

The prototypes are calibrated by the benchmark builder on separate sentences: the corpus's assistant voice
renders each sentence in every style of the corpus's style table, and each style's median offset from the
neutral renderings becomes its prototype. So "sad" means what the corpus taught a model "sad" sounds like.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from aqaa.data.config import CorpusConfig
from aqaa.data.speech import synthesize, voice_from_name
from aqaa.data.tasks import EMOTION_PHRASES, STYLE_PHRASES, core_question
from aqaa.eval.match import pronunciations, tokens
from aqaa.eval.prosody import Prosody, measure

FEATURES = ("rate", "pitch", "level", "spread")
GROUPS = {"instruction": ["neutral", *sorted(STYLE_PHRASES)], "emotion": ["neutral", *sorted(EMOTION_PHRASES)]}
# Floors on each feature's noise unit: calibration renders are cleaner than a system's answers, whose rate is
# counted from an imperfect transcript.
NOISE_FLOOR = {"rate": 0.12, "pitch": 0.04, "level": 1.0, "spread": 0.5}
MIN_SPREAD = 0.05  # semitones: below this a voice is monotone; keeps log ratios finite


def phone_count(text: str) -> int:
    """Phones in a text, from the first dictionary pronunciation of each word."""
    return sum(len(pronunciations(w)[0]) for w in tokens(text))


def features(p: Prosody | None, phones: int) -> dict[str, float] | None:
    """The four style features of one measured answer (None when silent, unvoiced or without words)."""
    if p is None or phones == 0 or not math.isfinite(p.median_f0) or p.seconds <= 0:
        return None
    return {"rate": phones / p.seconds, "pitch": p.median_f0, "level": p.rms_db, "spread": p.f0_spread}


def baseline(measured: list[dict[str, float] | None]) -> dict[str, float] | None:
    """Medians of the features of a system's neutral answers (None when there are none)."""
    present = [m for m in measured if m is not None]
    if not present:
        return None
    return {k: float(np.median([m[k] for m in present])) for k in FEATURES}


def relative(f: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Features relative to the neutral baseline: log2 ratios of rate, pitch and spread; level difference in dB."""
    return {"rate": math.log2(f["rate"] / base["rate"]),
            "pitch": math.log2(f["pitch"] / base["pitch"]),
            "level": f["level"] - base["level"],
            "spread": math.log2(max(f["spread"], MIN_SPREAD) / max(base["spread"], MIN_SPREAD))}


def classify(rel: dict[str, float], calibration: dict[str, Any], group: str) -> str:
    """The style of `group` whose prototype is nearest to the relative features `rel`."""
    prototypes, scale = calibration["prototypes"], calibration["scale"]

    def distance(style: str) -> float:
        return sum(((rel[k] - prototypes[style][k]) / scale[k]) ** 2 for k in FEATURES)

    return min(GROUPS[group], key=distance)


def calibrate(corpus: CorpusConfig, sentences: int = 16, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Style prototypes and noise units from `sentences` answers rendered in every style (see module docstring)."""
    rng = random.Random(f"style-calibration:{seed}")
    texts = [core_question(rng, heldout=False).answer for _ in range(sentences)]
    voice = voice_from_name(corpus.assistant_voice)
    styles = sorted({s for group in GROUPS.values() for s in group})
    measured: dict[str, list[dict[str, float]]] = {s: [] for s in styles}
    with tempfile.TemporaryDirectory(prefix="aqaa-styles-") as tmp:
        for style in tqdm(styles, desc="calibrating styles", unit="style", disable=not progress):
            for text in texts:
                wav = synthesize(text, voice, corpus.styles[style], corpus.sample_rate, Path(tmp)).wav
                f = features(measure(wav, corpus.sample_rate), phone_count(text))
                if f is not None:
                    measured[style].append(f)
    base = baseline(measured["neutral"])
    if base is None:
        raise RuntimeError("style calibration: the neutral renderings have no measurable speech")
    rel = {s: [relative(f, base) for f in fs] for s, fs in measured.items()}
    prototypes = {s: {k: float(np.median([r[k] for r in rs])) for k in FEATURES} for s, rs in rel.items()}
    scale = {}
    for k in FEATURES:
        deviations = np.concatenate([[r[k] - prototypes[s][k] for r in rs] for s, rs in rel.items()])
        scale[k] = max(NOISE_FLOOR[k], float(1.4826 * np.median(np.abs(deviations))))
    return {"sentences": sentences, "voice": corpus.assistant_voice, "prototypes": prototypes, "scale": scale}
