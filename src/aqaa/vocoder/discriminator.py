"""An optional, light adversarial critic for the mel → waveform network, sized for CPU training.

Multi-resolution spectral discriminator (after UnivNet's and Vocos's), made cheap: at each STFT resolution the
log-magnitude spectrogram is read as a sequence of frames whose channels are the frequency bins, by a stack of
1-D convolutions over time (stacked taps and one product each), so a second of audio costs a few million
multiply-adds instead of the 2-D convolutions' billions. Losses are least-squares (HiFi-GAN's) plus feature
matching.

`adversarial_losses` lets the critic and the generator train with one optimizer and one backward pass (so the
shared resumable trainer serves): the critic's own loss sees the generated waveform detached, and the
generator's terms go through the critic with detached parameters, so each loss moves only its own side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F


@dataclass
class DiscriminatorConfig:
    channels: int = 64
    layers: int = 3
    kernel: int = 5
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [256, 64]])


class TapsConv(nn.Module):
    """Centred 1-D conv over time [B, T, C_in] → [B, T, C_out] as one product over stacked (dilated) taps."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.taps = nn.Linear(c_in * kernel, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel - 1) * self.dilation // 2
        h = F.pad(x, (0, 0, pad, pad))
        t = x.shape[1]
        taps = torch.cat([h[:, j * self.dilation: j * self.dilation + t] for j in range(self.kernel)], dim=-1)
        return self.taps(taps)


class SpectralCritic(nn.Module):
    """waveform [B, N] → per-frame scores [B, T'] and the hidden activations, at one STFT resolution."""

    def __init__(self, n_fft: int, hop: int, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = config.channels
        self.layers = nn.ModuleList([TapsConv(n_fft // 2 + 1, c, config.kernel)] +
                                    [TapsConv(c, c, config.kernel, 2 ** i) for i in range(1, config.layers)])
        self.out = TapsConv(c, 1, 3)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        h = spec.abs().clamp(min=1e-5).log().transpose(1, 2)  # [B, T', bins]
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.1)
            features.append(h)
        return self.out(h)[..., 0], features


class Discriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.critics = nn.ModuleList(SpectralCritic(n, h, config) for n, h in config.resolutions)

    def forward(self, wav: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [critic(wav) for critic in self.critics]


def adversarial_losses(discriminator: Discriminator, predicted: torch.Tensor,
                       target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Least-squares GAN terms: the critic's loss (on the detached prediction), and the generator's adversarial
    and feature-matching losses (through detached critic parameters)."""
    critic = sum(((real - 1).pow(2).mean() + fake.pow(2).mean())
                 for (real, _), (fake, _) in zip(discriminator(target), discriminator(predicted.detach()),
                                                 strict=True))
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    with torch.no_grad():
        real_outputs = functional_call(discriminator, frozen, (target,))
    fake_outputs = functional_call(discriminator, frozen, (predicted,))
    adversarial = sum((fake - 1).pow(2).mean() for fake, _ in fake_outputs)
    matching = sum(F.l1_loss(f, r) for (_, fs), (_, rs) in zip(fake_outputs, real_outputs, strict=True)
                   for f, r in zip(fs, rs, strict=True))
    n = len(discriminator.critics)
    return {"critic": critic / n, "adversarial": adversarial / n, "matching": matching / n}
