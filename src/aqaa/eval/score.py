"""Scoring one answer from its speech: the transcript for content, the audio for style, emotion and melody.

Each benchmark turn has an answer key (`aqaa.eval.keys`). Here its three checks are evaluated:
  fact   0..1  the known answer is in the transcript (singing: the sung melody follows the asked notes)
  topic  0/1   the answer is about the question (relevance)
  skill  0/1   the asked style or emotion is heard, or the persona's words are there (None when not asked)
and combined into
  quality = fact, or (fact + skill) / 2 when the turn asks for a skill        (the dimension score is its mean)
  chat    = 1 + 2 * topic + 2 * topic * quality                               (1 off topic, 3 on topic but
                                                                                wrong, 5 on topic and right)

Style and emotion are judged relative to the same system's neutral answers (`aqaa.eval.styles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aqaa.data.build import note_hz
from aqaa.eval import styles
from aqaa.eval.match import contains, mentions, numbers
from aqaa.eval.prosody import Prosody, measure, melody_error, syllable_pitches

MELODY_PERFECT = 1.0  # mean semitone error at or under which a melody scores 1
MELODY_ZERO = 3.0  # and at or over which it scores 0


@dataclass
class Evidence:
    """What is known about one answer: its transcript words, its audio, its measured prosody, and what its style
    is judged against (the system's neutral baseline and the benchmark's style calibration)."""

    words: list[str]
    wav: np.ndarray
    sample_rate: int
    prosody: Prosody | None = None  # None for silent audio
    neutral: dict[str, float] | None = None  # `styles.baseline` of the system's neutral answers
    calibration: dict[str, Any] = field(default_factory=dict)  # `styles.calibrate` of the benchmark
    _syllables: list[float] | None = field(default=None, init=False, repr=False)  # computed on first use

    def syllables(self) -> list[float]:
        """Median F0 of each sung syllable (empty for silence)."""
        if self._syllables is None:
            self._syllables = syllable_pitches(self.wav, self.sample_rate) if self.prosody is not None else []
        return self._syllables

    def style_features(self) -> dict[str, float] | None:
        return styles.features(self.prosody, styles.phone_count(" ".join(self.words)))


def measure_answer(wav: np.ndarray, sample_rate: int) -> Prosody | None:
    """Prosody of an answer; None when it is silent."""
    if wav.size == 0 or not np.any(wav):
        return None
    try:
        return measure(wav, sample_rate)
    except ValueError:
        return None


def _melody_score(ev: Evidence, notes: list[str]) -> tuple[float, dict[str, Any]]:
    sung = ev.syllables()
    error = melody_error(sung, [note_hz(n) for n in notes])
    score = float(np.clip((MELODY_ZERO - error) / (MELODY_ZERO - MELODY_PERFECT), 0.0, 1.0))
    return score, {"syllables": len(sung), "melody_error_semitones": None if math.isinf(error) else error}


def evaluate(check: dict[str, Any], ev: Evidence, detail: dict[str, Any]) -> float:
    """One check of an answer key on the evidence: a score in [0, 1]. Adds what it measured to `detail`."""
    kind = check["type"]
    words = ev.words
    if kind == "number":
        heard = numbers(words)
        detail["numbers"] = heard
        if not heard:
            return 0.0
        return float((heard[0] if check["position"] == "first" else heard[-1]) == check["value"])
    if kind in ("choice", "choice_any"):
        # phrases to "ignore" are heard as such (so their words mention no option) and then dropped
        options = {**check["options"], "": check.get("ignore", [])}
        found = [m for m in mentions(words, options) if m.option]
        if kind == "choice_any":
            return float(bool(found))
        detail["heard"] = [m.option for m in found]
        if not found:
            return 0.0
        pick = found[0] if check["position"] == "first" else found[-1]
        return float(pick.option == check["value"])
    if kind == "phrase":
        return float(any(contains(words, p) for p in check["phrases"]))
    if kind == "numbers_any":
        return float(bool(set(numbers(words)) & set(check["values"])))
    if kind == "any":
        return max(evaluate(c, ev, detail) for c in check["checks"])
    if kind == "all":
        return min(evaluate(c, ev, detail) for c in check["checks"])
    if kind == "recall":
        expected = check["words"]
        heard = sum(contains(words, w) for w in expected)
        recall = heard / len(expected) if expected else 1.0
        detail["recall"] = round(recall, 3)
        return float(recall >= check["min"])
    if kind == "letters":
        return float(contains(words, " ".join(check["letters"])))
    if kind == "sentence":
        return float(len(words) >= check["min_words"] and contains(words, check["word"]))
    if kind == "persona":
        return float(any(contains(words, p) for p in check["phrases"]))
    if kind == "melody":
        score, info = _melody_score(ev, check["notes"])
        detail.update(info)
        return score
    if kind == "sung":  # as many pitched syllables as notes asked for, give or take one
        sung = len(ev.syllables())
        return float(sung >= 2 and abs(sung - check["syllables"]) <= 1)
    if kind == "style":
        measured = ev.style_features()
        if measured is None or ev.neutral is None:
            detail["style_heard"] = None
            return 0.0
        rel = styles.relative(measured, ev.neutral)
        heard = styles.classify(rel, ev.calibration, check["group"])
        detail["style_heard"] = heard
        detail["style_features"] = {k: round(v, 3) for k, v in rel.items()}
        return float(heard == check["style"])
    raise ValueError(f"unknown check type {kind!r} in an answer key")


@dataclass
class TurnScore:
    fact: float
    topic: float
    skill: float | None
    detail: dict[str, Any]

    @property
    def quality(self) -> float:
        return self.fact if self.skill is None else (self.fact + self.skill) / 2

    @property
    def chat(self) -> float:
        return 1 + 2 * self.topic + 2 * self.topic * self.quality


def score_turn(key: dict[str, Any], ev: Evidence) -> TurnScore:
    detail: dict[str, Any] = {}
    fact = evaluate(key["fact"], ev, detail)
    topic = evaluate(key["topic"], ev, {})
    skill = evaluate(key["skill"], ev, detail) if key["skill"] else None
    return TurnScore(fact, topic, skill, detail)
