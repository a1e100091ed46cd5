"""The cascade baseline: the system a user would otherwise build from parts.

    question audio --pocketsphinx--> text --text-only LM--> answer text --flite (the assistant voice)--> audio

It runs through the same benchmark as the end-to-end model, so the two can be compared on accuracy and latency
(per stage: `asr`, `answer`, `tts`; nothing streams, so the first audio comes at `total`). It speaks every answer
in the assistant's neutral voice: a text model has no channel for the asked style, which is the point of the
comparison.

The text answerer is "the same backbone trained on text QA". Anything with
`answer_text(history_texts, question) -> str` will do; it is loaded from a directory whose `config.json` names
its kind, like spoken systems are. The text-only LM comes with the LM training recipe, which registers its kind
with `register_text_answerer`; until then no kind is registered and loading one says so.

A cascade system directory holds `config.json`:
    {"kind": "aqaa.cascade", "name": "cascade", "answerer": "DIR of the text answerer", "voice": "flite:awb"}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aqaa import judge
from aqaa.checkpoint import write_json
from aqaa.data.speech import Prosody, SynthesisError, synthesize, voice_from_name
from aqaa.eval.reference import audio_fingerprint
from aqaa.pipeline import KindRegistry, SpokenAnswer, SpokenTurn, register_kind

KIND = "aqaa.cascade"
DEFAULT_VOICE = "flite:awb"  # the corpus's assistant voice


@runtime_checkable
class TextAnswerer(Protocol):
    def answer_text(self, history_texts: list[str], question: str) -> str:
        """The answer to `question` after the conversation `history_texts` (oldest first, alternating the
        human's and the assistant's turns)."""
        ...


# Modules that register text answerer kinds when imported: the LM recipe's text-only model.
TEXT_KIND_MODULES: dict[str, str] = {"aqaa.text_lm": "aqaa.lm.text"}
TEXT_ANSWERERS = KindRegistry("text answerer", TEXT_KIND_MODULES)


def register_text_answerer(kind: str, loader: Callable[[Path, dict[str, Any]], TextAnswerer]) -> None:
    TEXT_ANSWERERS.register(kind, loader)


def load_text_answerer(directory: str | Path) -> TextAnswerer:
    """Open the text answerer saved in `directory` (its `config.json` names the kind)."""
    return TEXT_ANSWERERS.load(directory)


class CascadeSystem:
    """ASR, then a text answerer, then flite (see the module docstring)."""

    def __init__(self, answerer: TextAnswerer, voice: str = DEFAULT_VOICE, sample_rate: int = 16000,
                 name: str = "cascade") -> None:
        self.name = name
        self.answerer = answerer
        self.voice = voice_from_name(voice)
        self.sample_rate = sample_rate
        self._heard: dict[str, str] = {}  # transcripts of earlier human turns, by audio fingerprint

    def _transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        key = f"{sample_rate}:{audio_fingerprint(audio)}"
        if key not in self._heard:
            self._heard[key] = judge.transcribe(audio, sample_rate)
        return self._heard[key]

    def respond(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
                system: str | None = None) -> SpokenAnswer:
        start = time.perf_counter()
        history_texts = []
        for turn in history:
            if turn.role == "assistant" and turn.text:
                history_texts.append(turn.text)  # the cascade said this itself: no need to hear it
            elif turn.audio is not None and turn.sample_rate:
                history_texts.append(self._transcribe(turn.audio, turn.sample_rate))
            else:
                history_texts.append(turn.text or "")
        question = self._transcribe(audio, sample_rate)
        heard = time.perf_counter()
        text = self.answerer.answer_text(history_texts, question).strip()
        answered = time.perf_counter()
        try:
            wav = synthesize(text, self.voice, Prosody(), self.sample_rate).wav
        except SynthesisError:
            if text:
                raise
            wav = np.zeros(0, np.float32)  # nothing to say
        done = time.perf_counter()
        timings = {"asr": heard - start, "answer": answered - heard, "tts": done - answered,
                   "first_audio": done - start, "total": done - start}
        return SpokenAnswer(text=text, audio=wav, sample_rate=self.sample_rate, timings=timings,
                            extra={"question_transcript": question, "history_texts": history_texts})


def save_cascade_system(directory: str | Path, answerer_dir: str | Path, voice: str = DEFAULT_VOICE,
                        name: str = "cascade") -> Path:
    """Write a cascade system directory (it refers to the text answerer by absolute path)."""
    voice_from_name(voice)  # a clear error now for an unknown voice
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", {"kind": KIND, "name": name, "voice": voice,
                                           "answerer": str(Path(answerer_dir).resolve())})
    return directory


def _load(directory: Path, config: dict[str, Any]) -> CascadeSystem:
    answerer = Path(config["answerer"])
    if not answerer.is_absolute():
        answerer = directory / answerer
    return CascadeSystem(load_text_answerer(answerer), config.get("voice", DEFAULT_VOICE),
                         name=config.get("name", "cascade"))


register_kind(KIND, _load)
