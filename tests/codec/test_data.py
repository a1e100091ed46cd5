import shutil

import numpy as np
import pytest
import torch

from aqaa.checkpoint import save_ragged
from aqaa.codec.data import (
    CacheUnion,
    FeatureCache,
    VoiceDataConfig,
    batches,
    build_answer_voices,
    build_voice_cache,
)
from aqaa.codec.mel import MelConfig


def _cache(path, lengths):
    mels = [np.full((n, 2), float(n), dtype=np.float16) for n in lengths]
    save_ragged(path, {"mel": mels}, {"utterances": [{"n": n} for n in lengths]})
    return FeatureCache(path)


def test_a_cache_union_reads_its_caches_in_order(tmp_path):
    union = CacheUnion([_cache(tmp_path / "a", [3, 5]), _cache(tmp_path / "b", [7])])
    assert len(union) == 3 and [m["n"] for m in union.meta] == [3, 5, 7]
    assert union.lengths().tolist() == [3, 5, 7]
    assert [int(union.get("mel", i)[0, 0]) for i in range(3)] == [3, 5, 7]
    assert sorted(i for b in batches(union, 100, 0, 0) for i in b) == [0, 1, 2]
    with pytest.raises(ValueError, match="at least one cache"):
        CacheUnion([])


def test_bad_voice_data_fails_before_any_synthesis(tmp_path):
    with pytest.raises(ValueError, match="not a voice name"):
        build_voice_cache({"kal16": ["hello"]}, tmp_path / "v", MelConfig(), progress=False)
    with pytest.raises(ValueError, match="no texts"):
        build_voice_cache({"flite:kal16": []}, tmp_path / "v", MelConfig(), progress=False)
    with pytest.raises(ValueError, match="sentences_per_voice"):
        build_answer_voices(VoiceDataConfig(["flite:kal16"], 0), ["hello"], tmp_path / "v", MelConfig())
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_answer_voices_speak_a_draw_of_the_answers_in_each_voice(tmp_path):
    config = VoiceDataConfig(["flite:kal16", "flite:slt"], 2, rate_range=(0.9, 1.1), pitch_range=(1.0, 1.0))
    answers = ["Every week has seven days.", "The capital of France is Paris.", "Two plus two is four."]
    cache = FeatureCache(build_answer_voices(config, answers + answers[:1], tmp_path / "v", MelConfig(), workers=1))
    assert len(cache) == 4 and sorted(m["voice"] for m in cache.meta) == ["flite:kal16"] * 2 + ["flite:slt"] * 2
    for voice in config.voices:
        texts = [m["text"] for m in cache.meta if m["voice"] == voice]
        assert len(set(texts)) == 2 and set(texts) <= set(answers)
    assert all(0.9 <= m["rate"] <= 1.1 and m["pitch"] == 1.0 for m in cache.meta)
    assert {"mel", "phones", "f0", "voiced", "energy"} <= {k for k in cache.tensors if not k.endswith("_offsets")}
    assert all(len(cache.get("mel", i)) == len(cache.get("f0", i)) > 50 for i in range(len(cache)))
    assert torch.isfinite(cache.get("mel", 0).float()).all()
