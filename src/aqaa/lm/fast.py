"""Incremental decoding over a Hugging Face Llama's weights, with as little per-token work as possible.

On a CPU a small model's decode step is bound by reading its weights (memory bandwidth), and each small op costs
a fixed few microseconds, so the step is kept to the weight products and as little else as possible. Two paths
share one KV cache:

- Python (prompts, verification passes, and every step with `kernel="python"`): q/k/v and gate/up fused into one
  `mm` each over pre-transposed views, the fused `rms_norm`, RoPE on q and k together in three ops from tables
  computed once, a preallocated KV cache written in place (no `torch.cat`), no masks during decoding, no dtype
  casts (about 20 ops a layer). Every op computes what `transformers`' Llama computes, bit for bit, so its logits
  equal HF's exactly.
- C++ (single-token steps, `kernel="auto"` or `"cpp"`): the same weight products, and everything between them as
  plain loops in one call (csrc/decode_step.cpp), built once per machine by torch's extension loader. Its sums run
  in another order, so its logits equal HF's to float rounding (~1e-6); greedy tokens are checked against HF
  `generate` by the tests and `bench/decode.py`. `"auto"` falls back to Python, with a warning, where no C++
  compiler is found.

Past that floor, fewer bytes per token: `weights="int8"` stores every weight matrix as int8 with one float
scale per output (weight-only: activations stay float32; a quarter of the bytes, read directly by the C++ step),
`weights="bf16"` as bfloat16 (half; Python path only). They change the logits slightly, so their tokens are
measured against fp32's, not assumed equal. And `speculative_greedy` verifies several drafted tokens in one
forward pass, which reads the weights once for all of them; its output is exactly greedy decoding's through the
Python path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from aqaa.native import kernel_module

WEIGHT_FORMATS = ("fp32", "bf16", "int8")
KERNEL_WEIGHTS = ("fp32", "int8")  # the weight formats the C++ step reads
Product = Callable[[torch.Tensor], torch.Tensor]  # x [T, d_in] → x Wᵀ [T, d_out] in one of the weight formats


class _Int8Linear:
    """y = x Wᵀ with W as int8 and one float32 scale per output (weight-only: x stays float32), stored transposed
    [d_in, d_out] for the C++ step's loop. Here it is widened to float for one `mm` (prompts, verification); the
    C++ step reads the int8 bytes themselves."""

    def __init__(self, weight: torch.Tensor) -> None:
        w = weight.detach().float()
        self.scale = (w.abs().amax(1) / 127).clamp(min=1e-12)
        self.weight_t = torch.round(w / self.scale[:, None]).to(torch.int8).t().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mm(x, self.weight_t.float()) * self.scale

    def kernel_parts(self) -> list[torch.Tensor]:
        return [self.weight_t, self.scale]


class _Fp32Linear:
    """y = x Wᵀ as one `mm` over a pre-made transposed view: what `F.linear` computes, bit for bit, without its
    dispatch and per-call transpose."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight_t = weight.detach().t()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mm(x, self.weight_t)

    def kernel_parts(self) -> list[torch.Tensor]:
        return [self.weight_t]


