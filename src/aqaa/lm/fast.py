"""Incremental decoding over a Hugging Face Llama's weights, with as little per-token work as possible.

On a CPU a small model's decode step is bound by reading its weights (memory bandwidth), so the step is kept
to the weight products and a few small ops: q/k/v and gate/up fused into one product each, a preallocated KV
cache written in place (no `torch.cat`), RoPE tables computed once, no masks during decoding, no dtype casts.
The arithmetic follows `transformers`' Llama (RMSNorm in float32, rotate-half RoPE, SDPA attention), so greedy
decoding gives HF `generate`'s tokens (checked by the tests and `bench/decode.py`).

Past that floor, fewer bytes per token: `weights="int8"` stores every weight matrix as int8 with one scale per
output row (dynamic int8 products: a quarter of the bytes), `weights="bf16"` as bfloat16 (half). Both change the
logits slightly, so their tokens are measured against fp32's, not assumed equal. And `speculative_greedy`
verifies several drafted tokens in one forward pass, which reads the weights once for all of them; its output is
exactly plain greedy decoding's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

WEIGHT_FORMATS = ("fp32", "bf16", "int8")


class _Int8Linear:
    """y = x Wᵀ with W as int8 rows and a per-row scale (torch's dynamic-quantised product)."""

    def __init__(self, weight: torch.Tensor) -> None:
        w = weight.detach().float()
        scale = (w.abs().amax(1) / 127).clamp(min=1e-12)
        q = torch.quantize_per_channel(w, scale.double(), torch.zeros(len(w), dtype=torch.long), 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(q, None)
        self.shape = weight.shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]), self.packed).reshape(
            *x.shape[:-1], self.shape[0])


def _linear_of(weight: torch.Tensor, fmt: str) -> object:
    if fmt == "fp32":
        w = weight.detach()
        return lambda x: F.linear(x, w)
    if fmt == "bf16":
        w = weight.detach().to(torch.bfloat16)
        return lambda x: F.linear(x.to(torch.bfloat16), w).float()
    return _Int8Linear(weight)


@dataclass
class _Layer:
    norm1: torch.Tensor
    qkv: torch.Tensor  # [(H + 2 * H_kv) * D, d_model]
    out: torch.Tensor
    norm2: torch.Tensor
    gate_up: torch.Tensor  # [2 * d_ff, d_model]
    down: torch.Tensor


class FastLlama:
    """Prefill a prompt, then step one token at a time; `logits` come back as a [vocab] float32 vector."""

    def __init__(self, model: torch.nn.Module, max_len: int = 2048, weights: str = "fp32",
                 layers: int | None = None) -> None:
        """`layers`: use only the first N transformer layers (then the final norm and head): a cheap draft model
        for speculative decoding made from the model itself."""
        if weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, not {weights!r}")
        cfg = model.config
        if getattr(cfg, "rope_scaling", None) not in (None, {}) and cfg.rope_scaling.get("rope_type") != "default":
            raise ValueError("FastLlama supports the default RoPE only")
        if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False) or cfg.hidden_act != "silu":
            raise ValueError("FastLlama supports bias-free Llama layers with SiLU MLPs")
        inner = model.model
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.eps = cfg.rms_norm_eps
        self.max_len = max_len
        self.embed = inner.embed_tokens.weight.detach()
        self.final_norm = inner.norm.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.layers = []
        for layer in inner.layers[:layers]:
            a, m = layer.self_attn, layer.mlp
            self.layers.append(_Layer(
                layer.input_layernorm.weight.detach(),
                torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach(),
                a.o_proj.weight.detach(), layer.post_attention_layernorm.weight.detach(),
                torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach(), m.down_proj.weight.detach()))
        inv_freq = inner.rotary_emb.inv_freq.detach()
        scale = getattr(inner.rotary_emb, "attention_scaling", 1.0)
        freqs = torch.arange(max_len).float()[:, None] * inv_freq.float()
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin = emb.cos() * scale, emb.sin() * scale  # [max_len, D]
        self.scaling = self.head_dim ** -0.5
        self.q_size, self.kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        self.d_ff = self.layers[0].down.shape[1]
        shape = (len(self.layers), 1, self.kv_heads, max_len, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.embed.dtype)
        self.v_cache = torch.zeros(shape, dtype=self.embed.dtype)
        self.length = 0
        self.weights = weights
        # The products, in the chosen format (fp32 keeps plain F.linear over the tensors above).
        self._qkv = [_linear_of(layer.qkv, weights) for layer in self.layers]
        self._out = [_linear_of(layer.out, weights) for layer in self.layers]
        self._gate_up = [_linear_of(layer.gate_up, weights) for layer in self.layers]
        self._down = [_linear_of(layer.down, weights) for layer in self.layers]
        self._head = _linear_of(self.lm_head, weights)

    def reset(self) -> None:
        self.length = 0

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

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
        x = self.embed[ids][None]  # [1, T, d]
        cos, sin = self.cos[start:end], self.sin[start:end]  # [T, D]
        causal = t > 1
        for i, layer in enumerate(self.layers):
            h = self._norm(x, layer.norm1)
            qkv = self._qkv[i](h)  # [1, T, (H + 2 H_kv) D]
            q = qkv[..., : self.q_size].view(1, t, self.heads, self.head_dim).transpose(1, 2)
            k = qkv[..., self.q_size: self.q_size + self.kv_size].view(1, t, self.kv_heads, self.head_dim)
            v = qkv[..., self.q_size + self.kv_size:].view(1, t, self.kv_heads, self.head_dim)
            q = self._rope(q, cos, sin)
            self.k_cache[i, :, :, start:end] = self._rope(k.transpose(1, 2), cos, sin)
            self.v_cache[i, :, :, start:end] = v.transpose(1, 2)
            keys, values = self.k_cache[i, :, :, :end], self.v_cache[i, :, :, :end]
            if causal and start:
                mask = torch.ones(t, end, dtype=torch.bool).tril(start)
                attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scaling,
                                                      enable_gqa=self.kv_heads != self.heads)
            else:
                attn = F.scaled_dot_product_attention(q, keys, values, is_causal=causal, scale=self.scaling,
                                                      enable_gqa=self.kv_heads != self.heads)
            x = x + self._out[i](attn.transpose(1, 2).reshape(1, t, self.q_size))
            gate, up = self._gate_up[i](self._norm(x, layer.norm2)).split(self.d_ff, dim=-1)
            x = x + self._down[i](F.silu(gate) * up)
        self.length = end
        if all_logits:
            return self._head(self._norm(x[0], self.final_norm))
        return self._head(self._norm(x[:, -1], self.final_norm))[0]

    def weight_floor_step(self, x: torch.Tensor) -> torch.Tensor:
        """Only the per-token weight products of one step (no attention, norms or cache): the speed floor."""
        for i in range(len(self.layers)):
            qkv = self._qkv[i](x)
            x = x + self._out[i](qkv[..., : self.q_size])
            x = x + self._down[i](self._gate_up[i](x)[..., : self.d_ff])
        return self._head(x)


def speculative_greedy(target: FastLlama, draft: FastLlama, prompt: torch.Tensor, n_tokens: int,
                       k: int = 4) -> tuple[list[int], dict[str, float]]:
    """Greedy decoding of `n_tokens` after `prompt` with `draft` proposing `k` tokens at a time and `target`
    checking them in one pass: the tokens are exactly `target`'s own greedy tokens. Returns (tokens, stats)."""
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
