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


class KindRegistry:
    """Things saved as a directory whose `config.json` names their `kind`; each kind has a loader, registered by
    its module when imported (`modules`: kind → module, imported lazily, so that loading one kind never needs
    another's dependencies)."""

    def __init__(self, what: str, modules: dict[str, str]) -> None:
        self.what, self.modules = what, modules
        self.loaders: dict[str, Callable[[Path, dict[str, Any]], Any]] = {}

    def register(self, kind: str, loader: Callable[[Path, dict[str, Any]], Any]) -> None:
        self.loaders[kind] = loader

    def load(self, directory: str | Path) -> Any:
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory}: no config.json here; is this a saved {self.what}?")
        config = json.loads(config_path.read_text())
        kind = config.get("kind")
        if kind not in self.loaders and kind in self.modules:
            importlib.import_module(self.modules[kind])
        if kind not in self.loaders:
            known = sorted(set(self.loaders) | set(self.modules))
            raise ValueError(f"{config_path}: kind {kind!r} is not a {self.what}; known kinds: {known}")
        return self.loaders[kind](directory, config)


KIND_MODULES = {
    "aqaa.spoken_lm": "aqaa.lm.spoken",
    "aqaa.cascade": "aqaa.eval.cascade",
    "aqaa.reference": "aqaa.eval.reference",
}
SYSTEMS = KindRegistry("spoken dialogue system", KIND_MODULES)


def register_kind(kind: str, loader: Callable[[Path, dict[str, Any]], SpokenDialogueModel]) -> None:
    SYSTEMS.register(kind, loader)


def load_spoken_model(directory: str | Path) -> SpokenDialogueModel:
    """Open the system saved in `directory` (its `config.json` names the kind)."""
    return SYSTEMS.load(directory)
