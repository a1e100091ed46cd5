import json

import numpy as np
import pytest
import torch

from aqaa.codec.evaluate import clean_phone_error_rates
from aqaa.codec.tokenizer import AudioTokenizer, LevelConfig, TokenizerConfig

from .helpers import speechy, tiny_config, tiny_tokenizer


def test_frame_rates_and_code_counts():
    tokenizer = tiny_tokenizer()
    codes = tokenizer.encode(speechy(1.0))
    assert tokenizer.linguistic.encoder.frame_rate == pytest.approx(16.667, abs=1e-3)
    assert tokenizer.semantic.encoder.frame_rate == 25.0
    assert codes.linguistic.shape == (16,) and codes.semantic.shape == (25,)  # 100 mel frames // 6 and // 4
    assert codes.linguistic.dtype == torch.long and int(codes.semantic.max()) < 32
    assert len(set(codes.semantic.tolist())) > 3, "codes should vary over a varied signal"


@pytest.mark.parametrize("chunk", [1920, 160, 777, None])
def test_streaming_encode_equals_offline_encode(chunk):
    tokenizer = tiny_tokenizer()
    wav = speechy(3.3, seed=2)
    offline = tokenizer.encode(wav)
    stream = tokenizer.stream()
    rng = np.random.default_rng(0)
    pieces, i = [], 0
    while i < len(wav):
        size = chunk or int(rng.integers(1, 4000))
        pieces.append(stream.push(wav[i:i + size]))
        i += size
    assert torch.equal(torch.cat([p.linguistic for p in pieces]), offline.linguistic)
    assert torch.equal(torch.cat([p.semantic for p in pieces]), offline.semantic)


def test_encode_resamples_other_rates():
    tokenizer = tiny_tokenizer()
    wav8k = speechy(2.0, sr=8000)
    codes = tokenizer.encode(wav8k, sample_rate=8000)
    assert codes.semantic.shape == (50,)
    with pytest.raises(ValueError, match="8000 Hz"):
        tokenizer.stream(sample_rate=8000)
    with pytest.raises(ValueError, match="mono"):
        tokenizer.encode(np.zeros((2, 100), dtype=np.float32))


def test_save_and_load_give_identical_codes(tmp_path):
    tokenizer = tiny_tokenizer(seed=3)
    wav = speechy(2.0, seed=4)
    tokenizer.save(tmp_path / "tok")
    loaded = AudioTokenizer.from_pretrained(tmp_path / "tok")
    a, b = tokenizer.encode(wav), loaded.encode(wav)
    assert torch.equal(a.linguistic, b.linguistic) and torch.equal(a.semantic, b.semantic)
    assert loaded.config == tokenizer.config
    with pytest.raises(FileNotFoundError, match="saved model directory"):
        AudioTokenizer.from_pretrained(tmp_path)


def test_half_size_storage_loads_exactly_the_rounded_model(tmp_path):
    from aqaa.checkpoint import round_through

    tokenizer = tiny_tokenizer(seed=3)
    wav = speechy(2.0, seed=4)
    round_through(tokenizer.state_dict(), torch.float16)
    tokenizer.save(tmp_path / "tok", torch.float16)
    loaded = AudioTokenizer.from_pretrained(tmp_path / "tok")
    assert next(loaded.parameters()).dtype == torch.float32  # stored small, computed in float32
    a, b = tokenizer.encode(wav), loaded.encode(wav)
    assert torch.equal(a.linguistic, b.linguistic) and torch.equal(a.semantic, b.semantic)
    full = (tmp_path / "full")
    tiny_tokenizer(seed=3).save(full)
    assert (tmp_path / "tok" / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size


def test_ids_round_trip_and_single_stream_layouts():
    wav = speechy(2.0)
    dual = tiny_tokenizer()
    codes = dual.encode(wav)
    ids = dual.ids(codes)
    groups = min(len(codes.semantic) // 3, len(codes.linguistic) // 2)
    assert len(ids) == 5 * groups
    back = dual.codes(ids)
    assert torch.equal(back.linguistic, codes.linguistic[: 2 * groups])
    assert torch.equal(back.semantic, codes.semantic[: 3 * groups])
    assert bool((ids[0::5] < 16).all()) and bool((ids[2::5] >= 16).all())  # linguistic ids first, then semantic
    semantic_only = tiny_tokenizer(streams="semantic")
    ids = semantic_only.ids(semantic_only.encode(wav))
    assert bool((ids >= 16).all()) and len(ids) % 3 == 0
    linguistic_only = tiny_tokenizer(streams="linguistic")
    ids = linguistic_only.ids(linguistic_only.encode(wav))
    assert bool((ids < 16).all()) and len(ids) % 2 == 0


def test_unfitted_linguistic_codebook_is_a_clear_error():
    tokenizer = AudioTokenizer(tiny_config())
    with pytest.raises(RuntimeError, match="not fitted"):
        tokenizer.encode(speechy(1.0))


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="streams"):
        TokenizerConfig(streams="both")
    config = tiny_config()
    config.semantic_per_group = 2
    with pytest.raises(ValueError, match="same time"):
        TokenizerConfig(config.linguistic, config.semantic, semantic_per_group=2)


def test_quiet_recordings_are_lifted_by_the_configured_level_and_old_configs_load(tmp_path):
    tokenizer = tiny_tokenizer()
    wav = speechy(1.0)
    quiet = (wav * (10 ** (-35 / 20) / np.abs(wav).max())).astype(np.float32)
    lifted, gain = tokenizer.lift_quiet(quiet)
    assert gain == pytest.approx(25.0, abs=1e-3)  # to the default -10 dBFS
    assert 20 * np.log10(np.abs(lifted).max()) == pytest.approx(-10.0, abs=1e-3)
    tokenizer.config.level.below_dbfs = -40.0
    assert tokenizer.lift_quiet(quiet)[1] == 0.0
    with pytest.raises(ValueError, match="level.to_dbfs"):
        TokenizerConfig(tiny_config().linguistic, tiny_config().semantic, level=LevelConfig(-10.0, -20.0))
    # a tokenizer saved before the level setting existed loads with the defaults
    tiny_tokenizer().save(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    del config["level"]
    (tmp_path / "tok" / "config.json").write_text(json.dumps(config))
    assert AudioTokenizer.from_pretrained(tmp_path / "tok").config.level == LevelConfig()


def test_clean_phone_error_rates_read_the_codes_through_their_centroids():
    tokenizer = tiny_tokenizer()
    wav = speechy(0.5, seed=3)
    with torch.inference_mode():
        feats, _ = tokenizer.linguistic.encoder(tokenizer.mel(torch.from_numpy(wav)[None]))
    exact = torch.full((16, feats.shape[-1]), 1e3)
    exact[: feats.shape[1]] = feats[0]  # every token is its own centroid: quantising loses nothing
    tokenizer.linguistic.set_codebook(exact)
    rates = clean_phone_error_rates(tokenizer, [wav], ["a cat sat"])
    assert rates["codes"] == rates["encoder"] and rates["encoder"] > 0  # an untrained head reads nonsense
    tokenizer.linguistic.set_codebook(torch.zeros(16, feats.shape[-1]))  # one point: every token reads alike
    assert clean_phone_error_rates(tokenizer, [wav], ["a cat sat"])["codes"] != rates["codes"]
