import json

import pyarrow.parquet as pq
import pytest

from aqaa.data.build import _is_heldout_voice, build_corpus, conversation_turns
from aqaa.data.config import CorpusConfig
from aqaa.data.corpus import load_corpus
from aqaa.eval.bench import (
    GROUPS,
    BenchError,
    build_bench,
    corpus_config_for,
    open_bench,
    overlap_report,
    select_conversations,
    training_questions,
)

from .conftest import needs_synth, tiny_bench_config


def test_selection_is_deterministic_fills_every_quota_and_uses_only_the_test_split():
    config = tiny_bench_config(items_per_dimension=4, multi_turn_conversations=3)
    _, corpus = corpus_config_for(config)
    chosen = select_conversations(config, corpus)
    assert chosen == select_conversations(config, corpus)
    groups = [g for _, _, g in chosen]
    assert {g: groups.count(g) for g in GROUPS} == {**{g: 4 for g in GROUPS}, "multi_turn": 3}
    for index, family, _ in chosen:
        _, fam, split, _ = conversation_turns(corpus, index)
        assert (fam, split) == (family, "test")
    logical = [f for _, f, g in chosen if g == "logical_reasoning"]
    assert max(logical.count(f) for f in set(logical)) <= 2  # three families share four items


def test_the_benchmark_seed_must_differ_from_the_training_seed():
    with pytest.raises(BenchError, match="equals the training corpus seed"):
        corpus_config_for(tiny_bench_config(seed=1234))


def test_overlap_counts_same_text_and_voice_per_split():
    seen = {"train": {("hello", "flite:awb"), ("bye", "flite:slt")}, "test": {("hi", "flite:kal")}}
    turns = [{"query_text": "hello", "query_voice": "flite:awb"}, {"query_text": "bye", "query_voice": "flite:kal"},
             {"query_text": "new", "query_voice": "flite:kal"}]
    report = overlap_report(turns, seen)
    assert report["questions"] == 3
    assert report["train"] == {"text_and_voice": 1, "text_only": 2}
    assert report["test"] == {"text_and_voice": 0, "text_only": 0}


@needs_synth
def test_training_questions_are_exactly_what_the_builder_makes(tmp_path):
    corpus = CorpusConfig(name="t", seed=5, conversations=6, shard_size=6, test_fraction=0.3)
    build_corpus(corpus, tmp_path / "c", workers=1, progress=False)
    built = load_corpus(tmp_path / "c")
    expected = {}
    for split in built:
        expected[split] = {(r["query_text"], r["query_voice"]) for r in built[split]}
    computed = training_questions(corpus, progress=False)
    assert {s: v for s, v in computed.items() if v} == expected


@needs_synth
def test_the_tiny_benchmark_is_held_out_complete_and_named_by_its_hash(tiny_bench):
    manifest = tiny_bench.manifest
    assert set(manifest["groups"]) == set(GROUPS)
    corpus = CorpusConfig.from_dict(manifest["corpus_config"])
    for turn in manifest["turns"]:
        assert _is_heldout_voice(turn["query_voice"], corpus)
        assert turn["key"]["fact"] and turn["key"]["topic"]
        assert turn["group"] in GROUPS
    for conversation in manifest["conversations"]:
        turns = [tiny_bench.turns[t] for t in conversation["turns"]]
        assert [t["turn"] for t in turns] == list(range(len(turns)))
    assert len(manifest["manifest_sha256"]) == 64
    calibration = manifest["style_calibration"]
    assert calibration["prototypes"]["slow"]["rate"] < -0.3 < 0.3 < calibration["prototypes"]["fast"]["rate"]
    rows = sum(pq.ParquetFile(tiny_bench.directory / f).metadata.num_rows for f in manifest["files"])
    assert rows == len(manifest["turns"])


@needs_synth
def test_a_lost_part_is_rebuilt_to_the_same_benchmark(tiny_bench, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in tiny_bench.directory.iterdir():
        target = copy / item.name
        if item.is_dir():
            target.mkdir()
            for f in item.iterdir():
                (target / f.name).write_bytes(f.read_bytes())
        else:
            target.write_bytes(item.read_bytes())
    (copy / "bench.json").unlink()
    (copy / tiny_bench.manifest["files"][0]).unlink()  # as if interrupted before this part was written
    with pytest.raises(BenchError, match="build did not finish"):
        open_bench(copy)
    rebuilt = build_bench(tiny_bench_config(), copy, workers=1, progress=False)
    assert rebuilt["manifest_sha256"] == tiny_bench.sha256


@needs_synth
def test_another_config_may_not_reuse_a_benchmark_directory(tiny_bench):
    with pytest.raises(BenchError, match="holds another benchmark"):
        build_bench(tiny_bench_config(seed=100), tiny_bench.directory, progress=False)


def test_a_directory_without_bench_json_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="not a built benchmark"):
        open_bench(tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(BenchError, match="format 99"):
        open_bench(tmp_path)