class _Bf16Linear:
    """y = x Wᵀ with W stored as bfloat16 (half the bytes); x is rounded to bfloat16, y comes back float32."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.detach().to(torch.bfloat16)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), self.weight).float()


_LINEARS = {"fp32": _Fp32Linear, "bf16": _Bf16Linear, "int8": _Int8Linear}


def _step_kernel(kernel: str, weights: str) -> Any:
    """The C++ module for `kernel` ("auto", "cpp" or "python"), or None for the Python path."""
    if kernel == "auto" and weights not in KERNEL_WEIGHTS:
        return None
    if kernel == "cpp" and weights not in KERNEL_WEIGHTS:
        raise ValueError(f"the C++ decode step reads {' or '.join(KERNEL_WEIGHTS)} weights, not {weights}")
    return kernel_module(kernel, "decode step", "about 1.5x slower")


@dataclass
class _Layer:
    norm1: torch.Tensor
    qkv: Product  # x [T, d] → [T, (H + 2 H_kv) D]
    out: Product
    norm2: torch.Tensor
    gate_up: Product  # x [T, d] → [T, 2 d_ff]
    down: Product
    keys: torch.Tensor  # this layer's KV cache [1, H_kv, max_len, D], views into FastLlama's
    values: torch.Tensor


class FastLlama:
    """Prefill a prompt, then step one token at a time; `logits` come back as a [vocab] float32 vector."""

    def __init__(self, model: torch.nn.Module, max_len: int = 2048, weights: str = "fp32",
                 layers: int | None = None, kernel: str = "auto") -> None:
        """`layers`: use only the first N transformer layers (then the final norm and head): a cheap draft model
        for speculative decoding made from the model itself. `kernel`: how single-token steps run ("auto": C++
        when it builds and reads the weight format, else Python; "cpp"; "python")."""
        if weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, not {weights!r}")
        module = _step_kernel(kernel, weights)
        cfg = model.config
        if getattr(cfg, "rope_scaling", None) not in (None, {}) and cfg.rope_scaling.get("rope_type") != "default":
            raise ValueError("FastLlama supports the default RoPE only")
        if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False) or cfg.hidden_act != "silu":
            raise ValueError("FastLlama supports bias-free Llama layers with SiLU MLPs")
        inner = model.model
        if inner.embed_tokens.weight.dtype != torch.float32:
            raise ValueError("FastLlama reads a float32 model (load it with dtype=torch.float32)")
        self.hidden = cfg.hidden_size
        self.eps = cfg.rms_norm_eps
        self.max_len = max_len
        self.weights = weights
        linear = _LINEARS[weights]
        self.embed = inner.embed_tokens.weight.detach()
        self.final_norm = inner.norm.weight.detach()
        self.head = linear(model.lm_head.weight)
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        kept = inner.layers[:layers]
        shape = (len(kept), self.kv_heads, max_len, self.head_dim)
        self.k_cache = torch.zeros(shape)
        self.v_cache = torch.zeros(shape)
        self.layers = []
        for i, layer in enumerate(kept):
            a, m = layer.self_attn, layer.mlp
            self.layers.append(_Layer(
                layer.input_layernorm.weight.detach(),
                linear(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])), linear(a.o_proj.weight),
                layer.post_attention_layernorm.weight.detach(),
                linear(torch.cat([m.gate_proj.weight, m.up_proj.weight])), linear(m.down_proj.weight),
                self.k_cache[i][None], self.v_cache[i][None]))
        self.d_ff = inner.layers[0].mlp.down_proj.weight.shape[1]
        inv_freq = inner.rotary_emb.inv_freq.detach()
        scale = getattr(inner.rotary_emb, "attention_scaling", 1.0)
        freqs = torch.arange(max_len).float()[:, None] * inv_freq.float()
        emb = torch.cat([freqs, freqs], dim=-1)
        half = self.head_dim // 2
        # RoPE as x·cos + roll(x)·sin± with sin± = sin with its first half negated: HF's x·cos +
        # rotate_half(x)·sin bit for bit (negation is exact), in three ops instead of six. [max_len, 1, D]
        self.cos = (emb.cos() * scale)[:, None]
        sin = emb.sin() * scale
        self.sin_signed = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)[:, None]
        self.half = half
        self.scaling = self.head_dim ** -0.5
        self.q_size = self.heads * self.head_dim
        self.qk_heads = self.heads + self.kv_heads
        self.gqa = self.kv_heads != self.heads
        self.length = 0
        self.step_kernel = None if module is None else module.DecodeStep(
            self.embed, [n for layer in self.layers for n in (layer.norm1, layer.norm2)],
            [p.kernel_parts() for layer in self.layers for p in (layer.qkv, layer.out, layer.gate_up, layer.down)]
            + [self.head.kernel_parts()],
            self.final_norm, self.k_cache, self.v_cache, self.cos, self.sin_signed, self.heads, self.eps,
            self.scaling)

    @property
    def kernel(self) -> str:
        """Which path single-token steps take: "cpp" or "python"."""
        return "python" if self.step_kernel is None else "cpp"

    def reset(self) -> None:
        self.length = 0

    def truncate(self, length: int) -> None:
        """Forget everything after the first `length` tokens (a rejected speculative draft)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate {self.length} cached tokens to {length}")
        self.length = length

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, all_logits: bool = False) -> torch.Tensor:
        """Feed ids [T] after what is already cached; returns the logits of the last one [vocab] (or of every
        one [T, vocab] with `all_logits`)."""
        t = ids.shape[0]
        start, end = self.length, self.length + t
        if end > self.max_len:
            raise ValueError(f"sequence of {end} tokens exceeds max_len={self.max_len}")
        if t == 1 and not all_logits and self.step_kernel is not None:
            logits = self.step_kernel.step(int(ids[0]), start)
            self.length = end
            return logits
        shape, heads, qk_heads = (self.hidden,), self.heads, self.qk_heads
        x = self.embed[ids]  # [T, d]
        cos, sin = self.cos[start:end], self.sin_signed[start:end]  # [T, 1, D]
        mask = torch.ones(t, end, dtype=torch.bool).tril(start) if t > 1 else None  # decoding needs none
        # Cache writes and reads by narrow/copy_ and views only: each indexing op costs microseconds per layer.
        for layer in self.layers:
            qkv = layer.qkv(F.rms_norm(x, shape, layer.norm1, self.eps)).view(t, -1, self.head_dim)
            qk = qkv[:, :qk_heads]  # [T, H + H_kv, D]
            qk = qk * cos + torch.roll(qk, self.half, -1) * sin  # RoPE on q and k at once
            layer.keys.narrow(2, start, t).copy_(qk[:, heads:].transpose(0, 1))
            layer.values.narrow(2, start, t).copy_(qkv[:, qk_heads:].transpose(0, 1))
            attn = F.scaled_dot_product_attention(qk[:, :heads].transpose(0, 1)[None], layer.keys.narrow(2, 0, end),
                                                  layer.values.narrow(2, 0, end), attn_mask=mask, scale=self.scaling,
                                                  enable_gqa=self.gqa)  # [1, H, T, D]
            x = x + layer.out(attn[0].transpose(0, 1).reshape(t, self.q_size))
            gate_up = layer.gate_up(F.rms_norm(x, shape, layer.norm2, self.eps))  # [T, 2 d_ff]
            x = x + layer.down(F.silu(gate_up[:, : self.d_ff]) * gate_up[:, self.d_ff:])
        self.length = end
        if all_logits:
            return self.head(F.rms_norm(x, shape, self.final_norm, self.eps))
        return self.head(F.rms_norm(x[-1:], shape, self.final_norm, self.eps))[0]

    def weight_floor_step(self, x: torch.Tensor) -> torch.Tensor:
        """Only the per-token weight products of one step (no attention, norms or cache): the speed floor.
        x: [1, d] → [1, vocab]."""
        for layer in self.layers:
            x = x + layer.out(layer.qkv(x)[:, : self.q_size])
            x = x + layer.down(layer.gate_up(x)[:, : self.d_ff])
        return self.head(x)


