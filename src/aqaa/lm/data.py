"""The speech LM's training data: every corpus example with its question and answer audio turned into codes by
the (frozen) audio tokenizer, cached once.

A cache is one safetensors file of concatenated int16 code arrays plus offsets (`query_linguistic`,
`query_semantic`, `answer_linguistic`, `answer_semantic`) and a JSON sidecar with each example's text, family,
style, conversation and answer word times. Shards are encoded in parallel processes; the cache is written
atomically, so an interrupted run leaves no half-written cache.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes
from aqaa.checkpoint import save_ragged
from aqaa.data.corpus import split_files

STREAMS = ("query_linguistic", "query_semantic", "answer_linguistic", "answer_semantic")
META_COLUMNS = ("id", "conversation_id", "turn", "split", "family", "dimension", "template", "query_text",
                "query_voice", "query_style", "answer_text", "answer_style", "answer_words", "answer_notes",
                "query_seconds", "answer_seconds")


@dataclass
class _Job:
    path: str
    tokenizer_dir: str
    max_examples: int | None


def _encode_shard(job: _Job) -> tuple[dict[str, list[np.ndarray]], list[dict[str, Any]]]:
    from aqaa.codec.tokenizer import AudioTokenizer

    torch.set_num_threads(1)
    tokenizer = AudioTokenizer.from_pretrained(job.tokenizer_dir)
    rows = pq.read_table(job.path).to_pylist()[: job.max_examples]
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in STREAMS}
    meta = []
    for row in rows:
        for side in ("query", "answer"):
            wav, sr = decode_audio_bytes(row[f"{side}_audio"]["bytes"])
            codes = tokenizer.encode(wav, sr)
            arrays[f"{side}_linguistic"].append(codes.linguistic.numpy().astype(np.int16))
            arrays[f"{side}_semantic"].append(codes.semantic.numpy().astype(np.int16))
        item = {k: row[k] for k in META_COLUMNS}
        item["answer_words"] = [{"word": w["word"], "start": round(float(w["start"]), 4),
                                 "end": round(float(w["end"]), 4)} for w in row["answer_words"] or []]
        meta.append(item)
    return arrays, meta


def build_token_cache(corpus_dir: str | Path, split: str, tokenizer_dir: str | Path, out: str | Path,
                      max_shards: int | None = None, max_examples_per_shard: int | None = None, workers: int = 2,
                      progress: bool = True) -> Path:
    """Encode `split` of the corpus (its first `max_shards` shards) with the tokenizer; write `out`
    (.safetensors + .json). Codes are the tokenizer's own (audio-only) codes, not LM ids."""
    files = split_files(corpus_dir)
    if split not in files:
        raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
    if not (Path(tokenizer_dir) / "model.safetensors").is_file():
        raise FileNotFoundError(f"no trained tokenizer in {tokenizer_dir} (train one with `aqaa train tokenizer`)")
    jobs = [_Job(p, str(tokenizer_dir), max_examples_per_shard) for p in files[split][:max_shards]]
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in STREAMS}
    meta: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for shard_arrays, shard_meta in tqdm(pool.map(_encode_shard, jobs), total=len(jobs),
                                             desc=f"tokenizing {split}", unit="shard", disable=not progress):
            for k in STREAMS:
                arrays[k].extend(shard_arrays[k])
            meta.extend(shard_meta)
    if not meta:
        raise ValueError(f"split {split!r} of {corpus_dir} has no examples")
    return save_ragged(out, arrays, {"corpus": str(corpus_dir), "split": split, "tokenizer": str(tokenizer_dir),
                                     "examples": meta})


class TokenCache:
    """Random access to a cache written by `build_token_cache`."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path).with_suffix(".safetensors")
        if not path.is_file():
            raise FileNotFoundError(f"token cache not found: {path} (build it with the LM recipe's tokens stage)")
        self.path = path
        self.tensors = load_file(str(path))
        self.examples: list[dict[str, Any]] = json.loads(path.with_suffix(".json").read_text())["examples"]

    def __len__(self) -> int:
        return len(self.examples)

    def codes(self, i: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(linguistic, semantic) codes [T_l], [T_s] (long) of example i's `query` or `answer` audio."""
        out = []
        for stream in ("linguistic", "semantic"):
            off = self.tensors[f"{side}_{stream}_offsets"]
            out.append(self.tensors[f"{side}_{stream}"][off[i]: off[i + 1]].long())
        return out[0], out[1]

    def conversations(self) -> dict[str, list[int]]:
        """Example indices of each conversation, in turn order."""
        convs: dict[str, list[int]] = {}
        for i, ex in enumerate(self.examples):
            convs.setdefault(ex["conversation_id"], []).append(i)
        for indices in convs.values():
            indices.sort(key=lambda i: self.examples[i]["turn"])
        return convs
