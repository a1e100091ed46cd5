"""Causal 1-D conv building blocks with an explicit streaming state, channels last ([B, T, C]).

Each layer keeps the last inputs it still needs (its cache), so feeding a sequence in pieces gives the output of
feeding it whole. A network may look ahead only in its first layer (`DelayedConv`): its output for frame t needs
input frames up to t + lookahead, so in a stream it comes `lookahead` frames late and `flush` supplies the
zeros that an offline pass pads the end with.

At inference (no autograd) a ConvNeXt block runs as one C++ call (csrc/kernels.cpp) where aqaa's C++ builds: a
stream's chunks are a few rows, where Python's per-op cost outweighs the arithmetic. Its output equals the Python
path's to float rounding; `Vocoder.set_kernel` chooses the path for a whole model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from aqaa.native import check_kernel, kernel_module

INPUT_PAST = 2  # past frames a stack's first layer sees (its blocks see further back)
SHORT = 48  # frames: up to this, depthwise convs use the unfolded-taps product


class CausalDepthwise(nn.Module):
    """Depthwise conv over the current and `kernel - 1` past frames: [B, T, C] → [B, T, C]."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, 1, kernel) / math.sqrt(kernel))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.history = kernel - 1

    def initial_cache(self, batch: int) -> torch.Tensor:
        return self.weight.new_zeros(batch, self.history, self.weight.shape[0])

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([cache, x], dim=1)  # [B, history + T, C]
        if x.shape[1] <= SHORT:
            # A stream's chunks are short; there one product over the unfolded taps beats the conv kernel's
            # set-up cost several times over.
            y = (h.unfold(1, self.history + 1, 1) * self.weight[:, 0]).sum(-1) + self.bias
        else:
            # On this CPU oneDNN's 2-D depthwise kernel runs 2-5x faster than its 1-D one (training: ~6x).
            y = F.conv2d(h.transpose(1, 2)[:, :, None], self.weight[:, :, None], self.bias,
                         groups=h.shape[2])[:, :, 0].transpose(1, 2)
        return y, h[:, h.shape[1] - self.history:]


def vocoder_kernels(kernel: str) -> Any:
    """The vocoder's C++ module for `kernel` ("auto", "cpp" or "python"), or None for the Python path."""
    return kernel_module(kernel, "vocoder kernels", "streaming 2-3x slower")


def product_weight(module: Any, weight: torch.Tensor) -> torch.Tensor:
    """A Linear's weight [N, K] as the C++ kernels multiply by it: float16 panels where the CPU runs them and every
    weight is exactly a float16 value (the same products from half the bytes), else the fp32 transpose [K, N]."""
    weight_t = weight.detach().t().contiguous()
    if module.half_supported() and torch.equal(weight_t.half().float(), weight_t):
        return module.pack_half(weight_t)
    return weight_t


class KernelChoice:
    """How a module runs at inference: "auto" (C++ where it builds, else Python with a warning), "cpp" (an error
    where it does not build) or "python". `Vocoder.set_kernel` sets every such module of a vocoder."""

    implementation = "auto"

    def set_kernel(self, kernel: str) -> None:
        check_kernel(kernel)
        self.implementation = kernel


class Packed:
    """Operands a C++ kernel reads, made from a module's weights (transposed, reshaped) and remade whenever one of
    them changes: optimiser steps and loads write in place (bumping a tensor's version), `.to()` moves the data.
    The weights are looked up once (attribute look-ups on nested modules cost more than a stream's block call
    saves), so a Parameter replaced by a new object afterwards is not seen."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] | None = None
        self.key: tuple[object, ...] = ()
        self.value: Any = None

    def get(self, weights: Callable[[], list[torch.Tensor]], make: Callable[[], Any], variant: object = None) -> Any:
        """`make()`'s value for the weights' current contents (and `variant`: what else the value depends on)."""
        if self.weights is None:
            self.weights = weights()
        key = (variant, *(w._version for w in self.weights), *(w.data_ptr() for w in self.weights))
        if key != self.key:
            with torch.no_grad():
                self.value = make()
            self.key = key
        return self.value


class Linear(KernelChoice, nn.Linear):
    """nn.Linear whose inference product runs on a stored copy of the weight: the C++ kernels' (`product_weight`),
    or on the Python path the fp32 transpose, which MKL multiplies a stream's few rows by ~1.5x faster than the
    transposed view F.linear passes."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self._packed = Packed()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32:
            return super().forward(x)
        module = vocoder_kernels(self.implementation)
        rows = x.reshape(-1, x.shape[-1]).contiguous()
        if module is None:
            weight_t = self._packed.get(lambda: [self.weight], lambda: self.weight.t().contiguous(), "python")
            y = torch.addmm(self.bias, rows, weight_t)
        else:
            weight = self._packed.get(lambda: [self.weight], lambda: product_weight(module, self.weight), "cpp")
            y = module.linear(rows, weight, self.bias)
        return y.view(*x.shape[:-1], self.out_features)


