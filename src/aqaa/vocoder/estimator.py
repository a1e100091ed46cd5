"""The flow estimator: a small causal U-Net over mel frames, v(x_t, t | condition).

    x_t [B, T, n_mels] ─ in ─(+ cond, + time)─ full-rate blocks ─┬──────────────────────────── + ─ blocks ─ out → v
                                                                 └ down ×stride ─ low-rate blocks ─ up ┘

Most parameters work at the low rate (frame rate / stride: 25 Hz), where a frame costs a quarter. Every conv is
causal at its own rate and a low-rate frame summarises `stride` whole frames, so the output for frame t depends
on inputs up to the end of t's stride block. That holds after any number of Euler steps, so a stream that
renders whole blocks, keeping one state per step, reproduces the offline result.

The condition (the conditioner's prior and features) enters through `condition()`, computed once per utterance,
so a flow step costs only the U-Net on x_t. At inference `solver()` gives the same network as one C++ object that
runs a whole Euler solve (csrc/kernels.cpp), for streams, whose few-row steps Python's per-op cost would dominate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aqaa.vocoder.causal import ConvNeXtBlock, KernelChoice, Linear, Packed, product_weight, vocoder_kernels

Condition = tuple[torch.Tensor, torch.Tensor]  # full-rate [B, T, C], low-rate [B, T / stride, D]
State = list[torch.Tensor]


@dataclass
class EstimatorConfig:
    channels: int = 96  # at the mel frame rate
    low_channels: int = 192  # at frame rate / stride
    stride: int = 4
    blocks: int = 1  # full-rate blocks before the low-rate path, and again after it
    low_blocks: int = 4
    kernel: int = 7
    low_kernel: int = 5
    expansion: int = 2
    time_channels: int = 128


def time_features(t: torch.Tensor, channels: int) -> torch.Tensor:
    """Sinusoidal features [B, channels] of flow times t [B] in [0, 1]."""
    half = channels // 2
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), half, device=t.device))
    angles = t[:, None] * freqs[None] * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Estimator(KernelChoice, nn.Module):
    def __init__(self, n_mels: int, condition_features: int, config: EstimatorConfig) -> None:
        super().__init__()
        self.config = config
        c, d, s = config.channels, config.low_channels, config.stride
        scale = 1.0 / (2 * config.blocks + config.low_blocks)
        self.inp = nn.Linear(n_mels, c)
        self.cond_full = Linear(n_mels + condition_features, c)
        self.cond_low = Linear(s * condition_features, d)
        self.time = nn.Sequential(nn.Linear(config.time_channels, config.time_channels), nn.GELU())
        self.pre = nn.ModuleList(ConvNeXtBlock(c, config.kernel, config.expansion, scale) for _ in range(config.blocks))
        self.down = nn.Linear(s * c, d)
        self.low = nn.ModuleList(ConvNeXtBlock(d, config.low_kernel, config.expansion, scale)
                                 for _ in range(config.low_blocks))
        self.up = nn.Linear(d, s * c)
        self.post = nn.ModuleList(ConvNeXtBlock(c, config.kernel, config.expansion, scale)
                                  for _ in range(config.blocks))
        self.norm = nn.LayerNorm(c)
        self.out = nn.Linear(c, n_mels)
        nn.init.zeros_(self.out.weight)  # v starts at 0: the first updates learn the mean flow
        nn.init.zeros_(self.out.bias)
        # One time bias per level input and per block, in the order forward uses them, from one product per call.
        self.widths = [c] * (1 + config.blocks) + [d] * (1 + config.low_blocks) + [c] * config.blocks
        self.time_bias = nn.Linear(config.time_channels, sum(self.widths))
        self._packed = Packed()
        self._step_biases = Packed()

    def solver(self) -> Any:
        """The C++ Euler solver over this estimator's weights (`render(x0, cond_full, cond_low, biases, states,
        dt, guidance)`), or None where the Python path is chosen or the kernels do not build."""
        module = vocoder_kernels(self.implementation)
        if module is None:
            return None
        blocks = [*self.pre, *self.low, *self.post]

        def make() -> Any:
            linears = [tensor for layer in (self.inp, self.down, self.up, self.out)
                       for tensor in (product_weight(module, layer.weight), layer.bias.detach())]
            operands = [block.operands(module) for block in blocks]
            return module.FlowSolver(linears, [self.norm.weight.detach(), self.norm.bias.detach()], self.norm.eps,
                                     self.config.stride, [parts for parts, _ in operands],
                                     [eps for _, eps in operands], len(self.pre), len(self.low))

        def weights() -> list[torch.Tensor]:
            return [w for layer in (self.inp, self.down, self.up, self.out, self.norm) for w in (layer.weight, layer.bias)
                    ] + [w for block in blocks for w in block.weights()]

        return self._packed.get(weights, make)

    def condition(self, mu: torch.Tensor, features: torch.Tensor) -> Condition:
        """mu [B, T, n_mels], features [B, T, F] → the estimator's condition (T a multiple of stride)."""
        b, t, f = features.shape
        s = self.config.stride
        return (self.cond_full(torch.cat([mu, features], dim=-1)),
                self.cond_low(features.reshape(b, t // s, s * f)))

    def null_condition(self, batch: int, frames: int) -> Condition:
        """The condition with no tokens (classifier-free guidance's unconditional branch)."""
        full = self.cond_full.bias.expand(batch, frames, -1)
        return full, self.cond_low.bias.expand(batch, frames // self.config.stride, -1)

    def initial_state(self, batch: int) -> State:
        return [blk.dwconv.initial_cache(batch) for blk in (*self.pre, *self.low, *self.post)]

    def time_biases(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Flow times t [B] → the per-level and per-block time biases, each [B, 1, width]."""
        features = self.time(time_features(t, self.config.time_channels))
        return list(self.time_bias(features)[:, None].split(self.widths, dim=-1))

    def step_biases(self, times: list[float], batch: int) -> list[list[torch.Tensor]]:
        """`time_biases` at each of the flow times, each [batch, 1, width] and contiguous: what a stream uses at
        every chunk. Kept per (times, batch), since every stream of a vocoder asks for the same few."""
        cache = self._step_biases.get(lambda: [*self.time.parameters(), *self.time_bias.parameters()], dict)
        key = (tuple(times), batch)
        if key not in cache:
            with torch.no_grad():
                cache[key] = [[bias.contiguous() for bias in self.time_biases(torch.full((batch,), t))]
                              for t in times]
        return cache[key]

    def forward(self, x: torch.Tensor, t: torch.Tensor | list[torch.Tensor], cond: Condition,
                state: State | None = None) -> tuple[torch.Tensor, State]:
        """x [B, T, n_mels], t [B] (or its `time_biases`, which a stream computes once per step), cond →
        v [B, T, n_mels] and the new state; T a multiple of stride."""
        b, frames, _ = x.shape
        s = self.config.stride
        if frames % s:
            raise ValueError(f"the estimator renders whole blocks of {s} frames, got {frames}")
        if state is None:
            state = self.initial_state(b)
        biases = iter(self.time_biases(t) if torch.is_tensor(t) else t)
        caches = iter(state)
        new_state: State = []

        def run(blocks: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
            for block in blocks:
                h, cache = block(h, next(caches), next(biases))
                new_state.append(cache)
            return h

        h = self.inp(x) + cond[0] + next(biases)  # [B, T, C]
        skip = run(self.pre, h)
        z = self.down(skip.reshape(b, frames // s, -1)) + cond[1] + next(biases)  # [B, T / s, D]
        z = run(self.low, z)
        h = run(self.post, skip + self.up(z).reshape(b, frames, -1))  # [B, T, C]
        return self.out(self.norm(h)), new_state
