"""Acoustic conditions for query speech: additive noise at a given SNR and a synthetic room.

Plain numpy on purpose: importing scipy.signal costs seconds in every build worker.
"""

from __future__ import annotations

import numpy as np


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add pink noise (1/f power, shaped in the frequency domain) at `snr_db` relative to the speech power."""
    n = wav.shape[0]
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    speech_power = float(np.mean(wav**2)) or 1e-12
    noise_power = float(np.mean(noise**2)) or 1e-12
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (wav + scale * noise).astype(np.float32)


def room_impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise tail with a direct-path spike: a cheap, plausible small room."""
    length = max(1, int(rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    decay = np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    rir = rng.standard_normal(length) * decay * 0.3
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def add_room(wav: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response (FFT convolution); output keeps the input length."""
    rir = room_impulse_response(rt60, sample_rate, rng)
    size = wav.shape[0] + rir.shape[0] - 1
    nfft = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(wav, nfft) * np.fft.rfft(rir, nfft), nfft)
    return wet[: wav.shape[0]].astype(np.float32)
