"""What every spoken-dialogue system in aqaa looks like from outside: audio question in, audio answer out.

The evaluation, the server and the command line talk to systems only through `SpokenDialogueModel`, so the
end-to-end model, a cascade baseline, or a user's own system are measured and served the same way.

A system directory holds a `config.json` whose `kind` names the system; `load_spoken_model(dir)` opens it.
Each kind registers a loader with `register_kind` when its module is imported (see `KIND_MODULES`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class SpokenTurn:
    """One earlier turn of the conversation. Human turns carry audio; assistant turns carry what the system
    itself answered then (its text, and its audio when it has any)."""

    role: str  # "human" or "assistant"
    audio: np.ndarray | None = None  # mono float32
    sample_rate: int | None = None
    text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # an assistant turn: its SpokenAnswer.extra, passed back


@dataclass
class SpokenAnswer:
    text: str  # what the system says it said (its own text channel; may be empty for audio-only systems)
    audio: np.ndarray  # mono float32 waveform of the answer
    sample_rate: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds: e.g. "first_audio", "total"
    extra: dict[str, Any] = field(default_factory=dict)  # system-specific details (token ids, transcripts, …)


@runtime_checkable
class SpokenDialogueModel(Protocol):
    name: str

    def respond(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
                system: str | None = None) -> SpokenAnswer:
        """Answer the spoken question `audio` after the conversation `history` (oldest first)."""
        ...


Loader = Callable[[Path, dict[str, Any]], SpokenDialogueModel]
_LOADERS: dict[str, Loader] = {}
# Modules that register kinds when imported: imported lazily, so that loading one kind never needs another's
# dependencies.
KIND_MODULES = {
    "aqaa.spoken_lm": "aqaa.lm.spoken",
    "aqaa.cascade": "aqaa.eval.cascade",
    "aqaa.reference": "aqaa.eval.reference",
}


def register_kind(kind: str, loader: Loader) -> None:
    _LOADERS[kind] = loader


def load_spoken_model(directory: str | Path) -> SpokenDialogueModel:
    """Open the system saved in `directory` (its `config.json` names the kind)."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: no config.json here; is this a saved aqaa system?")
    config = json.loads(config_path.read_text())
    kind = config.get("kind")
    if kind not in _LOADERS and kind in KIND_MODULES:
        importlib.import_module(KIND_MODULES[kind])
    if kind not in _LOADERS:
        known = sorted(set(_LOADERS) | set(KIND_MODULES))
        raise ValueError(f"{config_path}: kind {kind!r} is not a spoken dialogue system; known kinds: {known}")
    return _LOADERS[kind](directory, config)
