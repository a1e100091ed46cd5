import numpy as np
import pytest
import torch

from aqaa.codec.tokenizer import Codes
from aqaa.vocoder import TokenLayout

from .helpers import random_codes, tiny_vocoder

LAYOUT = TokenLayout(linguistic_codebook=16, semantic_codebook=32)


def stream_in_chunks(vocoder, codes, sizes, **kwargs):
    """Push codes in chunks of (linguistic, semantic) sizes, cycling through `sizes`."""
    stream = vocoder.stream(**kwargs)
    pieces, i, j, k = [], 0, 0, 0
    while i < len(codes.linguistic) or j < len(codes.semantic):
        a, b = sizes[k % len(sizes)]
        pieces.append(stream.push(Codes(codes.linguistic[i:i + a], codes.semantic[j:j + b])))
        i, j, k = i + a, j + b, k + 1
    pieces.append(stream.flush())
    return pieces, stream


def test_shapes_and_frame_rate_arithmetic():
    vocoder = tiny_vocoder(LAYOUT)
    codes = random_codes(10, LAYOUT)  # 10 groups = 120 frames = 1.2 s
    wav = vocoder.synthesize(codes)
    assert wav.dtype == np.float32 and wav.shape == (120 * 160,) and vocoder.sample_rate == 16000
    assert vocoder.mel(codes).shape == (120, 80)
    # uneven streams: the covered frames (min of 6 * T_l, 4 * T_s), down to whole estimator blocks of 4
    uneven = Codes(codes.linguistic[:13], codes.semantic)  # 78 frames covered → 76 rendered
    assert vocoder.synthesize(uneven).shape == (76 * 160,)
    assert np.isfinite(wav).all() and 0 < np.abs(wav).max() < 10


@pytest.mark.parametrize("kernel", ["python", "cpp"])
@pytest.mark.parametrize("sizes, full_rate_blocks", [([(6, 9)], 1), ([(6, 9)], 0), ([(2, 3)], 1),
                                                     ([(1, 0), (0, 2), (3, 1)], 1), ([(20, 1), (0, 40)], 0)])
def test_streaming_equals_offline(sizes, full_rate_blocks, kernel):
    vocoder = tiny_vocoder(LAYOUT, seed=3, full_rate_blocks=full_rate_blocks)
    vocoder.set_kernel(kernel)
    codes = random_codes(13, LAYOUT, seed=4)
    offline = vocoder.synthesize(codes, seed=7)
    pieces, stream = stream_in_chunks(vocoder, codes, sizes, seed=7)
    streamed = np.concatenate(pieces)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-5)
    assert torch.allclose(stream.mel(), vocoder.mel(codes, seed=7), atol=1e-5)


def test_lm_chunks_give_audio_early():
    vocoder = tiny_vocoder(LAYOUT)
    codes = random_codes(9, LAYOUT)
    pieces, _ = stream_in_chunks(vocoder, codes, [(6, 9)])  # 15 ids = 3 groups = 360 ms per chunk
    # the first chunk already yields audio: 360 ms minus the conditioner's and mel2wav's look-ahead and the
    # overlap-add tail
    first = len(pieces[0]) / 16000
    assert 0.15 < first < 0.36
    assert all(len(p) > 0 for p in pieces)


def test_seed_guidance_and_steps_change_the_sound_and_the_noise_is_reproducible():
    vocoder = tiny_vocoder(LAYOUT)
    codes = random_codes(4, LAYOUT)
    a = vocoder.synthesize(codes, seed=1)
    assert np.array_equal(a, vocoder.synthesize(codes, seed=1))
    for other in (vocoder.synthesize(codes, seed=2), vocoder.synthesize(codes, steps=2, seed=1),
                  vocoder.synthesize(codes, guidance=0.0, seed=1)):
        assert not np.allclose(a, other)


def test_zero_steps_render_the_prior_alone_and_stream_like_offline():
    vocoder = tiny_vocoder(LAYOUT, seed=5)
    codes = random_codes(7, LAYOUT, seed=6)
    flow = vocoder.flow
    units = 7 * LAYOUT.group_frames // flow.conditioner.unit
    with torch.inference_mode():
        mu, _ = flow.conditioner(codes.linguistic[None], codes.semantic[None], torch.ones(1, units))
        prior = flow.denormalize(mu)[0]
    mel = vocoder.mel(codes, steps=0)
    torch.testing.assert_close(mel, prior[: len(mel)], atol=1e-5, rtol=0)
    assert torch.equal(mel, vocoder.mel(codes, steps=0, seed=9))  # no noise is drawn
    assert not torch.allclose(mel, vocoder.mel(codes, steps=1))
    pieces, _ = stream_in_chunks(vocoder, codes, [(2, 3)], steps=0)
    np.testing.assert_allclose(np.concatenate(pieces), vocoder.synthesize(codes, steps=0), atol=1e-5)


def test_stream_misuse_is_a_clear_error():
    vocoder = tiny_vocoder(LAYOUT)
    stream = vocoder.stream()
    stream.push(random_codes(2, LAYOUT))
    stream.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(random_codes(1, LAYOUT))
    with pytest.raises(ValueError, match="steps"):
        vocoder.stream(steps=-1)
    with pytest.raises(ValueError, match="outside"):
        vocoder.synthesize(Codes(torch.tensor([99, 1]), torch.tensor([1, 2, 3])))


@pytest.mark.parametrize("streams", ["linguistic", "semantic"])
def test_single_stream_vocoders(streams):
    layout = TokenLayout(streams=streams, linguistic_codebook=16, semantic_codebook=32)
    vocoder = tiny_vocoder(layout)
    codes = random_codes(5, layout)
    if streams == "linguistic":
        codes = Codes(codes.linguistic, torch.zeros(0, dtype=torch.long))  # the other stream may be absent
    else:
        codes = Codes(torch.zeros(0, dtype=torch.long), codes.semantic)
    wav = vocoder.synthesize(codes)
    assert wav.shape == (60 * 160,)
    assert vocoder.flow.conditioner.linguistic is None or streams == "linguistic"
    pieces, _ = stream_in_chunks(vocoder, codes, [(2, 0)] if streams == "linguistic" else [(0, 3)])
    np.testing.assert_allclose(np.concatenate(pieces), wav, atol=1e-5)


def test_save_and_from_pretrained_round_trip(tmp_path):
    from aqaa.vocoder import Vocoder

    vocoder = tiny_vocoder(LAYOUT)
    vocoder.save(tmp_path / "v")
    loaded = Vocoder.from_pretrained(tmp_path / "v")
    codes = random_codes(3, LAYOUT)
    assert np.array_equal(loaded.synthesize(codes), vocoder.synthesize(codes))
    assert loaded.layout == LAYOUT
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "model.safetensors").write_bytes((tmp_path / "v" / "model.safetensors").read_bytes())
    (tmp_path / "t" / "config.json").write_text('{"kind": "aqaa.audio_tokenizer"}')
    with pytest.raises(ValueError, match="does not hold an aqaa vocoder"):
        Vocoder.from_pretrained(tmp_path / "t")
