"""Streaming generation: prefill the prompt, then step token by token, yielding each text piece and each
completed audio chunk (default 3 groups = 15 ids = 360 ms) as soon as it exists.

Every step samples only among the ids the layout allows next (`LayoutState.mask`), so the output is always a
well-formed answer: audio in whole 2 + 3 groups, `<|text_end|>` once, `<|EOT|>` only where the answer may end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from aqaa.lm.fast import FastLlama
from aqaa.lm.layouts import DEFAULT_LAYOUT, Layout, LayoutState, Next, get_layout
from aqaa.vocab import Vocabulary


@dataclass
class SamplingConfig:
    temperature: float = 0.7  # the paper's defaults
    top_p: float = 0.9
    top_k: int = 0  # 0: off
    greedy: bool = False
    repetition_penalty: float = 1.0  # 1.0: off; >1 discourages ids already generated (HF's rule)
    seed: int | None = None
    max_new_tokens: int = 1500

    def __post_init__(self) -> None:
        if self.temperature <= 0 and not self.greedy:
            raise ValueError("temperature must be > 0 (or set greedy: true)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.max_new_tokens < 1 or self.repetition_penalty <= 0:
            raise ValueError("top_k must be >= 0, max_new_tokens >= 1 and repetition_penalty > 0")


@dataclass
class Event:
    kind: str  # "style" (the predicted style marker), "text" (a new piece of text), "audio" (a chunk of
    # interleaved audio ids) or "end"
    text: str = ""  # "text": the new piece; "style": the style's name
    audio_ids: list[int] = field(default_factory=list)
    truncated: bool = False  # "end" only: stopped by max_new_tokens before <|EOT|>


def sample(logits: torch.Tensor, allowed: torch.Tensor, config: SamplingConfig, previous: Sequence[int],
           generator: torch.Generator | None) -> int:
    """One id from logits [V] among the allowed ids [V] (bool)."""
    logits = logits.masked_fill(~allowed, float("-inf"))
    if config.repetition_penalty != 1.0 and previous:
        seen = torch.tensor(sorted(set(previous)))
        values = logits[seen]
        logits[seen] = torch.where(values > 0, values / config.repetition_penalty, values * config.repetition_penalty)
    if config.greedy:
        return int(logits.argmax())
    logits = logits / config.temperature
    if config.top_k:
        kth = logits.topk(min(config.top_k, int(allowed.sum()))).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if config.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < config.top_p  # always keeps the most likely id
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


class Generator:
    """A stateful answer generator over a Llama-architecture LM (moshi's LMGen idea)."""

    def __init__(self, model: torch.nn.Module, vocab: Vocabulary, layout: str | Layout = DEFAULT_LAYOUT,
                 sampling: SamplingConfig | None = None, max_len: int = 2048, chunk_groups: int = 3,
                 weights: str = "fp32") -> None:
        if model.config.vocab_size < vocab.size:
            raise ValueError(f"the model has {model.config.vocab_size} ids, the vocabulary {vocab.size}")
        self.vocab, self.layout = vocab, get_layout(layout)
        self.sampling = sampling or SamplingConfig()
        self.decoder = FastLlama(model, max_len, weights)
        self.chunk = chunk_groups * self.layout.group_size
        self._masks: dict[Next, torch.Tensor] = {}
        self.model_vocab = model.config.vocab_size
        self.last_answer_ids: list[int] = []  # every id of the latest answer, for inspection and tests

    def _mask(self, state: LayoutState) -> torch.Tensor:
        kinds = state.allowed()
        if kinds not in self._masks:
            mask = torch.zeros(self.model_vocab, dtype=torch.bool)
            mask[: self.vocab.size] = state.mask_of(kinds)
            self._masks[kinds] = mask
        return self._masks[kinds]

    def generate(self, prompt_ids: Sequence[int] | torch.Tensor, predict_style: bool = False) -> Iterator[Event]:
        """Yield text pieces and audio chunks of the answer to `prompt_ids` (which ends where the answer starts).
        With `predict_style` the model first chooses the answer's style marker itself (the prompt then ends with
        the assistant header, as in training), and a "style" event names it."""
        cfg = self.sampling
        prompt = torch.as_tensor(prompt_ids, dtype=torch.long).reshape(-1)
        if len(prompt) + cfg.max_new_tokens + predict_style > self.decoder.max_len:
            raise ValueError(f"prompt ({len(prompt)}) + max_new_tokens ({cfg.max_new_tokens}) exceeds max_len "
                             f"{self.decoder.max_len}")
        generator = torch.Generator().manual_seed(cfg.seed) if cfg.seed is not None else None
        self.decoder.reset()
        logits = self.decoder.forward(prompt)
        if predict_style:
            allowed = torch.zeros(self.model_vocab, dtype=torch.bool)
            allowed[[self.vocab.style(s) for s in self.vocab.styles]] = True
            style = sample(logits, allowed, cfg, [], generator)
            yield Event("style", text=self.vocab.token_string(style)[len("<|style:"):-2])
            logits = self.decoder.forward(torch.tensor([style]))
        state = LayoutState(self.layout, self.vocab)
        out: list[int] = []
        self.last_answer_ids = out
        text_ids: list[int] = []
        said = ""
        audio: list[int] = []
        for _ in range(cfg.max_new_tokens):
            token = sample(logits, self._mask(state), cfg, out, generator)
            kind = state.advance(token)
            out.append(token)
            if kind == Next.TEXT:
                text_ids.append(token)
                text = self.vocab.decode_text(text_ids)
                if len(text) > len(said) and not text.endswith("\ufffd"):  # wait for a whole UTF-8 character
                    yield Event("text", text=text[len(said):])
                    said = text
            elif kind in Next.LINGUISTIC | Next.SEMANTIC:
                audio.append(token)
                if len(audio) == self.chunk:
                    yield Event("audio", audio_ids=audio)
                    audio = []
            if state.done:
                break
            logits = self.decoder.forward(torch.tensor([token]))
        whole = len(audio) - len(audio) % self.layout.group_size
        if whole:
            yield Event("audio", audio_ids=audio[:whole])
        yield Event("end", truncated=not state.done)
