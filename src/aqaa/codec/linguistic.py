"""Linguistic tokenizer: a CTC-trained phonetic encoder at 60 ms frames, quantised by k-means (1024 codes).

Each 60 ms frame predicts `ctc_slots` CTC positions (20 ms each): fast speech has more phones than 60 ms frames,
and CTC needs at least one position per phone. The tokens are nearest-centroid assignments of the encoder's
features, so they carry what the encoder learned to hear: phonetic content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aqaa.codec.encoder import EncoderConfig, FrameEncoder
from aqaa.codec.mel import MelConfig
from aqaa.codec.phones import VOCAB_SIZE
from aqaa.codec.stable import nearest


@dataclass
class LinguisticConfig:
    mel: MelConfig = field(default_factory=MelConfig)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(frames_per_token=6))
    ctc_slots: int = 3
    codebook_size: int = 1024
    alignment_delay_ms: float = 0.0  # the causal encoder's emission delay, measured by the recipe's assemble stage


class LinguisticModel(nn.Module):
    """Encoder + CTC head (training) + k-means centroids (tokenizing)."""

    def __init__(self, config: LinguisticConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder(config.mel, config.encoder)
        self.ctc_head = nn.Linear(config.encoder.channels, config.ctc_slots * VOCAB_SIZE)
        self.register_buffer("centroids", torch.zeros(config.codebook_size, config.encoder.channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def ctc_log_probs(self, feats: torch.Tensor) -> torch.Tensor:
        """features [B, T, C] → CTC log-probabilities [B, T * ctc_slots, phones + blank]."""
        b, t, _ = feats.shape
        logits = self.ctc_head(feats).reshape(b, t * self.config.ctc_slots, VOCAB_SIZE)
        return logits.log_softmax(-1)

    def compute_loss(self, mel: torch.Tensor, mel_lengths: torch.Tensor, targets: torch.Tensor,
                     target_lengths: torch.Tensor) -> torch.Tensor:
        """CTC loss; mel [B, T_mel, n_mels] padded, targets [B, L] padded phone ids."""
        feats, _ = self.encoder(mel)
        return self.ctc_loss(feats, mel_lengths, targets, target_lengths)

    def ctc_loss(self, feats: torch.Tensor, mel_lengths: torch.Tensor, targets: torch.Tensor,
                 target_lengths: torch.Tensor) -> torch.Tensor:
        """CTC loss of encoder features [B, T, C] of mel frames `mel_lengths`."""
        log_probs = self.ctc_log_probs(feats)
        in_lengths = (mel_lengths // self.config.encoder.frames_per_token) * self.config.ctc_slots
        return nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, in_lengths, target_lengths,
                                      blank=0, reduction="mean", zero_infinity=True)

    def straight_through(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [..., C] replaced by their nearest centroids, with the gradient passed straight through to the
        features, and the commitment: their mean squared distance to those centroids relative to the centroids'."""
        q = self.nearest_centroids(feats.detach())
        return feats + (q - feats).detach(), ((feats - q) ** 2).mean() / (q ** 2).mean().clamp(min=1e-8)

    def set_codebook(self, centroids: torch.Tensor) -> None:
        self.centroids.copy_(centroids)
        self.fitted.fill_(True)

    def nearest_centroids(self, feats: torch.Tensor) -> torch.Tensor:
        """features [..., C] → the centroids of their codes [..., C]: what the codes keep of them."""
        return self.centroids[self.quantize(feats)]

    def quantize(self, feats: torch.Tensor) -> torch.Tensor:
        """features [..., C] → codes [...]."""
        if not bool(self.fitted):
            raise RuntimeError("the linguistic codebook is not fitted yet (run the k-means stage of training)")
        return nearest(feats, self.centroids)