def speculative_greedy(target: FastLlama, draft: FastLlama, prompt: torch.Tensor, n_tokens: int,
                       k: int = 4) -> tuple[list[int], dict[str, float]]:
    """Greedy decoding of `n_tokens` after `prompt` with `draft` proposing `k` tokens at a time and `target`
    checking them in one pass: the tokens are exactly `target`'s own greedy tokens through the Python path (the
    prompt and every check run there). Returns (tokens, stats)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    target.reset()
    draft.reset()
    next_logits = target.forward(prompt)  # target's prediction for the next position
    draft.forward(prompt)
    base = len(prompt)
    tokens: list[int] = []
    proposed = accepted = rounds = 0
    while len(tokens) < n_tokens:
        rounds += 1
        guess = [int(next_logits.argmax())]  # the target's own next token is known: it starts the draft
        draft.truncate(base + len(tokens))
        logits = draft.forward(torch.tensor(guess[-1:]))
        for _ in range(min(k, n_tokens - len(tokens) - 1)):
            guess.append(int(logits.argmax()))
            logits = draft.forward(torch.tensor(guess[-1:]))
        checked = target.forward(torch.tensor(guess), all_logits=True)  # [len(guess), V]
        best = checked.argmax(-1).tolist()
        keep = 1  # guess[0] is the target's own choice
        while keep < len(guess) and guess[keep] == best[keep - 1]:
            keep += 1
        proposed += len(guess) - 1
        accepted += keep - 1
        tokens += guess[:keep]
        target.truncate(base + len(tokens))
        next_logits = checked[keep - 1]
    stats = {"rounds": rounds, "acceptance": accepted / max(1, proposed), "tokens_per_pass": len(tokens) / rounds}
    return tokens[:n_tokens], stats
