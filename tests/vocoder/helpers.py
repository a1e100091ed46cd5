"""Tiny vocoders shared by the vocoder tests (random weights: the arithmetic is what is under test)."""

import torch

from aqaa.codec.tokenizer import Codes
from aqaa.configs import from_dict
from aqaa.vocoder import TokenLayout, Vocoder, VocoderConfig

TINY = {
    "flow": {"conditioner": {"channels": 16, "blocks": 2, "features": 8},
             "estimator": {"channels": 8, "low_channels": 16, "blocks": 1, "low_blocks": 1, "time_channels": 8}},
    "mel2wav": {"channels": 16, "blocks": 2, "expansion": 2},
}


def tiny_vocoder(layout: TokenLayout | None = None, seed: int = 0, full_rate_blocks: int = 1) -> Vocoder:
    torch.manual_seed(seed)
    config = from_dict(VocoderConfig, TINY)
    config.flow.estimator.blocks = full_rate_blocks
    if layout is not None:
        config.tokens = layout
    vocoder = Vocoder(config)
    with torch.no_grad():  # the estimator's output layer starts at zero; make the flow actually move
        vocoder.flow.estimator.out.weight.normal_(0, 0.3)
    return vocoder


def random_codes(groups: int, layout: TokenLayout | None = None, seed: int = 0) -> Codes:
    layout = layout or TokenLayout()
    g = torch.Generator().manual_seed(seed)
    return Codes(torch.randint(0, layout.linguistic_codebook, (groups * layout.linguistic_per_group,), generator=g),
                 torch.randint(0, layout.semantic_codebook, (groups * layout.semantic_per_group,), generator=g))
