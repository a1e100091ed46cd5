"""Reconstruction losses of the mel → waveform vocoder: log-mel L1 and multi-resolution STFT (spectral convergence
+ log-magnitude L1), as in Parallel WaveGAN, HiFi-GAN and Vocos."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aqaa.codec.mel import LogMel, MelConfig


@dataclass
class Mel2WavLossConfig:
    mel_weight: float = 15.0
    stft_weight: float = 1.0
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [256, 64]])  # n_fft, hop


class ReconstructionLoss(nn.Module):
    def __init__(self, mel: MelConfig, config: Mel2WavLossConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = LogMel(mel)
        for n_fft, _ in config.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def magnitude(self, wav: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
        spec = torch.stft(wav, n_fft, hop, window=getattr(self, f"window_{n_fft}"), center=False,
                          return_complex=True)
        return spec.abs().clamp(min=1e-5)  # [B, F, T]

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Waveforms [B, N] → {"loss", "mel", "stft"}."""
        mel = (self.mel(predicted) - self.mel(target)).abs().mean() / 2  # ln power → ln magnitude
        stft = predicted.new_zeros(())
        for n_fft, hop in self.config.resolutions:
            p, t = self.magnitude(predicted, n_fft, hop), self.magnitude(target, n_fft, hop)
            convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t)
            stft = stft + convergence + (p.log() - t.log()).abs().mean()
        stft = stft / len(self.config.resolutions)
        c = self.config
        return {"loss": c.mel_weight * mel + c.stft_weight * stft, "mel": mel.detach(), "stft": stft.detach()}
