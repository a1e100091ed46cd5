"""Reconstruction losses of the mel → waveform vocoder: log-mel L1 and multi-resolution STFT (spectral convergence
+ log-magnitude L1), as in Parallel WaveGAN, HiFi-GAN and Vocos; optionally APNet's phase-derivative losses.

The phase losses compare the predicted spectra's phase with the target's STFT on the same frames: its change
from frame to frame (instantaneous frequency) and from bin to bin (group delay), each wrapped to (-π, π] and
weighted by the target's magnitude, so that silent bins, whose phase is noise, do not count. Absolute phase is
left free: a waveform shifted by a fraction of a period has other phases and the same sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from aqaa.codec.mel import LogMel, MelConfig


@dataclass
class Mel2WavLossConfig:
    mel_weight: float = 15.0
    stft_weight: float = 1.0
    phase_weight: float = 0.0
    adversarial_weight: float = 0.0  # > 0 trains a light spectral critic alongside (discriminator.py)
    matching_weight: float = 2.0  # feature matching, relative to the adversarial term
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [256, 64]])  # n_fft, hop


def wrapped(x: torch.Tensor) -> torch.Tensor:
    """|x| after wrapping to (-π, π]."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_derivative_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Complex spectra [B, T, F] → magnitude-weighted wrapped error of the phase's time and frequency steps."""
    phase, reference = predicted.angle(), target.angle()
    weight = target.abs()
    weight = weight / weight.mean().clamp(min=1e-8)
    frequency = wrapped(phase.diff(dim=1) - reference.diff(dim=1)) * weight[:, 1:]
    delay = wrapped(phase.diff(dim=2) - reference.diff(dim=2)) * weight[:, :, 1:]
    return frequency.mean() + delay.mean()


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

    def forward(self, predicted: torch.Tensor, target: torch.Tensor, spectra: tuple[torch.Tensor, torch.Tensor] | None
                = None) -> dict[str, torch.Tensor]:
        """Waveforms [B, N] (and, for the phase loss, predicted and target spectra) → {"loss", "mel", "stft", …}."""
        mel = (self.mel(predicted) - self.mel(target)).abs().mean() / 2  # ln power → ln magnitude
        stft = predicted.new_zeros(())
        for n_fft, hop in self.config.resolutions:
            p, t = self.magnitude(predicted, n_fft, hop), self.magnitude(target, n_fft, hop)
            convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t)
            stft = stft + convergence + (p.log() - t.log()).abs().mean()
        stft = stft / len(self.config.resolutions)
        c = self.config
        losses = {"loss": c.mel_weight * mel + c.stft_weight * stft, "mel": mel.detach(), "stft": stft.detach()}
        if c.phase_weight and spectra is not None:
            phase = phase_derivative_loss(*spectra)
            losses.update(loss=losses["loss"] + c.phase_weight * phase, phase=phase.detach())
        return losses
