"""Reading a built corpus: Hugging Face `datasets` loading, summaries, and single examples."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from aqaa.audio import decode_audio_bytes

SPLITS = ("train", "validation", "test")


class CorpusNotFoundError(FileNotFoundError):
    pass


def read_manifest(corpus_dir: str | Path) -> dict[str, Any]:
    """The corpus manifest; a clear error when the directory is not a finished corpus."""
    path = Path(corpus_dir) / "manifest.json"
    if not path.is_file():
        hint = " (the build did not finish: run `aqaa data build` again to resume it)" if (
            Path(corpus_dir) / "config.json").exists() else ""
        raise CorpusNotFoundError(f"{corpus_dir} is not a built corpus: no manifest.json{hint}")
    return json.loads(path.read_text())


def split_files(corpus_dir: str | Path) -> dict[str, list[str]]:
    """Absolute Parquet paths per split, as listed in the manifest."""
    manifest = read_manifest(corpus_dir)
    return {split: [str(Path(corpus_dir) / f) for f in info["files"]]
            for split, info in manifest["splits"].items() if info["files"]}


def load_corpus(corpus_dir: str | Path, split: str | None = None) -> Any:
    """The corpus as a `datasets.DatasetDict` (or one `Dataset` when `split` is given).

    Audio columns are `Audio(decode=False)` features: dicts of FLAC `bytes`; decode with `example_audio`.
    """
    import datasets

    files = split_files(corpus_dir)
    if split is not None:
        if split not in files:
            raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
        return datasets.load_dataset("parquet", data_files={split: files[split]}, split=split)
    return datasets.load_dataset("parquet", data_files=files)


def example_audio(example: dict[str, Any], which: str = "answer") -> tuple[np.ndarray, int]:
    """Decode an example's `query` or `answer` audio to (float32 waveform, sample rate)."""
    if which not in ("query", "answer"):
        raise ValueError(f"which must be 'query' or 'answer', not {which!r}")
    return decode_audio_bytes(example[f"{which}_audio"]["bytes"])


def find_example(corpus_dir: str | Path, example_id: str | None = None, split: str = "train",
                 index: int = 0) -> dict[str, Any]:
    """One example by id (searched in every split) or by position in a split."""
    files = split_files(corpus_dir)
    if example_id is not None:
        for paths in files.values():
            for path in paths:
                table = pq.read_table(path, filters=[("id", "=", example_id)])
                if table.num_rows:
                    return table.to_pylist()[0]
        raise KeyError(f"no example with id {example_id!r} in {corpus_dir}")
    if split not in files:
        raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
    for path in files[split]:
        rows = pq.ParquetFile(path).metadata.num_rows
        if index < rows:
            return pq.read_table(path).slice(index, 1).to_pylist()[0]
        index -= rows
    raise IndexError(f"split {split!r} has fewer examples than the index asked for")


def summarize(corpus_dir: str | Path) -> dict[str, Any]:
    """Counts per split, family, dimension, query voice and answer style, and hours of audio."""
    files = split_files(corpus_dir)
    columns = ["split", "family", "dimension", "query_voice", "answer_style", "query_seconds", "answer_seconds"]
    counters: dict[str, Counter] = {c: Counter() for c in columns[:5]}
    seconds = {"query": 0.0, "answer": 0.0}
    for paths in files.values():
        for path in paths:
            table = pq.read_table(path, columns=columns)
            for c in counters:
                counters[c].update(table.column(c).to_pylist())
            seconds["query"] += float(np.sum(table.column("query_seconds").to_numpy()))
            seconds["answer"] += float(np.sum(table.column("answer_seconds").to_numpy()))
    manifest = read_manifest(corpus_dir)
    return {
        "name": manifest["name"], "manifest_sha256": manifest["manifest_sha256"],
        "examples": sum(counters["split"].values()),
        "hours": {k: round(v / 3600, 3) for k, v in seconds.items()},
        **{c: dict(sorted(counter.items())) for c, counter in counters.items()},
    }


def judge_sample(corpus_dir: str | Path, n: int = 200, seed: int = 0, split: str = "train",
                 style: str = "neutral", progress: bool = False) -> dict[str, Any]:
    """The ASR judge's WER on `n` random answers of one style (default: the assistant's neutral voice).

    Returns the corpus-level WER, the WER per family, and every (reference, transcript) pair.
    """
    from aqaa import judge

    files = split_files(corpus_dir)
    if split not in files:
        raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
    rows = []
    for path in files[split]:
        table = pq.read_table(path, columns=["id", "family", "answer_text", "answer_style", "answer_audio"],
                              filters=[("answer_style", "=", style)])
        rows.extend(table.to_pylist())
    if not rows:
        return {"n": 0, "wer": None, "per_family": {}, "examples": []}
    sample = random.Random(seed).sample(rows, min(n, len(rows)))
    iterator = sample
    if progress:
        from tqdm import tqdm

        iterator = tqdm(sample, desc="judging answers", unit="utt")
    examples = []
    for row in iterator:
        wav, sr = decode_audio_bytes(row["answer_audio"]["bytes"])
        examples.append({"id": row["id"], "family": row["family"], "ref": row["answer_text"],
                         "hyp": judge.transcribe(wav, sr)})
    families = sorted({e["family"] for e in examples})
    per_family = {}
    for family in families:
        mine = [e for e in examples if e["family"] == family]
        per_family[family] = {"n": len(mine), "wer": judge.wer([e["ref"] for e in mine], [e["hyp"] for e in mine])}
    return {"n": len(examples), "wer": judge.wer([e["ref"] for e in examples], [e["hyp"] for e in examples]),
            "per_family": per_family, "examples": examples}
