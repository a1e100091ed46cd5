"""The end-to-end spoken dialogue system: audio tokenizer → speech LM → vocoder, one `SpokenDialogueModel`.

A system directory holds `config.json` (kind `aqaa.spoken_lm`, where its parts live, sampling settings) and
usually the parts themselves: `tokenizer/`, `lm/` (a Hugging Face model + the vocabulary + `aqaa_lm.json`) and
`vocoder/`. `stream` yields the answer as it is made: the style the model chose, text pieces, and waveform
chunks as soon as each 15-id audio chunk is vocoded; `respond` collects them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.audio import trim_silence
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.configs import from_dict
from aqaa.home import DEFAULT_THREADS
from aqaa.lm.generate import Generator, SamplingConfig
from aqaa.lm.layouts import Turn, build_dialogue
from aqaa.lm.model import LM_CONFIG_FILE
from aqaa.lm.tasks import AudioFormat, layout_for
from aqaa.pipeline import SpokenAnswer, SpokenTurn, register_kind
from aqaa.vocab import Vocabulary

KIND = "aqaa.spoken_lm"


@dataclass
class TrimConfig:
    """How much near-silence a person's turn may keep at each end. The corpus's questions keep little: at most
    0.38 s before the speech and 0.58 s after it (quieter than 40 dB under the peak), and the LM, never having
    heard more, answers worse with more (bench/question_recordings.py: two seconds of silence before or after a
    question cut the reference words its answers say from 28% to 11-12%). The defaults never cut a question the
    corpus could have made."""

    enabled: bool = True
    below_peak_db: float = 40.0
    keep_lead_s: float = 0.4
    keep_trail_s: float = 0.6

    def __post_init__(self) -> None:
        if self.below_peak_db <= 0 or self.keep_lead_s < 0 or self.keep_trail_s < 0:
            raise ValueError(f"trim: below_peak_db must be > 0 and keep_lead_s, keep_trail_s >= 0, got "
                             f"{self.below_peak_db}, {self.keep_lead_s}, {self.keep_trail_s}")


@dataclass
class SpokenLMConfig:
    """`config.json` of a system directory (paths relative to it)."""

    kind: str = KIND
    name: str = "aqaa"
    tokenizer: str = "tokenizer"
    lm: str = "lm"
    vocoder: str = "vocoder"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    vocoder_steps: int | None = None  # None: the vocoder's own default
    vocoder_guidance: float | None = None
    max_len: int = 4096  # context the generator allocates (history + question + answer)
    # The LM's weights as decoded: "fp32", "int8" (weight-only, ~2.9x faster steps, 99.7% token agreement on the
    # shipped LM; bench/decode.py) or "bf16".
    lm_weights: str = "fp32"
    threads: int | None = DEFAULT_THREADS  # None: torch's own count (see aqaa.home.DEFAULT_THREADS for why 1)
    trim: TrimConfig = field(default_factory=TrimConfig)  # of a person's turns


@dataclass
class AnswerEvent:
    kind: str  # "style", "text", "audio" (a waveform chunk) or "end"
    text: str = ""
    audio: np.ndarray | None = None
    sample_rate: int = 0  # of `audio`
    seconds: float = 0.0  # since the question was received


class SpokenLM:
    """Answers spoken questions end to end (implements `aqaa.pipeline.SpokenDialogueModel`)."""

    def __init__(self, tokenizer: AudioTokenizer, model: torch.nn.Module, vocab: Vocabulary, layout: str,
                 vocoder: Any, config: SpokenLMConfig | None = None) -> None:
        self.config = config or SpokenLMConfig()
        self.name = self.config.name
        self.tokenizer, self.model, self.vocab, self.vocoder = tokenizer, model.eval(), vocab, vocoder
        self.audio = AudioFormat.of_tokenizer(tokenizer.config)
        self.layout = layout_for(layout, self.audio)
        if vocab.audio.linguistic_size != tokenizer.config.linguistic.codebook_size or (
                vocab.audio.semantic_size != tokenizer.config.semantic.codebook_size):
            raise ValueError("the LM's vocabulary and the tokenizer disagree on codebook sizes")
        self.generator = Generator(model, vocab, self.layout, self.config.sampling, max_len=self.config.max_len,
                                   weights=self.config.lm_weights)
        self.question_reading: dict[str, float] = {}  # what was done to the last prompt's question

    @classmethod
    def from_dir(cls, directory: str | Path, config: dict[str, Any] | None = None) -> SpokenLM:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        from aqaa.vocoder import Vocoder

        hf_logging.disable_progress_bar()  # a small model loads in a blink; keep the output clean
        directory = Path(directory)
        if config is None:
            path = directory / "config.json"
            if not path.is_file():
                raise FileNotFoundError(f"{directory}: no config.json here; is this a saved aqaa system?")
            config = json.loads(path.read_text())
        cfg = from_dict(SpokenLMConfig, config, str(directory / "config.json"))
        if cfg.kind != KIND:
            raise ValueError(f"{directory} holds a {cfg.kind!r} system, not {KIND!r}")
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        parts = {name: directory / getattr(cfg, name) for name in ("tokenizer", "lm", "vocoder")}
        for name, path in parts.items():
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{directory}: the system's {name} is missing ({path} has no config.json)")
        lm_meta = json.loads((parts["lm"] / LM_CONFIG_FILE).read_text())
        tokenizer = AudioTokenizer.from_pretrained(parts["tokenizer"], streams=lm_meta["streams"])
        model = AutoModelForCausalLM.from_pretrained(str(parts["lm"]), local_files_only=True,
                                                     dtype=torch.float32)
        return cls(tokenizer, model, Vocabulary.load(parts["lm"]), lm_meta["layout"],
                   Vocoder.from_pretrained(parts["vocoder"]), cfg)

    # -- the prompt -------------------------------------------------------------------------------------------
    def _audio_ids(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        if audio is None or len(audio) == 0:
            raise ValueError("the question has no audio")
        return self.tokenizer.ids(self.tokenizer.encode(audio, sample_rate), self.vocab.audio)

    def _human_ids(self, audio: np.ndarray, sample_rate: int) -> tuple[torch.Tensor, dict[str, float]]:
        """A person's turn: its ids, read after the recording's long silences at either end are cut (`TrimConfig`)
        and a recording too quiet for the tokenizer is raised (`LevelConfig`); and what was done: the gain in
        dB and the seconds cut at the start and at the end."""
        if audio is None or len(audio) == 0:
            raise ValueError("the question has no audio")
        audio = audio.detach().cpu().numpy() if torch.is_tensor(audio) else np.asarray(audio, dtype=np.float32)
        lead = trail = 0.0
        if self.config.trim.enabled:
            t = self.config.trim
            audio, lead, trail = trim_silence(audio, sample_rate, t.below_peak_db, t.keep_lead_s, t.keep_trail_s)
        lifted, gain_db = self.tokenizer.lift_quiet(audio)
        return self._audio_ids(lifted, sample_rate), {"gain_db": round(gain_db, 2), "cut_start_s": round(lead, 3),
                                                      "cut_end_s": round(trail, 3)}

    def _assistant_ids(self, turn: SpokenTurn) -> list[int]:
        """An earlier answer: the exact ids this system generated when it has them, else its audio re-tokenized
        with its text placed by forced alignment (aligned layout) or before the audio (others)."""
        if turn.extra.get("answer_ids"):
            style = turn.extra.get("style")
            marker = [self.vocab.style(style)] if style in self.vocab.styles else []
            return [*self.vocab.turn_header("assistant"), *marker, *turn.extra["answer_ids"]]
        text = turn.text or ""
        audio_ids = self._audio_ids(turn.audio, turn.sample_rate) if turn.audio is not None else None
        words = [(self.vocab.encode_text(text), 0.0)]
        if self.layout.kind == "aligned" and text and turn.audio is not None:
            from aqaa.codec.align import AlignmentError, align
            from aqaa.lm.layouts import aligned_words

            try:
                wav = self.tokenizer._prepare(turn.audio, turn.sample_rate).numpy()
                _, times = align(self.tokenizer.linguistic, wav, text, self.tokenizer.sample_rate)
                words = aligned_words(self.vocab, text, times)
            except (AlignmentError, ValueError):
                pass  # no alignment: the text goes first
        answer = Turn("assistant", None, audio_ids, words=words, style=turn.extra.get("style", "neutral"))
        return build_dialogue(self.vocab, [answer], self.layout, group_seconds=self.audio.group_seconds)[0].tolist()

    def prompt(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
               system: str | None = None) -> list[int]:
        """The LM's prompt: optional system text, the conversation so far, the question, the assistant header.
        A person's recordings are read as `_human_ids` says; `question_reading` keeps what was done to the
        question."""
        ids: list[int] = []
        if system:
            ids += self.vocab.turn("system", self.vocab.encode_text(system))
        for turn in history:
            if turn.role == "human":
                if turn.audio is None:
                    raise ValueError("a human turn of the history has no audio")
                human = Turn("human", audio_ids=self._human_ids(turn.audio, turn.sample_rate or sample_rate)[0])
                ids += build_dialogue(self.vocab, [human], self.layout)[0].tolist()
            elif turn.role == "assistant":
                ids += self._assistant_ids(turn)
            else:
                raise ValueError(f"history turns are 'human' or 'assistant', not {turn.role!r}")
        question_ids, self.question_reading = self._human_ids(audio, sample_rate)
        question = Turn("human", audio_ids=question_ids)
        ids += build_dialogue(self.vocab, [question], self.layout)[0].tolist()
        return ids + self.vocab.turn_header("assistant")

    # -- answering ----------------------------------------------------------------------------------------------
    def stream(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
               system: str | None = None, seed: int | None = None) -> Iterator[AnswerEvent]:
        """The answer as it is made. The last event ("end") carries the whole answer's ids in `self.last`."""
        started = time.perf_counter()
        prompt = self.prompt(audio, sample_rate, history, system)
        self.generator.sampling = dataclasses.replace(self.config.sampling, seed=(
            self.config.sampling.seed if seed is None else seed))
        vocoder = self.vocoder.stream(self.config.vocoder_steps, self.config.vocoder_guidance,
                                      seed=0 if seed is None else seed)
        style = None
        for event in self.generator.generate(prompt, predict_style=True):
            now = time.perf_counter() - started
            if event.kind == "style":
                style = event.text
                yield AnswerEvent("style", text=style, seconds=now)
            elif event.kind == "text":
                yield AnswerEvent("text", text=event.text, seconds=now)
            elif event.kind == "audio":
                codes = self.tokenizer.codes(torch.tensor(event.audio_ids), self.vocab.audio)
                wav = vocoder.push(codes)
                if len(wav):
                    yield AnswerEvent("audio", audio=wav, sample_rate=self.vocoder.sample_rate,
                                      seconds=time.perf_counter() - started)
            else:
                tail = vocoder.flush()
                if len(tail):
                    yield AnswerEvent("audio", audio=tail, sample_rate=self.vocoder.sample_rate,
                                      seconds=time.perf_counter() - started)
                self.last = {"answer_ids": list(self.generator.last_answer_ids), "style": style,
                             "truncated": event.truncated, "prompt_tokens": len(prompt),
                             **{f"question_{k}": v for k, v in self.question_reading.items()}}
                yield AnswerEvent("end", seconds=time.perf_counter() - started)

    def respond(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
                system: str | None = None, seed: int | None = None) -> SpokenAnswer:
        text, chunks, timings = [], [], {}
        for event in self.stream(audio, sample_rate, history, system, seed):
            if event.kind == "text":
                text.append(event.text)
            elif event.kind == "audio":
                timings.setdefault("first_audio", event.seconds)
                chunks.append(event.audio)
            elif event.kind == "end":
                timings["total"] = event.seconds
        wav = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        extra = dict(self.last, answer_tokens=len(self.last["answer_ids"]))
        return SpokenAnswer("".join(text).strip(), wav.astype(np.float32), self.vocoder.sample_rate, timings, extra)


def save_system(directory: str | Path, config: SpokenLMConfig | None = None) -> Path:
    """Write a system directory's `config.json` (its parts are put beside it separately)."""
    from aqaa.checkpoint import write_json
    from aqaa.configs import to_dict

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", to_dict(config or SpokenLMConfig()))
    return directory


register_kind(KIND, lambda directory, config: SpokenLM.from_dir(directory, config))
