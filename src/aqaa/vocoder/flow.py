"""Token → mel by conditional flow matching (optimal-transport paths, as in CosyVoice and Matcha-TTS).

Training: x_1 is the normalised log-mel, x_0 ~ N(0, I), x_t = (1 - (1 - σ) t) x_0 + t x_1; the estimator learns
the path's velocity x_1 - (1 - σ) x_0 given the tokens. The condition is dropped for a fraction of utterances so
that one network also knows the unconditional flow (classifier-free guidance), and the conditioner's prior mu
learns the mel directly, which keeps few-step sampling sound.

Sampling: Euler steps on a cosine time grid (small steps near the noise, where the flow bends most), with
guidance v = (1 + w) v(x | tokens) - w v(x | nothing). Noise is drawn per block of frames from a generator
seeded by the block's absolute index, so a stream draws exactly the noise an offline pass draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from aqaa.vocoder.conditioner import ConditionerConfig, TokenConditioner
from aqaa.vocoder.estimator import Estimator, EstimatorConfig
from aqaa.vocoder.layout import TokenLayout

NOISE_BLOCK = 48  # frames drawn per seeded block


@dataclass
class FlowConfig:
    conditioner: ConditionerConfig = field(default_factory=ConditionerConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    steps: int = 10
    guidance: float = 0.7
    condition_dropout: float = 0.2
    sigma_min: float = 1e-4
    prior_weight: float = 1.0


def cosine_schedule(steps: int) -> torch.Tensor:
    """Flow times t_0 = 0 < … < t_steps = 1 with t_k = 1 - cos(π/2 · k / steps)."""
    if steps < 1:
        raise ValueError(f"need at least one Euler step, got {steps}")
    return 1 - torch.cos(torch.linspace(0, 1, steps + 1, dtype=torch.float64) * math.pi / 2)


Velocity = Callable[[torch.Tensor, float, int], torch.Tensor]  # (x, t, step index) → v


def solve_euler(velocity: Velocity, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t, k) from t = 0 to 1 with `steps` Euler steps on the cosine grid."""
    times = cosine_schedule(steps).tolist()
    x = x0
    for k in range(steps):
        x = torch.add(x, velocity(x, times[k], k), alpha=times[k + 1] - times[k])
    return x


def frame_noise(seed: int, start: int, count: int, n_mels: int) -> torch.Tensor:
    """N(0, I) noise [1, count, n_mels] for frames start … start + count - 1; a frame's noise depends only on
    (seed, its index)."""
    first, last = start // NOISE_BLOCK, (start + count - 1) // NOISE_BLOCK
    blocks = [torch.randn(NOISE_BLOCK, n_mels, generator=torch.Generator().manual_seed(seed * 1_000_003 + b))
              for b in range(first, last + 1)]
    offset = start - first * NOISE_BLOCK
    return torch.cat(blocks)[offset: offset + count][None]


class TokenToMel(nn.Module):
    """Conditioner + estimator + the mel normalisation they work in."""

    def __init__(self, layout: TokenLayout, n_mels: int, config: FlowConfig) -> None:
        super().__init__()
        self.layout, self.config, self.n_mels = layout, config, n_mels
        self.conditioner = TokenConditioner(layout, config.conditioner, n_mels)
        self.estimator = Estimator(n_mels, config.conditioner.features, config.estimator)
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        # Frames are rendered in blocks both the conditioner's units and the estimator's stride divide.
        self.block = math.lcm(self.conditioner.unit, config.estimator.stride)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mel_std + self.mel_mean

    def compute_loss(self, linguistic: torch.Tensor, semantic: torch.Tensor, frames: torch.Tensor,
                     mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Padded codes [B, T_l], [B, T_s], frame counts [B], log-mel [B, T, n_mels] (T ≥ max frames) → losses."""
        b = mel.shape[0]
        t_max = -(-int(frames.max()) // self.block) * self.block
        mel = nn.functional.pad(mel[:, :t_max], (0, 0, 0, max(0, t_max - mel.shape[1])))
        unit = self.conditioner.unit
        units = torch.arange(t_max // unit, device=frames.device)
        unit_mask = (units[None] < (frames // unit)[:, None]).float()  # [B, U]
        mask = (torch.arange(t_max, device=frames.device)[None] < frames[:, None]).float()[..., None]  # [B, T, 1]
        mu, features = self.conditioner(linguistic, semantic, unit_mask)
        x1 = self.normalize(mel) * mask
        keep = (torch.rand(b, 1, 1, device=mel.device) >= self.config.condition_dropout).float()
        cond = self.estimator.condition(mu * keep, features * keep)
        t = 1 - torch.cos(torch.rand(b, device=mel.device) * math.pi / 2)  # the sampler's cosine grid, as a density
        x0 = torch.randn_like(x1)
        sigma = self.config.sigma_min
        xt = (1 - (1 - sigma) * t[:, None, None]) * x0 + t[:, None, None] * x1
        v, _ = self.estimator(xt, t, cond)
        denominator = mask.sum() * self.n_mels
        flow = ((v - (x1 - (1 - sigma) * x0)).pow(2) * mask).sum() / denominator
        prior = ((mu - x1).abs() * mask).sum() / denominator
        return {"loss": flow + self.config.prior_weight * prior, "flow": flow.detach(), "prior": prior.detach()}
