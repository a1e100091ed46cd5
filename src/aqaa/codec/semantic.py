"""Semantic tokenizer: a causal encoder at 40 ms frames (25 Hz) with a 4096-code vector quantiser.

The codes are trained to carry acoustic detail: a (training-only) decoder must rebuild the mel frames, the pitch
(log F0 and voicing) and the energy of each 40 ms token from the codes alone. The quantiser is
`vector_quantize_pytorch.VectorQuantize` with EMA codebook updates and dead-code replacement, which keeps most of
the 4096 codes in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from vector_quantize_pytorch import VectorQuantize

from aqaa.codec.encoder import EncoderConfig, FrameEncoder
from aqaa.codec.mel import MelConfig
from aqaa.codec.stable import nearest, stable_linear


@dataclass
class SemanticConfig:
    mel: MelConfig = field(default_factory=MelConfig)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(frames_per_token=4))
    codebook_size: int = 4096
    codebook_dim: int = 32
    ema_decay: float = 0.99
    commitment_weight: float = 0.25
    dead_code_threshold: float = 2.0
    decoder_channels: int = 256
    decoder_layers: int = 4
    pitch_weight: float = 1.0
    energy_weight: float = 1.0


class SemanticModel(nn.Module):
    def __init__(self, config: SemanticConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = FrameEncoder(c.mel, c.encoder)
        self.to_code = nn.Linear(c.encoder.channels, c.codebook_dim)
        self.vq = VectorQuantize(dim=c.codebook_dim, codebook_size=c.codebook_size, decay=c.ema_decay,
                                 commitment_weight=c.commitment_weight, kmeans_init=False,
                                 threshold_ema_dead_code=c.dead_code_threshold)
        layers: list[nn.Module] = [nn.Conv1d(c.codebook_dim, c.decoder_channels, 3, padding=1)]
        for _ in range(c.decoder_layers):
            layers += [nn.GELU(), nn.Conv1d(c.decoder_channels, c.decoder_channels, 5, padding=2)]
        self.decoder = nn.Sequential(*layers)
        k = c.encoder.frames_per_token
        self.mel_head = nn.Linear(c.decoder_channels, k * c.mel.n_mels)
        self.prosody_head = nn.Linear(c.decoder_channels, 3)  # log F0, voicing logit, log energy

    def codebook(self) -> torch.Tensor:
        return self.vq.codebook  # [codebook_size, codebook_dim]

    def quantize(self, feats: torch.Tensor) -> torch.Tensor:
        """encoder features [..., C] → codes [...]."""
        z = stable_linear(feats, self.to_code.weight, self.to_code.bias)
        return nearest(z, self.codebook())

    def compute_loss(self, mel: torch.Tensor, mel_lengths: torch.Tensor, log_f0: torch.Tensor,
                     voiced: torch.Tensor, log_energy: torch.Tensor, features: torch.Tensor | None = None,
                     freeze_codebook: bool = False) -> dict[str, torch.Tensor]:
        """Losses for padded mel [B, T_mel, n_mels] and per-token targets [B, T_tok] (log F0, voiced 0/1,
        log energy; F0 only counts where voiced). Returns the total and each term. `features`: the encoder's
        output for `mel` when the caller already has it; `freeze_codebook`: no codebook update or dead-code
        replacement (the codes keep their meaning)."""
        k = self.config.encoder.frames_per_token
        feats = self.encoder(mel)[0] if features is None else features
        b, t, _ = feats.shape
        mask = torch.arange(t)[None, :] < (mel_lengths // k)[:, None]  # [B, T_tok]
        z = self.to_code(feats)
        quantized, _, commit = self.vq(z, mask=mask, freeze_codebook=freeze_codebook)
        h = self.decoder(quantized.transpose(1, 2)).transpose(1, 2)  # [B, T_tok, D]
        target = ((mel[:, : t * k] - self.encoder.mel_mean) / self.encoder.mel_std).reshape(b, t, -1)
        m = mask.float()
        mel_loss = ((self.mel_head(h) - target).abs().mean(-1) * m).sum() / m.sum()
        pros = self.prosody_head(h)
        vm = m * voiced
        f0_loss = ((pros[..., 0] - log_f0).abs() * vm).sum() / vm.sum().clamp(min=1)
        voicing = (F.binary_cross_entropy_with_logits(pros[..., 1], voiced, reduction="none") * m).sum() / m.sum()
        energy = ((pros[..., 2] - log_energy).abs() * m).sum() / m.sum()
        c = self.config
        total = mel_loss + commit + c.pitch_weight * (f0_loss + voicing) + c.energy_weight * energy
        return {"loss": total, "mel": mel_loss, "commit": commit.detach(), "f0": f0_loss.detach(),
                "voicing": voicing.detach(), "energy": energy.detach()}
