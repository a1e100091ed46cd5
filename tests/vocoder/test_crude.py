import pytest
import torch

from aqaa.vocoder.crude import CrudeCodec, fit_crude_codec, stack_frames


def test_a_codebook_that_holds_every_vector_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    words = torch.randn(8, 4, 5)  # 8 distinct 4-frame, 5-band vectors
    mels = [words[torch.randint(8, (n,))].reshape(-1, 5) for n in (30, 41, 25)]
    codec = fit_crude_codec(mels, frames=4, codebook_size=8, iters=10)
    for mel in mels:
        codes = codec.encode(mel)
        assert codes.shape == (len(mel) // 4,)
        torch.testing.assert_close(codec.decode(codes), mel)
    ragged = torch.cat([mels[0], torch.randn(3, 5)])  # a last partial vector is dropped
    assert codec.encode(ragged).shape == (30,)
    codec.save(tmp_path / "crude.safetensors")
    loaded = CrudeCodec.load(tmp_path / "crude.safetensors")
    assert loaded.frames == 4 and torch.equal(loaded.centroids, codec.centroids)


def test_fewer_codes_than_vectors_lose_detail_and_sampling_caps_the_fit():
    torch.manual_seed(1)
    mel = torch.randn(400, 5)
    codec = fit_crude_codec([mel], frames=2, codebook_size=4, max_vectors=50, iters=5)
    error = (codec.decode(codec.encode(mel)) - mel).pow(2).mean()
    assert 0.3 < error < (stack_frames(mel, 2) - stack_frames(mel, 2).mean(0)).pow(2).mean()


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="frames"):
        CrudeCodec(torch.zeros(4, 10), frames=3)
    with pytest.raises(ValueError, match="log-mel"):
        CrudeCodec(torch.zeros(4, 10), frames=2).encode(torch.zeros(7, 4))
