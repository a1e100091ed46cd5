import math

import torch

from aqaa.codec.mel import MelConfig
from aqaa.vocoder.discriminator import Discriminator, DiscriminatorConfig, adversarial_losses
from aqaa.vocoder.losses import Mel2WavLossConfig, ReconstructionLoss, phase_derivative_loss, wrapped

from ..codec.helpers import speechy


def test_reconstruction_loss_is_zero_for_the_target_and_grows_with_distortion():
    loss = ReconstructionLoss(MelConfig(), Mel2WavLossConfig(phase_weight=1.0))
    target = torch.from_numpy(speechy(0.5))[None]
    exact = loss(target, target)
    assert float(exact["loss"]) < 1e-5 and set(exact) == {"loss", "mel", "stft"}
    noisy = loss(target + 0.01 * torch.randn_like(target), target)
    louder = loss(target + 0.1 * torch.randn_like(target), target)
    assert 0 < float(noisy["loss"]) < float(louder["loss"])


def test_phase_derivative_loss_ignores_absolute_phase_but_not_its_steps():
    g = torch.Generator().manual_seed(0)
    target = torch.polar(torch.rand(2, 20, 33, generator=g) + 0.1, torch.rand(2, 20, 33, generator=g) * 6)
    shifted = target * torch.polar(torch.ones(()), torch.tensor(1.234))  # same phase steps everywhere
    assert float(phase_derivative_loss(shifted, target)) < 1e-5
    scrambled = torch.polar(target.abs(), torch.rand(2, 20, 33, generator=g) * 6)
    assert float(phase_derivative_loss(scrambled, target)) > 0.5
    assert torch.allclose(wrapped(torch.tensor([2 * math.pi + 0.1, -0.3, math.pi - 0.1])),
                          torch.tensor([0.1, 0.3, math.pi - 0.1]), atol=1e-5)


def test_adversarial_terms_move_only_their_own_side():
    torch.manual_seed(0)
    critic = Discriminator(DiscriminatorConfig(channels=8, layers=2, resolutions=[[256, 64], [128, 32]]))
    generator_output = torch.randn(2, 4000, requires_grad=True)
    target = torch.randn(2, 4000)
    terms = adversarial_losses(critic, generator_output, target)
    grads = torch.autograd.grad(terms["critic"], [generator_output, *critic.parameters()], allow_unused=True)
    assert grads[0] is None and all(g is not None for g in grads[1:])
    grads = torch.autograd.grad(terms["adversarial"] + terms["matching"], [generator_output, *critic.parameters()],
                                allow_unused=True)
    assert grads[0] is not None and float(grads[0].abs().sum()) > 0 and all(g is None for g in grads[1:])
