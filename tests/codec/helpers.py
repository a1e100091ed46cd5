"""Tiny tokenizers and test signals shared by the codec tests."""

import numpy as np
import torch

from aqaa.codec.encoder import EncoderConfig
from aqaa.codec.linguistic import LinguisticConfig
from aqaa.codec.semantic import SemanticConfig
from aqaa.codec.tokenizer import AudioTokenizer, TokenizerConfig


def tiny_config(streams: str = "dual") -> TokenizerConfig:
    return TokenizerConfig(
        linguistic=LinguisticConfig(encoder=EncoderConfig(6, 32, 3, [1, 2, 4]), codebook_size=16),
        semantic=SemanticConfig(encoder=EncoderConfig(4, 32, 3, [1, 2, 4]), codebook_size=32, codebook_dim=8,
                                decoder_channels=16, decoder_layers=1),
        streams=streams)


def tiny_tokenizer(seed: int = 0, streams: str = "dual") -> AudioTokenizer:
    torch.manual_seed(seed)
    tokenizer = AudioTokenizer(tiny_config(streams))
    tokenizer.linguistic.set_codebook(torch.randn(16, 32))
    mel = tokenizer.mel(torch.from_numpy(speechy(2.0, seed=99))[None])[0]
    for model in (tokenizer.linguistic, tokenizer.semantic):
        model.encoder.set_normalization(mel.mean(0), mel.std(0))
    with torch.no_grad():  # spread the semantic codes out as training would (they start near zero)
        tokenizer.semantic.vq.codebook.copy_(0.3 * torch.randn(32, 8))
    return tokenizer


def speechy(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with noise bursts: varied enough that codes change from frame to frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wav = wav + rng.normal(0, 0.05, len(t)) * (np.sin(2 * np.pi * 1.3 * t) > 0.6)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)
