"""Causal log-mel front end shared by both tokenizers.

Frame t covers the `win` samples that end at sample (t + 1) * hop (zeros before the start), so a signal of N
samples gives N // hop frames and a frame never looks past the audio already received. That is what lets the
streaming encoder reproduce the offline one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import torch
from torch import nn

from aqaa.codec.stable import stable_linear


@dataclass
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 512
    win: int = 400  # 25 ms
    hop: int = 160  # 10 ms
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    floor: float = 1e-5


class LogMel(nn.Module):
    """waveform [B, N] → log-mel [B, N // hop, n_mels]."""

    def __init__(self, config: MelConfig) -> None:
        super().__init__()
        self.config = config
        fb = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                 fmin=config.f_min, fmax=config.f_max)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)  # [n_mels, F]
        self.register_buffer("window", torch.hann_window(config.win), persistent=False)

    @property
    def left_context(self) -> int:
        return self.config.win - self.config.hop

    def frames(self, padded: torch.Tensor) -> torch.Tensor:
        """Log-mel of every whole frame in `padded` [B, M], whose first `left_context` samples are history."""
        c = self.config
        if padded.shape[-1] < c.win:
            return padded.new_zeros(padded.shape[0], 0, c.n_mels)
        windows = padded.unfold(-1, c.win, c.hop) * self.window  # [B, T, win]
        power = torch.fft.rfft(windows, n=c.n_fft).abs().pow(2)  # [B, T, n_fft // 2 + 1]
        return torch.log(torch.clamp(stable_linear(power, self.filters), min=c.floor))  # [B, T, n_mels]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.frames(nn.functional.pad(wav, (self.left_context, 0)))
