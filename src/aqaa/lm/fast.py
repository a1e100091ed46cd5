"""Incremental decoding over a Hugging Face Llama's weights, with as little per-token work as possible.

On a CPU a small model's decode step is bound by reading its weights (memory bandwidth), so the step is kept
to the weight products and a few small ops: q/k/v and gate/up fused into one product each, a preallocated KV
cache written in place (no `torch.cat`), RoPE tables computed once, no masks during decoding, no dtype casts.
The arithmetic follows `transformers`' Llama (RMSNorm in float32, rotate-half RoPE, SDPA attention), so greedy
decoding gives HF `generate`'s tokens (checked by the tests and `bench/decode.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


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

    def __init__(self, model: torch.nn.Module, max_len: int = 2048) -> None:
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
        for layer in inner.layers:
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

    def reset(self) -> None:
        self.length = 0

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ids [T] after what is already cached; returns the logits of the last one [vocab]."""
        t = ids.shape[0]
        start, end = self.length, self.length + t
        if end > self.max_len:
            raise ValueError(f"sequence of {end} tokens exceeds max_len={self.max_len}")
        x = self.embed[ids][None]  # [1, T, d]
        cos, sin = self.cos[start:end], self.sin[start:end]  # [T, D]
        causal = t > 1
        for i, layer in enumerate(self.layers):
            h = self._norm(x, layer.norm1)
            qkv = F.linear(h, layer.qkv)  # [1, T, (H + 2 H_kv) D]
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
            x = x + F.linear(attn.transpose(1, 2).reshape(1, t, self.q_size), layer.out)
            gate, up = F.linear(self._norm(x, layer.norm2), layer.gate_up).split(self.d_ff, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        self.length = end
        return F.linear(self._norm(x[:, -1], self.final_norm), self.lm_head)[0]

    def weight_floor_step(self, x: torch.Tensor) -> torch.Tensor:
        """Only the per-token weight products of one step (no attention, norms or cache): the speed floor."""
        for layer in self.layers:
            qkv = F.linear(x, layer.qkv)
            x = x + F.linear(qkv[..., : self.q_size], layer.out)
            x = x + F.linear(F.linear(x, layer.gate_up)[..., : self.d_ff], layer.down)
        return F.linear(x, self.lm_head)
