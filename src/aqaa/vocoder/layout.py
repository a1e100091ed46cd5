"""What the vocoder knows about the audio tokens: codebook sizes and the frame arithmetic, copied from the
tokenizer's config when the vocoder is trained (so a saved vocoder works on its own), and checked on every input.

A linguistic token covers `linguistic_frames` mel frames (6 × 10 ms), a semantic token `semantic_frames` (4 × 10
ms), and a group of 2 + 3 tokens covers `group_frames` (12, 120 ms). The mel frames a vocoder renders from
`Codes` are those covered by every stream it reads: min(6 · T_l, 4 · T_s) for the dual layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aqaa.codec.tokenizer import STREAMS, Codes, TokenizerConfig
from aqaa.vocab import AudioVocab


class CodesError(ValueError):
    """Codes the vocoder cannot render; the message says what is wrong with them."""


@dataclass
class TokenLayout:
    streams: str = "dual"
    linguistic_frames: int = 6
    semantic_frames: int = 4
    linguistic_codebook: int = 1024
    semantic_codebook: int = 4096
    linguistic_per_group: int = 2
    semantic_per_group: int = 3
    sample_rate: int = 16000
    hop: int = 160

    def __post_init__(self) -> None:
        if self.streams not in STREAMS:
            raise ValueError(f"streams must be one of {STREAMS}, not {self.streams!r}")
        spans = (self.linguistic_frames * self.linguistic_per_group, self.semantic_frames * self.semantic_per_group)
        if spans[0] != spans[1]:
            raise ValueError(f"a group must span the same frames in both streams, got {spans}")

    @classmethod
    def from_tokenizer(cls, config: TokenizerConfig, streams: str | None = None) -> TokenLayout:
        mel = config.linguistic.mel
        return cls(streams=streams or config.streams,
                   linguistic_frames=config.linguistic.encoder.frames_per_token,
                   semantic_frames=config.semantic.encoder.frames_per_token,
                   linguistic_codebook=config.linguistic.codebook_size,
                   semantic_codebook=config.semantic.codebook_size,
                   linguistic_per_group=config.linguistic_per_group,
                   semantic_per_group=config.semantic_per_group,
                   sample_rate=mel.sample_rate, hop=mel.hop)

    @property
    def uses_linguistic(self) -> bool:
        return self.streams != "semantic"

    @property
    def uses_semantic(self) -> bool:
        return self.streams != "linguistic"

    @property
    def group_frames(self) -> int:
        return self.linguistic_frames * self.linguistic_per_group

    @property
    def per_group(self) -> tuple[int, int]:
        """Ids of each stream per interleaved group (0 for a stream this layout leaves out)."""
        return (self.linguistic_per_group if self.uses_linguistic else 0,
                self.semantic_per_group if self.uses_semantic else 0)

    @property
    def vocab(self) -> AudioVocab:
        """Audio-only ids, as `aqaa tokenize` prints them: linguistic from 0, semantic after them."""
        return AudioVocab(0, self.linguistic_codebook, self.semantic_codebook)

    def frames(self, n_linguistic: int, n_semantic: int) -> int:
        """Mel frames covered by every stream this layout reads."""
        spans = []
        if self.uses_linguistic:
            spans.append(n_linguistic * self.linguistic_frames)
        if self.uses_semantic:
            spans.append(n_semantic * self.semantic_frames)
        return min(spans)

    def check(self, codes: Codes, allow_empty: bool = False) -> Codes:
        """`codes` as 1-D long tensors, or a CodesError naming what is wrong."""
        out = []
        for name, used, size in (("linguistic", self.uses_linguistic, self.linguistic_codebook),
                                 ("semantic", self.uses_semantic, self.semantic_codebook)):
            value = getattr(codes, name)
            tensor = torch.as_tensor(value if value is not None else [], dtype=torch.long)
            if tensor.ndim != 1:
                raise CodesError(f"{name} codes must be a 1-D sequence, got shape {tuple(tensor.shape)}")
            if used and len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= size):
                bad = tensor[(tensor < 0) | (tensor >= size)][0]
                raise CodesError(f"{name} code {int(bad)} is outside this vocoder's codebook [0, {size})")
            out.append(tensor)
        checked = Codes(*out)
        if not allow_empty and self.frames(len(out[0]), len(out[1])) == 0:
            need = {"dual": "both linguistic and semantic codes", "linguistic": "linguistic codes",
                    "semantic": "semantic codes"}[self.streams]
            raise CodesError(f"no audio to render: this vocoder ({self.streams} layout) needs {need}, got "
                             f"{len(out[0])} linguistic and {len(out[1])} semantic")
        return checked
