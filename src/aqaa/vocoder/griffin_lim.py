"""Griffin-Lim: the reference mel → waveform baseline (no training).

The log-mel's power spectrum is recovered with the non-negative pseudo-inverse of the mel filterbank, then the
phase is estimated by fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99) on exactly the frames the mel
front end analyses (window `win`, FFT size `n_fft`, frame t ending at sample (t + 1) * hop).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from aqaa.codec.mel import MelConfig
from aqaa.vocoder.stft import OverlapAdd, frames


def mel_to_magnitude(log_mel: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """log-mel [T, n_mels] (natural log of power) → linear magnitude [T, n_fft // 2 + 1]."""
    fb = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min,
                             fmax=config.f_max)
    inverse = torch.from_numpy(np.linalg.pinv(fb)).float()  # [F, n_mels]
    power = log_mel.float().exp() @ inverse.T
    return power.clamp(min=0).sqrt()


@torch.inference_mode()
def griffin_lim(log_mel: torch.Tensor, config: MelConfig, iterations: int = 32, momentum: float = 0.99,
                seed: int = 0) -> np.ndarray:
    """log-mel [T, n_mels] → float32 waveform of T * hop samples."""
    if log_mel.ndim != 2 or log_mel.shape[-1] != config.n_mels:
        raise ValueError(f"expected a log-mel [frames, {config.n_mels}], got shape {tuple(log_mel.shape)}")
    t = log_mel.shape[0]
    n = t * config.hop
    first = config.hop - config.win
    window = torch.hann_window(config.win)
    magnitude = mel_to_magnitude(log_mel, config)  # [T, F]
    generator = torch.Generator().manual_seed(seed)
    angles = torch.polar(torch.ones_like(magnitude), 2 * torch.pi * torch.rand(magnitude.shape, generator=generator))

    def synthesize(spectrum: torch.Tensor) -> torch.Tensor:
        frame = torch.fft.irfft(spectrum, n=config.n_fft)[:, : config.win] * window  # [T, win]
        ola = OverlapAdd(window, config.hop, first)
        return torch.cat([ola.push(frame[None]), ola.flush(n)], dim=1)[0, :n]

    def analyse(signal: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(frames(signal[None], config.win, config.hop, first, t)[0] * window, n=config.n_fft)

    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = analyse(synthesize(magnitude * angles))
        accelerated = rebuilt - momentum / (1 + momentum) * previous
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
    return synthesize(magnitude * angles).numpy().astype(np.float32)
