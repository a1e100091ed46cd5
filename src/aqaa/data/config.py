"""Typed configuration of the corpus builder, loaded from YAML (unknown keys are errors, not silence)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqaa.configs import load_yaml
from aqaa.data.speech import ESPEAK_VARIANT_GENDER, FLITE_VOICES, Prosody
from aqaa.data.tasks import FAMILIES

ESPEAK_ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029"]

DEFAULT_STYLES: dict[str, Prosody] = {
    "neutral": Prosody(),
    "slow": Prosody(rate=0.65),
    "fast": Prosody(rate=1.45),
    "loud": Prosody(gain_db=5.0),
    "quiet": Prosody(gain_db=-14.0),
    "high": Prosody(pitch=1.4),
    "low": Prosody(pitch=0.75),
    "happy": Prosody(rate=1.15, pitch=1.2, gain_db=2.0, expressive=1.8),
    "sad": Prosody(rate=0.8, pitch=0.85, gain_db=-7.0, expressive=0.4),
    "angry": Prosody(rate=1.15, pitch=1.05, gain_db=5.0, expressive=1.5),
    "calm": Prosody(rate=0.85, pitch=0.95, gain_db=-4.0, expressive=0.6),
    "robot": Prosody(rate=0.9, expressive=0.0),
    "pirate": Prosody(rate=0.95, pitch=0.85, gain_db=2.0, expressive=1.4),
    "teacher": Prosody(rate=0.9, expressive=1.2),
    "sing": Prosody(rate=0.55, expressive=0.0),  # per syllable; the F0 comes from the note
}


def _default_query_voices() -> list[str]:
    flite = [f"flite:{v}" for v in FLITE_VOICES]
    espeak = [f"espeak:{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANT_GENDER]
    return flite + espeak


@dataclass
class CorpusConfig:
    """Everything that decides the corpus. The same config and seed always give the same corpus."""

    name: str = "default"
    seed: int = 1234
    conversations: int = 46000  # multi-turn conversations add turns: about 1.09 examples per conversation
    shard_size: int = 200  # conversations per shard: the unit of parallel work and of resumption
    sample_rate: int = 16000
    family_weights: dict[str, float] = field(default_factory=lambda: {name: 1.0 for name in FAMILIES})
    assistant_voice: str = "flite:awb"
    query_voices: list[str] = field(default_factory=_default_query_voices)
    # Voices (fnmatch patterns) heard only in the test split, with held-out phrasings, to test generalisation.
    heldout_voices: list[str] = field(default_factory=lambda: ["flite:kal", "espeak:en-029+*",
                                                               "espeak:*+f5", "espeak:*+m7"])
    flite_query_fraction: float = 0.4  # of queries spoken by flite voices (the rest by espeak-ng)
    validation_fraction: float = 0.04
    test_fraction: float = 0.04
    query_rate_range: tuple[float, float] = (0.85, 1.15)
    query_pitch_range: tuple[float, float] = (0.9, 1.1)
    query_gain_db_range: tuple[float, float] = (-8.0, 0.0)
    style_jitter: float = 0.05  # relative jitter on a forced query style's rate and pitch
    noise_probability: float = 0.3
    snr_db_range: tuple[float, float] = (10.0, 30.0)
    room_probability: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.6)
    note_gap_seconds: float = 0.05  # silence between sung syllables
    styles: dict[str, Prosody] = field(default_factory=lambda: dict(DEFAULT_STYLES))

    def __post_init__(self) -> None:
        # A partial mapping sets the families it names; the others keep weight 1 (weight 0 leaves one out).
        self.family_weights = {**{n: 1.0 for n in FAMILIES}, **self.family_weights}
        self.validate()

    def validate(self) -> None:
        problems = []
        unknown = sorted(set(self.family_weights) - set(FAMILIES))
        if unknown:
            problems.append(f"family_weights names unknown families {unknown}; known: {sorted(FAMILIES)}")
        if not any(w > 0 for w in self.family_weights.values()):
            problems.append("family_weights: at least one family needs a positive weight")
        if any(w < 0 for w in self.family_weights.values()):
            problems.append("family_weights must not be negative")
        if self.conversations < 1 or self.shard_size < 1:
            problems.append("conversations and shard_size must be >= 1")
        if not 0 <= self.validation_fraction + self.test_fraction < 1:
            problems.append("validation_fraction + test_fraction must be in [0, 1)")
        missing_styles = sorted(set(DEFAULT_STYLES) - set(self.styles))
        if missing_styles:
            problems.append(f"styles is missing {missing_styles}")
        if problems:
            raise ValueError("invalid corpus config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown corpus config keys {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "styles" in data:  # YAML gives plain mappings; overrides merge onto the defaults
            styles = dict(DEFAULT_STYLES)
            for name, spec in data["styles"].items():
                spec = dataclasses.asdict(spec) if isinstance(spec, Prosody) else spec
                styles[name] = Prosody(**spec)
            data["styles"] = styles
        for key in ("query_rate_range", "query_pitch_range", "query_gain_db_range", "snr_db_range", "rt60_range"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CorpusConfig:
        return cls.from_dict(load_yaml(path, "corpus config"))
