import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from aqaa.data.build import (
    CorpusError,
    _is_heldout_voice,
    _pick_query_voice,
    build_corpus,
    conversation_turns,
)
from aqaa.data.config import CorpusConfig
from aqaa.data.corpus import example_audio, find_example, judge_sample, load_corpus, read_manifest, summarize
from aqaa.data.tasks import FAMILIES

pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                reason="synthesisers not installed")


def tiny_config(**overrides):
    settings = dict(name="tiny", seed=3, conversations=10, shard_size=4, validation_fraction=0.2,
                    test_fraction=0.2)
    settings.update(overrides)
    return CorpusConfig(**settings)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    manifest = build_corpus(tiny_config(), out, workers=2, progress=False)
    return out, manifest


def test_manifest_counts_and_files(corpus):
    out, manifest = corpus
    assert manifest == read_manifest(out) | {"build_seconds_last_run": manifest["build_seconds_last_run"]}
    assert manifest["examples"] >= 10
    assert sum(s["examples"] for s in manifest["splits"].values()) == manifest["examples"]
    for split in manifest["splits"].values():
        for f in split["files"]:
            assert (out / f).is_file()
    assert not list(out.rglob("*.tmp"))


def test_examples_hold_every_field(corpus):
    out, _ = corpus
    ds = load_corpus(out)
    rows = [r for split in ds for r in ds[split]]
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["family"] in FAMILIES
        for which in ("query", "answer"):
            wav, sr = example_audio(row, which)
            assert sr == 16000 and wav.ndim == 1
            assert abs(len(wav) / sr - row[f"{which}_seconds"]) < 1e-3
            assert np.isfinite(wav).all() and np.abs(wav).max() > 0.01
        words = row["answer_words"]
        assert words and all(w["start"] <= w["end"] <= row["answer_seconds"] + 1e-3 for w in words)
        assert row["answer_voice"] == "flite:awb"
    convs = {}
    for row in rows:
        convs.setdefault(row["conversation_id"], []).append(row["turn"])
    assert all(sorted(t) == list(range(len(t))) for t in convs.values())


def test_same_seed_same_corpus_different_seed_different(corpus, tmp_path):
    _, manifest = corpus
    again = build_corpus(tiny_config(), tmp_path / "again", workers=1, progress=False)
    assert again["manifest_sha256"] == manifest["manifest_sha256"]
    other = build_corpus(tiny_config(seed=4, conversations=4), tmp_path / "other", workers=1, progress=False)
    assert other["manifest_sha256"] != manifest["manifest_sha256"]


def test_interrupted_build_resumes_without_loss_or_duplicates(corpus, tmp_path):
    _, manifest = corpus
    out = tmp_path / "resumed"
    assert build_corpus(tiny_config(), out, workers=1, progress=False, max_shards=1) == {}
    assert not (out / "manifest.json").exists()
    # a crash mid-shard leaves a torn marker and a temporary file behind
    (out / ".progress" / "shard-00001.json").write_text("{not json")
    (out / "data" / "train").mkdir(parents=True, exist_ok=True)
    (out / "data" / "train" / ".shard-00002.parquet.tmp").write_bytes(b"partial")
    first_shard = (out / ".progress" / "shard-00000.json").stat().st_mtime_ns
    resumed = build_corpus(tiny_config(), out, workers=2, progress=False)
    assert (out / ".progress" / "shard-00000.json").stat().st_mtime_ns == first_shard  # not rebuilt
    assert resumed["manifest_sha256"] == manifest["manifest_sha256"]
    assert resumed["examples"] == manifest["examples"]
    ids = [i for f in out.glob("data/*/*.parquet") for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == manifest["examples"]


def test_refuses_to_mix_corpora(corpus, tmp_path):
    out, _ = corpus
    with pytest.raises(CorpusError, match="different config"):
        build_corpus(tiny_config(seed=99), out, workers=1, progress=False)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match="holds no corpus"):
        build_corpus(tiny_config(), stray, workers=1, progress=False)
    assert (stray / "notes.txt").read_text() == "mine"


def test_summary_and_lookup(corpus):
    out, manifest = corpus
    info = summarize(out)
    assert info["examples"] == manifest["examples"]
    assert info["hours"]["query"] > 0 and info["hours"]["answer"] > 0
    first = find_example(out, split="train", index=0)
    assert find_example(out, example_id=first["id"])["query_text"] == first["query_text"]
    with pytest.raises(KeyError):
        find_example(out, example_id="nope")


def test_config_yaml_round_trip_and_errors(tmp_path):
    config = tiny_config(family_weights={"arithmetic": 2.0})
    assert config.family_weights["arithmetic"] == 2.0 and config.family_weights["singing"] == 1.0
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config.to_dict()))
    assert CorpusConfig.from_yaml(path).sha256() == config.sha256()
    path.write_text("name: x\nconversatons: 3\n")
    with pytest.raises(ValueError, match="conversatons"):
        CorpusConfig.from_yaml(path)
    with pytest.raises(ValueError, match="unknown families"):
        CorpusConfig(family_weights={"poetry": 1.0})


def test_test_split_hears_only_heldout_voices_and_the_rest_never():
    config = CorpusConfig(test_fraction=0.3)
    splits = set()
    for index in range(300):
        rng, _, split, turns = conversation_turns(config, index)
        voice = _pick_query_voice(rng, config, split, turns)
        assert _is_heldout_voice(voice.name, config) == (split == "test"), (index, voice.name)
        for turn in turns:
            if turn.query_gender:
                assert voice.gender == turn.query_gender
        splits.add(split)
    assert splits == {"train", "validation", "test"}


def test_judge_sample_scores_the_assistant_answers(corpus):
    out, _ = corpus
    result = judge_sample(out, n=3, split="train")
    assert 1 <= result["n"] <= 3
    assert sum(f["n"] for f in result["per_family"].values()) == result["n"]
    assert 0.0 <= result["wer"] < 0.5  # flite awb on clean sentences: mostly right
    assert all(e["hyp"] for e in result["examples"])