class ConvNeXtBlock(KernelChoice, nn.Module):
    """x + scale · MLP(norm(causal_dwconv(x)) + bias); `bias` [B, 1, C] carries a per-call condition (time)."""

    def __init__(self, channels: int, kernel: int, expansion: int, scale: float) -> None:
        super().__init__()
        self.dwconv = CausalDepthwise(channels, kernel)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, expansion * channels)
        self.down = nn.Linear(expansion * channels, channels)
        self.scale = nn.Parameter(torch.full((channels,), scale))
        self._packed = Packed()

    def forward(self, x: torch.Tensor, cache: torch.Tensor,
                bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_grad_enabled() and x.dtype == torch.float32 and x.device.type == "cpu":
            module = vocoder_kernels(self.implementation)
            if module is not None:
                parts, eps = self.operands(module)
                return module.convnext_block(x.contiguous(), cache.contiguous(),
                                             None if bias is None else bias.contiguous(), parts, eps)
        y, cache = self.dwconv(x, cache)
        y = self.norm(y)
        if bias is not None:
            y = y + bias
        return torch.addcmul(x, self.scale, self.down(F.gelu(self.up(y)))), cache

    def weights(self) -> list[torch.Tensor]:
        return [self.dwconv.weight, self.dwconv.bias, self.norm.weight, self.norm.bias, self.up.weight, self.up.bias,
                self.down.weight, self.down.bias, self.scale]

    def operands(self, module: Any) -> tuple[list[torch.Tensor], float]:
        """The weights as the C++ kernels `module` read them (conv taps [K, C], `product_weight`s), and the norm's
        eps."""
        return self._packed.get(self.weights, lambda: ([
            self.dwconv.weight[:, 0].t().contiguous(), self.dwconv.bias.detach(), self.norm.weight.detach(),
            self.norm.bias.detach(), product_weight(module, self.up.weight), self.up.bias.detach(),
            product_weight(module, self.down.weight), self.down.bias.detach(), self.scale.detach()], self.norm.eps))


class DelayedConv(nn.Module):
    """Full conv whose output for frame t sees input frames t - past … t + lookahead: [B, T, C_in] → [B, T, C_out].

    Computed as a causal conv (one product over the stacked taps: oneDNN's 1-D conv backward is slow here) whose
    output is read `lookahead` frames late; a stream discards its first `lookahead` outputs, which would belong
    to frames before 0.
    """

    def __init__(self, c_in: int, c_out: int, past: int, lookahead: int) -> None:
        super().__init__()
        self.history, self.lookahead, self.c_in = past + lookahead, lookahead, c_in
        self.taps = Linear(c_in * (self.history + 1), c_out)

    def initial_cache(self, batch: int) -> torch.Tensor:
        return self.taps.weight.new_zeros(batch, self.history, self.c_in)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([cache, x], dim=1)  # [B, history + T, C_in]
        taps = h.unfold(1, self.history + 1, 1)  # [B, T, C_in, history + 1]
        return self.taps(taps.reshape(*taps.shape[:2], -1)), h[:, h.shape[1] - self.history:]


class ConvStack(nn.Module):
    """DelayedConv → GELU → causal ConvNeXt blocks → LayerNorm; [B, T, C_in] → [B, T, C]. Only the first layer
    looks ahead; the blocks' receptive field is `blocks * (kernel - 1)` frames back."""

    def __init__(self, c_in: int, channels: int, blocks: int, kernel: int, expansion: int, lookahead: int) -> None:
        super().__init__()
        self.inp = DelayedConv(c_in, channels, INPUT_PAST, lookahead)
        self.blocks = nn.ModuleList(ConvNeXtBlock(channels, kernel, expansion, 1.0 / blocks) for _ in range(blocks))
        self.norm = nn.LayerNorm(channels)

    @property
    def lookahead(self) -> int:
        return self.inp.lookahead

    def initial_state(self, batch: int) -> StackState:
        return StackState([self.inp.initial_cache(batch)] + [b.dwconv.initial_cache(batch) for b in self.blocks],
                          self.lookahead)

    def forward(self, x: torch.Tensor, state: StackState) -> torch.Tensor:
        """New input frames [B, T, C_in] → the output frames they complete [B, T', C] (T' = T once started)."""
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.norm.normalized_shape[0])
        h, state.caches[0] = self.inp(x, state.caches[0])
        skip = min(state.drop, h.shape[1])
        h, state.drop = h[:, skip:], state.drop - skip
        if h.shape[1] == 0:  # everything so far belongs before frame 0
            return h.new_zeros(h.shape[0], 0, self.norm.normalized_shape[0])
        h = F.gelu(h)
        for i, block in enumerate(self.blocks):
            h, state.caches[i + 1] = block(h, state.caches[i + 1])
        return self.norm(h)

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        """Offline: every output frame of x [B, T, C_in], the end padded with zeros as a stream's flush does."""
        state = self.initial_state(x.shape[0])
        return self.forward(F.pad(x, (0, 0, 0, self.lookahead)), state)


class StackState:
    """Caches of a ConvStack in a stream, and how many of its first outputs still belong before frame 0."""

    def __init__(self, caches: list[torch.Tensor], drop: int) -> None:
        self.caches, self.drop = caches, drop
