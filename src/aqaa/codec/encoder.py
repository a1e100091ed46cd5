"""Frame encoder shared by both tokenizers: log-mel → stacked frames → causal conv features, offline or streaming.

A token covers `frames_per_token` mel frames (10 ms each): 6 for the linguistic stream (60 ms, 16.7 Hz) and 4
for the semantic stream (40 ms, 25 Hz). Mel features are normalised with fixed statistics of the training audio,
never per utterance, so that streaming and offline agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aqaa.codec.conv import CausalConvStack, State
from aqaa.codec.mel import LogMel, MelConfig


@dataclass
class EncoderConfig:
    frames_per_token: int = 6
    channels: int = 256
    kernel: int = 3
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 1, 2, 4, 8])


class FrameEncoder(nn.Module):
    """Normalised log-mel [B, T_mel, n_mels] → features [B, T_mel // frames_per_token, channels]."""

    def __init__(self, mel: MelConfig, config: EncoderConfig) -> None:
        super().__init__()
        self.config, self.mel_config = config, mel
        self.register_buffer("mel_mean", torch.zeros(mel.n_mels))
        self.register_buffer("mel_std", torch.ones(mel.n_mels))
        self.stack = CausalConvStack(config.frames_per_token * mel.n_mels, config.channels, config.kernel,
                                     config.dilations)

    @property
    def frame_rate(self) -> float:
        return self.mel_config.sample_rate / (self.mel_config.hop * self.config.frames_per_token)

    @property
    def samples_per_token(self) -> int:
        return self.mel_config.hop * self.config.frames_per_token

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def forward(self, mel: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        k = self.config.frames_per_token
        t = mel.shape[1] // k
        x = ((mel[:, : t * k] - self.mel_mean) / self.mel_std).reshape(mel.shape[0], t, k * mel.shape[2])
        return self.stack(x, state)


class MelStream:
    """Turns waveform chunks into exactly the mel frames an offline pass over the whole signal gives."""

    def __init__(self, mel: LogMel) -> None:
        self.mel = mel
        self.buffer = torch.zeros(1, mel.left_context)

    def push(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [N] → new mel frames [1, T, n_mels]."""
        self.buffer = torch.cat([self.buffer, wav.reshape(1, -1).to(self.buffer.dtype)], dim=1)
        frames = self.mel.frames(self.buffer)
        self.buffer = self.buffer[:, frames.shape[1] * self.mel.config.hop:]
        return frames


class FeatureStream:
    """Turns mel frames into encoder features as soon as a whole token's frames have arrived."""

    def __init__(self, encoder: FrameEncoder) -> None:
        self.encoder = encoder
        self.pending = torch.zeros(1, 0, encoder.mel_config.n_mels)
        self.state: State | None = None

    def push(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [1, T, n_mels] → features [1, T_new, channels] (T_new may be 0)."""
        self.pending = torch.cat([self.pending, mel], dim=1)
        k = self.encoder.config.frames_per_token
        whole = (self.pending.shape[1] // k) * k
        if whole == 0:
            return self.pending.new_zeros(1, 0, self.encoder.config.channels)
        feats, self.state = self.encoder(self.pending[:, :whole], self.state)
        self.pending = self.pending[:, whole:]
        return feats
