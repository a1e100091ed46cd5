"""Where every token id lives. The LM vocabulary is: text tokens, then linguistic audio codes, then semantic
audio codes, then chat/control specials. Audio ids depend only on the text vocabulary's size."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AudioVocab:
    text_size: int = 0  # 0: audio-only ids (linguistic 0 …, then semantic)
    linguistic_size: int = 1024
    semantic_size: int = 4096

    @property
    def linguistic_offset(self) -> int:
        return self.text_size

    @property
    def semantic_offset(self) -> int:
        return self.text_size + self.linguistic_size

    @property
    def end(self) -> int:
        """One past the last audio id; specials start here."""
        return self.semantic_offset + self.semantic_size

    def linguistic_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.linguistic_offset

    def semantic_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.semantic_offset

    def is_linguistic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.linguistic_offset) & (ids < self.semantic_offset)

    def is_semantic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.semantic_offset) & (ids < self.end)
