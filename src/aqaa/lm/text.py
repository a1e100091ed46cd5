"""The text-only LM of the cascade baseline: the same backbone, trained by the same recipe on the `text_qa` task
alone (configs/lm/text.yaml), answering text questions with text.

A text answerer directory holds `config.json` ({"kind": "aqaa.text_lm", "lm": DIR}) beside or around the
exported LM; `aqaa.eval.cascade` loads it by that kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aqaa.checkpoint import write_json
from aqaa.lm.generate import Generator, SamplingConfig
from aqaa.lm.layouts import Turn, build_prompt, parse_answer
from aqaa.lm.model import LM_CONFIG_FILE
from aqaa.lm.tasks import SYSTEM_PROMPTS
from aqaa.vocab import Vocabulary

KIND = "aqaa.text_lm"


@dataclass
class TextLM:
    model: torch.nn.Module
    vocab: Vocabulary
    max_new_tokens: int = 96

    def __post_init__(self) -> None:
        self.generator = Generator(self.model, self.vocab, "text_only",
                                   SamplingConfig(greedy=True, max_new_tokens=self.max_new_tokens), max_len=1024)

    def answer_text(self, history_texts: list[str], question: str) -> str:
        """Greedy answer to `question` after `history_texts` (human and assistant turns alternating)."""
        turns = [Turn("human" if k % 2 == 0 else "assistant", None if k % 2 else text,
                      words=[(self.vocab.encode_text(text), 0.0)] if k % 2 else None)
                 for k, text in enumerate(history_texts)]
        prompt = build_prompt(self.vocab, [*turns, Turn("human", question)], "text_only",
                              system=SYSTEM_PROMPTS["text_qa"])
        events = list(self.generator.generate(prompt))
        text_ids, _ = parse_answer(self.vocab, self.generator.last_answer_ids, "text_only",
                                   require_end=not events[-1].truncated)
        return self.vocab.decode_text(text_ids).strip()

    @classmethod
    def from_dir(cls, directory: str | Path, config: dict[str, Any] | None = None) -> TextLM:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        directory = Path(directory)
        config = config or json.loads((directory / "config.json").read_text())
        lm = directory / config.get("lm", ".")
        if not (lm / LM_CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{directory}: no exported LM at {lm} (train one with configs/lm/text.yaml)")
        hf_logging.disable_progress_bar()
        model = AutoModelForCausalLM.from_pretrained(str(lm), local_files_only=True, dtype=torch.float32)
        return cls(model.eval(), Vocabulary.load(lm))


def save_text_answerer(directory: str | Path, lm_dir: str | Path) -> Path:
    """Write a text answerer directory pointing at an exported LM (a path relative to it, or absolute)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", {"kind": KIND, "lm": str(lm_dir)})
    return directory


def _register() -> None:
    from aqaa.eval.cascade import register_text_answerer

    register_text_answerer(KIND, lambda directory, config: TextLM.from_dir(directory, config))


_register()
