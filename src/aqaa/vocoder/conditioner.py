"""Token conditioner: linguistic and semantic codes → a per-frame mel prior and features for the flow estimator.

Both streams are embedded on a common grid of `unit` frames (the gcd of the two token lengths: 2 frames, 50 Hz),
each unit also told where it sits inside its tokens (a phase embedding), then a conv stack that looks
`lookahead_frames` ahead (the causal tokenizer hears a phone before it names it) and back over its receptive
field. A linear head gives, for each of the unit's frames, the prior `mu` (normalised log-mel, trained to
match the target) and `features` that condition the estimator. It runs once per utterance, not once per flow
step, so most of the vocoder's capacity can live here cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aqaa.vocoder.causal import ConvStack, Linear, StackState
from aqaa.vocoder.layout import TokenLayout


@dataclass
class ConditionerConfig:
    channels: int = 256
    blocks: int = 6
    kernel: int = 5
    expansion: int = 2
    lookahead_frames: int = 12  # mel frames of later tokens a frame may see (120 ms: one group)
    features: int = 64  # per-frame features handed to the estimator


class TokenConditioner(nn.Module):
    """codes → mu [B, T, n_mels] (normalised log-mel prior) and features [B, T, features], T = units · unit."""

    def __init__(self, layout: TokenLayout, config: ConditionerConfig, n_mels: int) -> None:
        super().__init__()
        self.layout, self.config, self.n_mels = layout, config, n_mels
        self.unit = math.gcd(layout.linguistic_frames, layout.semantic_frames)
        if config.lookahead_frames % self.unit:
            raise ValueError(f"conditioner lookahead_frames ({config.lookahead_frames}) must be a multiple of "
                             f"{self.unit} frames (the unit both token lengths divide into)")
        c = config.channels
        self.linguistic = nn.Embedding(layout.linguistic_codebook, c) if layout.uses_linguistic else None
        self.semantic = nn.Embedding(layout.semantic_codebook, c) if layout.uses_semantic else None
        self.linguistic_phases = layout.linguistic_frames // self.unit
        self.phase = nn.Embedding(self.linguistic_phases + layout.semantic_frames // self.unit, c)
        self.stack = ConvStack(c, c, config.blocks, config.kernel, config.expansion,
                               config.lookahead_frames // self.unit)
        self.head = Linear(c, self.unit * (n_mels + config.features))

    def embed(self, linguistic: torch.Tensor, semantic: torch.Tensor, start: int, count: int) -> torch.Tensor:
        """Embeddings [B, count, C] of units start … start + count - 1 from codes [B, T_l] and [B, T_s]."""
        # first frame of each unit
        first = torch.arange(start, start + count, device=self.phase.weight.device) * self.unit
        x = 0
        lay = self.layout
        if self.linguistic is not None:
            index = (first // lay.linguistic_frames).clamp(max=linguistic.shape[1] - 1)
            x = x + self.linguistic(linguistic[:, index]) + self.phase((first % lay.linguistic_frames) // self.unit)
        if self.semantic is not None:
            index = (first // lay.semantic_frames).clamp(max=semantic.shape[1] - 1)
            x = x + self.semantic(semantic[:, index]) + self.phase(
                self.linguistic_phases + (first % lay.semantic_frames) // self.unit)
        return x

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack output [B, U, C] → mu [B, U · unit, n_mels], features [B, U · unit, features]."""
        b, u, _ = h.shape
        y = self.head(h).reshape(b, u * self.unit, self.n_mels + self.config.features)
        return y[..., : self.n_mels], y[..., self.n_mels:]

    def initial_state(self, batch: int) -> StackState:
        return self.stack.initial_state(batch)

    def forward(self, linguistic: torch.Tensor, semantic: torch.Tensor,
                unit_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offline over padded codes; unit_mask [B, U] marks real units (padding embeds as zeros, as a stream's
        end does)."""
        x = self.embed(linguistic, semantic, 0, unit_mask.shape[1]) * unit_mask[..., None]
        return self.heads(self.stack.whole(x))
