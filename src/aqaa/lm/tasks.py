"""Training sequences for the speech LM, built from the token cache.

Tasks (the pre-training mix; weights in the recipe config):
  aqaa          a whole conversation: each human turn is the question's audio, each assistant turn the answer's
                style marker and its text and audio in the layout (the end-to-end task the shipped model does)
  asr           audio (a question or an answer) → its text
  tts           text → the assistant speaking it (style marker, text and audio in the layout)
  text_qa       the conversation in text only: question text → answer text
  continuation  the first part of an answer's audio → the rest of it
Every task but `aqaa` starts with a system turn naming it, so the model knows which job it is doing.
The loss covers what the assistant says: its style marker and answer, through `<|EOT|>`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from aqaa.codec.interleave import interleave
from aqaa.data.align import WordTime
from aqaa.lm.data import TokenCache
from aqaa.lm.layouts import Layout, Turn, Word, aligned_words, build_dialogue, get_layout, segment_labels
from aqaa.vocab import ROLES, Vocabulary

TASKS = ("aqaa", "asr", "tts", "text_qa", "continuation")
SYSTEM_PROMPTS = {
    "asr": "Write down what is said.",
    "tts": "Say the text aloud.",
    "text_qa": "Answer in text.",
    "continuation": "Continue the speech.",
}


@dataclass
class TrainingSequence:
    ids: torch.Tensor  # long [N]
    loss_mask: torch.Tensor  # bool [N]: positions whose token is predicted (its logits come from position - 1)
    task: str


@dataclass(frozen=True)
class AudioFormat:
    """How audio codes become LM ids: the tokenizer's group pattern and how long a group lasts."""

    per_group: tuple[int, int] = (2, 3)
    group_seconds: float = 0.12

    @classmethod
    def of_tokenizer(cls, config: object) -> AudioFormat:
        """From an `aqaa.codec.tokenizer.TokenizerConfig`."""
        ling = config.linguistic  # type: ignore[attr-defined]
        token_seconds = ling.mel.hop * ling.encoder.frames_per_token / ling.mel.sample_rate
        return cls(tuple(config.per_group), config.linguistic_per_group * token_seconds)  # type: ignore[attr-defined]


def layout_for(name: str | Layout, audio: AudioFormat) -> Layout:
    """The named layout with the tokenizer's group pattern (single-stream tokenizers have groups of 2 or 3)."""
    return dataclasses.replace(get_layout(name), per_group=audio.per_group)


def loss_mask(vocab: Vocabulary, ids: torch.Tensor) -> torch.Tensor:
    """Bool [N]: the assistant's style markers and answers (through `<|EOT|>`)."""
    labels = segment_labels(vocab, ids)
    styles = torch.tensor([vocab.is_style(int(i)) for i in ids.tolist()], dtype=torch.bool)
    assistant = labels.role == ROLES.index("assistant")
    return assistant & (labels.answer | styles)


