"""A causal dilated convolution stack with an explicit streaming state, channels last.

Offline and streaming use the same arithmetic: each layer concatenates its cached history (zeros at the start)
with the new frames, gathers the dilated taps, and applies one row-stable matrix product. Feeding a signal in
pieces therefore gives bit for bit the output of feeding it whole.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from aqaa.codec.stable import stable_linear

State = list[torch.Tensor]


class CausalBlock(nn.Module):
    """x + W2 · gelu(causal_conv_d(norm(x))); x is [B, T, C]."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Linear(kernel * channels, channels)  # taps t-(k-1)d … t, concatenated
        self.mix = nn.Linear(channels, channels)
        self.kernel, self.dilation = kernel, dilation
        self.history = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = x.shape[1]
        h = torch.cat([cache, self.norm(x)], dim=1)  # [B, history + T, C]
        taps = torch.cat([h[:, j * self.dilation: j * self.dilation + t] for j in range(self.kernel)], dim=-1)
        y = F.gelu(stable_linear(taps, self.conv.weight, self.conv.bias))  # [B, T, C]
        return x + stable_linear(y, self.mix.weight, self.mix.bias), h[:, h.shape[1] - self.history:]


class CausalConvStack(nn.Module):
    """[B, T, d_in] → [B, T, channels]; output t depends on inputs ≤ t only."""

    def __init__(self, d_in: int, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, channels)
        self.blocks = nn.ModuleList(CausalBlock(channels, kernel, d) for d in dilations)
        self.out_norm = nn.LayerNorm(channels)

    def initial_state(self, batch: int) -> State:
        p = self.inp.weight
        return [p.new_zeros(batch, b.history, p.shape[0]) for b in self.blocks]

    @property
    def receptive_field(self) -> int:
        """How many input frames (the current one included) an output frame depends on."""
        return 1 + sum(b.history for b in self.blocks)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = self.initial_state(x.shape[0])
        h = stable_linear(x, self.inp.weight, self.inp.bias)  # [B, T, C]
        new_state = []
        for block, cache in zip(self.blocks, state, strict=True):
            h, cache = block(h, cache)
            new_state.append(cache)
        return self.out_norm(h), new_state
