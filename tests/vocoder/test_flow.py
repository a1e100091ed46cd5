import math

import pytest
import torch

from aqaa.vocoder import TokenLayout
from aqaa.vocoder.flow import cosine_schedule, frame_noise, solve_euler

from .helpers import random_codes, tiny_vocoder


def test_cosine_schedule():
    t = cosine_schedule(10)
    assert t[0] == 0 and t[-1] == pytest.approx(1.0) and len(t) == 11
    steps = t.diff()
    assert bool((steps > 0).all()) and steps[0] < steps[-1]  # small steps near the noise
    assert t[5] == pytest.approx(1 - math.cos(math.pi / 4))
    with pytest.raises(ValueError):
        cosine_schedule(0)


@pytest.mark.parametrize("steps", [1, 2, 4, 10])
def test_euler_integrates_the_optimal_transport_flow_exactly(steps):
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    # a constant field, and the marginal field of one target, which bends nowhere along its path
    constant = solve_euler(lambda x, t, k: x1 - x0, x0, steps)
    towards = solve_euler(lambda x, t, k: (x1 - x) / (1 - t), x0, steps)
    assert torch.allclose(constant, x1, atol=1e-5) and torch.allclose(towards, x1, atol=1e-5)
    seen = []
    solve_euler(lambda x, t, k: seen.append((k, t)) or torch.zeros_like(x), x0, steps)
    assert [k for k, _ in seen] == list(range(steps)) and seen[0][1] == 0.0


def test_frame_noise_depends_only_on_the_frame_index():
    whole = frame_noise(3, 0, 200, 80)
    pieces = torch.cat([frame_noise(3, a, b - a, 80) for a, b in ((0, 20), (20, 50), (50, 131), (131, 200))], dim=1)
    assert torch.equal(whole, pieces) and whole.shape == (1, 200, 80)
    assert not torch.equal(frame_noise(4, 0, 10, 80), whole[:, :10])
    assert abs(float(whole.std()) - 1) < 0.05


def test_tiny_flow_overfits_one_utterance():
    layout = TokenLayout(linguistic_codebook=16, semantic_codebook=32)
    vocoder = tiny_vocoder(layout, seed=1)
    flow = vocoder.flow
    codes = random_codes(8, layout, seed=2)  # 8 groups = 96 frames
    frames = torch.tensor([96])
    t = torch.arange(96, dtype=torch.float32)
    mel = (torch.sin(t[:, None] / 7 + torch.arange(80) / 9) * 2 - 6)[None]  # a mel-like moving pattern
    flow.set_normalization(mel[0].mean(0), mel[0].std(0))
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    flow.train()
    torch.manual_seed(0)
    losses = []
    for _ in range(150):
        loss = flow.compute_loss(codes.linguistic[None], codes.semantic[None], frames, mel)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        losses.append(float(loss["loss"].detach()))
    flow.eval()
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    rendered = vocoder.mel(codes, steps=10)
    assert rendered.shape == (96, 80)
    untrained = tiny_vocoder(layout, seed=1)
    untrained.flow.set_normalization(mel[0].mean(0), mel[0].std(0))
    error = (rendered - mel[0]).abs().mean()
    assert error < 0.6 * (untrained.mel(codes, steps=10) - mel[0]).abs().mean()


def test_loss_handles_padded_batches_and_masks_padding():
    layout = TokenLayout(linguistic_codebook=16, semantic_codebook=32)
    flow = tiny_vocoder(layout).flow
    a, b = random_codes(4, layout, 1), random_codes(2, layout, 2)
    ling = torch.stack([a.linguistic, torch.nn.functional.pad(b.linguistic, (0, 4))])
    sem = torch.stack([a.semantic, torch.nn.functional.pad(b.semantic, (0, 6))])
    mel = torch.randn(2, 48, 80)
    torch.manual_seed(0)
    clean = flow.compute_loss(ling, sem, torch.tensor([48, 24]), mel)
    mel[1, 24:] = 1e3  # padding must not matter
    torch.manual_seed(0)
    assert torch.allclose(flow.compute_loss(ling, sem, torch.tensor([48, 24]), mel)["loss"], clean["loss"])
    assert set(clean) == {"loss", "flow", "prior"}