class SequenceBuilder:
    """Makes task sequences from one token cache."""

    def __init__(self, cache: TokenCache, vocab: Vocabulary, layout: str | Layout, audio: AudioFormat) -> None:
        self.cache, self.vocab, self.audio = cache, vocab, audio
        self.layout = layout_for(layout, audio)
        self._conversations = cache.conversations()
        self.conversation_ids = sorted(self._conversations)

    def turns(self, conversation: str) -> list[int]:
        """Example indices of a conversation's turns, in order."""
        return self._conversations[conversation]

    # -- pieces ----------------------------------------------------------------------------------------------
    def audio_ids(self, i: int, side: str) -> torch.Tensor:
        ling, sem = self.cache.codes(i, side)
        return interleave(ling, sem, self.vocab.audio, self.audio.per_group)

    def answer_words(self, i: int) -> list[Word]:
        """(text ids, start) per spoken word of example i's answer; all text at the start when the word times do
        not match the text (e.g. sung syllables)."""
        ex = self.cache.examples[i]
        text = ex["answer_text"]
        times = [WordTime(w["word"], w["start"], w["end"]) for w in ex["answer_words"]]
        try:
            return list(aligned_words(self.vocab, text, times)) if times else [(self.vocab.encode_text(text), 0.0)]
        except ValueError:
            return [(self.vocab.encode_text(text), 0.0)]

    def assistant_turn(self, i: int, with_audio: bool = True) -> Turn:
        ex = self.cache.examples[i]
        style = ex["answer_style"] if ex["answer_style"] in self.vocab.styles else None
        if not with_audio:
            return self.text_turn(ex["answer_text"])
        return Turn("assistant", None, self.audio_ids(i, "answer"), words=self.answer_words(i), style=style)

    def text_turn(self, text: str) -> Turn:
        """An assistant turn of text alone (one "word" at time 0, which every layout but audio_only accepts)."""
        return Turn("assistant", None, None, words=[(self.vocab.encode_text(text), 0.0)])

    def _finish(self, turns: Sequence[Turn], task: str, system: str | None = None) -> TrainingSequence:
        ids, _ = build_dialogue(self.vocab, turns, self.layout, system=system,
                                group_seconds=self.audio.group_seconds)
        return TrainingSequence(ids, loss_mask(self.vocab, ids), task)

    # -- tasks -----------------------------------------------------------------------------------------------
    def aqaa(self, conversation: str) -> TrainingSequence:
        turns: list[Turn] = []
        for i in self._conversations[conversation]:
            turns += [Turn("human", audio_ids=self.audio_ids(i, "query")), self.assistant_turn(i)]
        return self._finish(turns, "aqaa")

    def text_qa(self, conversation: str) -> TrainingSequence:
        turns: list[Turn] = []
        for i in self._conversations[conversation]:
            ex = self.cache.examples[i]
            turns += [Turn("human", ex["query_text"]), self.assistant_turn(i, with_audio=False)]
        return self._finish(turns, "text_qa", SYSTEM_PROMPTS["text_qa"])

    def asr(self, i: int, side: str) -> TrainingSequence:
        text = self.cache.examples[i][f"{side}_text"]
        turns = [Turn("human", audio_ids=self.audio_ids(i, side)), self.text_turn(text)]
        return self._finish(turns, "asr", SYSTEM_PROMPTS["asr"])

    def tts(self, i: int) -> TrainingSequence:
        turns = [Turn("human", self.cache.examples[i]["answer_text"]), self.assistant_turn(i)]
        return self._finish(turns, "tts", SYSTEM_PROMPTS["tts"])

    def continuation(self, i: int, rng: random.Random) -> TrainingSequence:
        audio = self.audio_ids(i, "answer")
        size = self.layout.group_size
        groups = len(audio) // size
        cut = rng.randint(1, max(1, groups - 1)) * size if groups > 1 else 0
        turns = [Turn("human", audio_ids=audio[:cut]), Turn("assistant", None, audio[cut:], words=[])]
        return self._finish(turns, "continuation", SYSTEM_PROMPTS["continuation"])

    def epoch(self, weights: dict[str, float], seed: int, epoch: int) -> list[TrainingSequence]:
        """One pass: every conversation once, each as one task drawn by `weights` (deterministic per seed and
        epoch). Single-example tasks use the conversation's turns in order of the draw."""
        unknown = sorted(set(weights) - set(TASKS))
        if unknown or not any(w > 0 for w in weights.values()):
            raise ValueError(f"task weights {weights}: tasks are {TASKS}, at least one with a positive weight")
        if self.layout.kind == "audio_only" and (weights.get("asr", 0) > 0 or weights.get("text_qa", 0) > 0):
            raise ValueError("the audio_only layout has no text answers: give asr and text_qa weight 0")
        if self.layout.kind == "text_only" and any(weights.get(t, 0) > 0 for t in ("aqaa", "tts", "continuation")):
            raise ValueError("the text_only layout has no audio answers: give aqaa, tts and continuation weight 0")
        rng = random.Random(f"{seed}/{epoch}")
        names = [t for t in TASKS if weights.get(t, 0) > 0]
        probs = [weights[t] for t in names]
        out = []
        for conv in self.conversation_ids:
            task = rng.choices(names, probs)[0]
            turns = self._conversations[conv]
            if task == "aqaa":
                out.append(self.aqaa(conv))
            elif task == "text_qa":
                out.append(self.text_qa(conv))
            else:
                i = rng.choice(turns)
                if task == "asr":
                    out.append(self.asr(i, rng.choice(("query", "answer"))))
                elif task == "tts":
                    out.append(self.tts(i))
                else:
                    out.append(self.continuation(i, rng))
        return out
