"""The vocoder's C++ inference kernels against the Python modules they replace (random weights)."""

import numpy as np
import pytest
import torch

from aqaa.vocoder import TokenLayout
from aqaa.vocoder.causal import ConvNeXtBlock, Linear, product_weight, vocoder_kernels

from .helpers import random_codes, tiny_vocoder

LAYOUT = TokenLayout(linguistic_codebook=16, semantic_codebook=32)


def half_exact(model: torch.nn.Module) -> None:
    """Round every weight to a float16 value, as a float16 checkpoint loads: the C++ products then read float16
    panels (on CPUs with AVX-512)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def random_block(channels: int = 24, kernel: int = 5, seed: int = 0, half: bool = False) -> ConvNeXtBlock:
    torch.manual_seed(seed)
    block = ConvNeXtBlock(channels, kernel, 3, 0.5)
    with torch.no_grad():  # move the norm and scale off their initial values so that every operand matters
        for p in (block.norm.weight, block.norm.bias, block.scale, block.dwconv.bias):
            p.add_(torch.randn_like(p) * 0.3)
    if half:
        half_exact(block)
    return block


def run(block: ConvNeXtBlock, kernel: str, x, cache, bias):
    block.set_kernel(kernel)
    with torch.inference_mode():
        return block(x, cache, bias)


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("frames", [1, 3, 4, 9, 60])
@pytest.mark.parametrize("bias_rows", [None, 1, 2])
def test_cpp_block_equals_python(frames, bias_rows, half):
    block = random_block(half=half)
    g = torch.Generator().manual_seed(frames)
    x = torch.randn(2, frames, 24, generator=g) * 4  # wide pre-activations: GELU's erf over its whole range
    cache = torch.randn(2, 4, 24, generator=g)
    bias = None if bias_rows is None else torch.randn(bias_rows, 1, 24, generator=g)
    want, want_cache = run(block, "python", x, cache, bias)
    got, got_cache = run(block, "cpp", x, cache, bias)
    assert got.shape == want.shape and got_cache.shape == want_cache.shape == (2, 4, 24)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(got_cache, want_cache.contiguous(), atol=0, rtol=0)  # the last 4 rows, exactly


def test_cpp_block_follows_weight_updates():
    block = random_block()
    x, cache = torch.randn(1, 9, 24), torch.zeros(1, 4, 24)
    before, _ = run(block, "cpp", x, cache, None)
    with torch.no_grad():  # as an optimiser step or a load does: in place
        block.up.weight.mul_(-1)
    after, _ = run(block, "cpp", x, cache, None)
    want, _ = run(block, "python", x, cache, None)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 5, 13, 36])
@pytest.mark.parametrize("outputs", [7, 32, 80, 642])
def test_float16_panels_multiply_like_fp32(rows, outputs):
    module = vocoder_kernels("cpp")
    if not module.half_supported():
        pytest.skip("this CPU has no AVX-512: the products stay on fp32 MKL")
    g = torch.Generator().manual_seed(rows * outputs)
    weight = torch.randn(outputs, 48, generator=g).half().float()
    packed = product_weight(module, weight)
    assert packed.dtype == torch.float16 and packed.shape == (-(-outputs // 32), 48, 32)
    assert product_weight(module, weight + 1e-4).dtype == torch.float32  # not float16 values: kept as they are
    x, bias = torch.randn(rows, 48, generator=g), torch.randn(outputs, generator=g)
    torch.testing.assert_close(module.linear(x, packed, bias), torch.addmm(bias, x, weight.t()), atol=1e-5,
                               rtol=1e-5)


def test_inference_linear_equals_nn_linear_and_trains_as_one():
    torch.manual_seed(0)
    layer, reference = Linear(12, 7), torch.nn.Linear(12, 7)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 12)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), reference(x))
        assert layer(x[:, :0]).shape == (2, 0, 7)  # a stream's empty push
    y = layer(x)  # with autograd: nn.Linear itself
    assert y.requires_grad
    y.sum().backward()
    assert layer.weight.grad is not None


@pytest.mark.parametrize("full_rate_blocks, half", [(0, False), (1, False), (1, True)])
@pytest.mark.parametrize("guidance", [0.0, 0.7])
def test_cpp_flow_solver_renders_the_python_flow(full_rate_blocks, half, guidance):
    vocoder = tiny_vocoder(LAYOUT, seed=5, full_rate_blocks=full_rate_blocks)
    if half:
        half_exact(vocoder)
    codes = random_codes(7, LAYOUT, seed=2)
    out = {}
    for kernel in ("python", "cpp"):
        vocoder.set_kernel(kernel)
        out[kernel] = (vocoder.mel(codes, guidance=guidance, seed=3), vocoder.synthesize(codes, guidance=guidance))
    torch.testing.assert_close(out["cpp"][0], out["python"][0], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out["cpp"][1], out["python"][1], atol=1e-4)
    assert out["cpp"][0].abs().max() > 0.5  # the flow moved: the comparison is not between two zeros


def test_unknown_kernels_are_refused():
    vocoder = tiny_vocoder(LAYOUT)
    with pytest.raises(ValueError, match="kernel must be one of"):
        vocoder.set_kernel("cuda")
