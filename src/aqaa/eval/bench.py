"""The frozen spoken benchmark: held-out phrasings spoken by held-out voices, a fixed number of items per dimension.

The corpus builder makes it. The training corpus's config is reused with another seed, and only conversations
that land in its `test` split are kept: those use the held-out templates and voices, which the train split never
has. Items are picked in conversation order until every group holds its quota. Each group is one of the nine
StepEval-Audio-360 dimensions, plus `multi_turn` for the follow-up conversations. Within a group, the families
share the quota evenly. The same config therefore always gives the same benchmark, and `manifest_sha256` (over
every turn's metadata and audio) names it in every report.

Layout of a benchmark directory:
    bench.json              config, manifest hash, overlap check, groups, conversations and every turn with its
                            answer key (what the scorers look for): written last, so its presence means "built"
    data/part-NNN.parquet   the turns in the corpus schema (query audio, reference answer audio, voice metadata)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes
from aqaa.checkpoint import write_json
from aqaa.configs import from_dict, load_yaml, to_dict
from aqaa.data.build import (
    HF_FEATURES,
    SCHEMA,
    _pick_query_voice,
    conversation_turns,
    synthesize_conversation,
)
from aqaa.data.config import CorpusConfig
from aqaa.data.speech import require_synthesisers
from aqaa.data.tasks import DIMENSIONS, FAMILIES
from aqaa.eval.keys import answer_key
from aqaa.eval.styles import calibrate

BENCH_FORMAT = 1
GROUPS = (*DIMENSIONS, "multi_turn")
CHUNK = 25  # conversations per Parquet part: the unit of resumption


class BenchError(RuntimeError):
    """The benchmark cannot be built or read as asked."""


@dataclass
class BenchConfig:
    """What decides the benchmark. Changing any field gives a different benchmark (and manifest hash)."""

    name: str = "aqaa-bench"
    version: int = 1
    corpus_config: str = "configs/data/default.yaml"  # the training corpus: voices, styles, held-out sets
    seed: int = 360  # replaces the corpus seed, so no benchmark conversation is a training conversation
    items_per_dimension: int = 40  # conversations in each of the nine dimensions
    multi_turn_conversations: int = 20  # follow-up conversations (two or three turns each)
    max_scan: int = 1_000_000  # conversation indices looked at before giving up on filling the quotas
    check_overlap: bool = True  # compare every question with the training corpus (about 40 s for 47k)
    style_sentences: int = 16  # sentences rendered in every style to calibrate the style scorer


def load_bench_config(path: str | Path) -> BenchConfig:
    return from_dict(BenchConfig, load_yaml(path, "benchmark config"), str(path))


def corpus_config_for(config: BenchConfig) -> tuple[CorpusConfig, CorpusConfig]:
    """(the training corpus config, the benchmark's copy of it with the benchmark seed)."""
    training = CorpusConfig.from_yaml(config.corpus_config)
    if training.seed == config.seed:
        raise BenchError(f"the benchmark seed {config.seed} equals the training corpus seed: pick another seed, "
                         "or benchmark conversations would be training conversations")
    return training, CorpusConfig.from_dict({**training.to_dict(), "seed": config.seed})


def group_of(family: str) -> str:
    return "multi_turn" if family == "multi_turn" else FAMILIES[family].dimension


def select_conversations(config: BenchConfig, corpus: CorpusConfig) -> list[tuple[int, str, str]]:
    """(index, family, group) of the benchmark conversations, in index order.

    Quotas: `items_per_dimension` per dimension (multi_turn: `multi_turn_conversations`), shared evenly among
    the group's families (a family may take at most its share, rounded up)."""
    families_of: dict[str, list[str]] = defaultdict(list)
    for name, weight in sorted(corpus.family_weights.items()):
        if weight > 0:
            families_of[group_of(name)].append(name)
    quota = {g: config.items_per_dimension for g in DIMENSIONS}
    quota["multi_turn"] = config.multi_turn_conversations
    quota = {g: n for g, n in quota.items() if n > 0}
    empty = sorted(g for g in quota if not families_of[g])
    if empty:
        raise BenchError(f"no family of the corpus config feeds {empty}; give those families a positive weight")
    family_cap = {f: math.ceil(quota[g] / len(fs)) for g, fs in families_of.items() if g in quota for f in fs}
    taken: Counter[str] = Counter()
    per_family: Counter[str] = Counter()
    chosen = []
    for index in range(config.max_scan):
        _, family, split, _ = conversation_turns(corpus, index)
        group = group_of(family)
        if split != "test" or group not in quota or taken[group] >= quota[group]:
            continue
        if per_family[family] >= family_cap[family]:
            continue
        taken[group] += 1
        per_family[family] += 1
        chosen.append((index, family, group))
        if all(taken[g] >= n for g, n in quota.items()):
            return chosen
    short = {g: f"{taken[g]}/{n}" for g, n in quota.items() if taken[g] < n}
    raise BenchError(f"scanned {config.max_scan} conversations and some groups are still short: {short}; "
                     "raise max_scan or lower the quotas")


def training_questions(corpus: CorpusConfig, progress: bool = True) -> dict[str, set[tuple[str, str]]]:
    """Every (question text, voice) of a corpus config per split, computed without synthesis (the builder is a
    pure function of config and index)."""
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for index in tqdm(range(corpus.conversations), desc="overlap with training corpus", unit="conv",
                      disable=not progress, mininterval=1.0):
        rng, _, split, turns = conversation_turns(corpus, index)
        voice = _pick_query_voice(rng, corpus, split, turns)
        seen[split].update((t.query, voice.name) for t in turns)
    return seen


def overlap_report(turns: list[dict[str, Any]], seen: dict[str, set[tuple[str, str]]]) -> dict[str, Any]:
    """How many benchmark questions occur in the training corpus: same text and voice, or same text at all."""
    pairs = [(t["query_text"], t["query_voice"]) for t in turns]
    report: dict[str, Any] = {"questions": len(pairs)}
    for split, known in sorted(seen.items()):
        texts = {text for text, _ in known}
        report[split] = {"text_and_voice": sum(p in known for p in pairs),
                         "text_only": sum(text in texts for text, _ in pairs)}
    return report


def _synthesize_chunk(corpus_dict: dict[str, Any], indices: list[int]) -> list[dict[str, Any]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    corpus = CorpusConfig.from_dict(corpus_dict)
    with tempfile.TemporaryDirectory(prefix="aqaa-bench-") as tmp:
        return [r for i in indices for r in synthesize_conversation(corpus, i, Path(tmp))]


def _record_sha(record: dict[str, Any]) -> str:
    meta = {k: v for k, v in record.items() if k not in ("query_audio", "answer_audio", "_sha")}
    text = json.dumps(meta, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256((text + record["_sha"]).encode()).hexdigest()


def _write_part(path: Path, records: list[dict[str, Any]]) -> None:
    rows = [{k: v for k, v in r.items() if k != "_sha"} for r in records]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    meta = {"huggingface": json.dumps({"info": {"features": HF_FEATURES}}),
            "aqaa_record_sha256": json.dumps([_record_sha(r) for r in records])}
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _part_hashes(path: Path) -> list[str] | None:
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[b"aqaa_record_sha256"])
    except (OSError, KeyError, ValueError, pa.ArrowInvalid):
        return None  # torn or foreign: rebuilt


def turn_metadata(record: dict[str, Any], group: str) -> dict[str, Any]:
    """What the scorers need about one turn (the audio stays in Parquet)."""
    keep = ("id", "conversation_id", "turn", "family", "dimension", "template", "query_text", "query_voice",
            "query_gender", "query_style", "query_rate", "query_pitch", "query_gain_db", "query_snr_db",
            "query_rt60", "query_seconds", "answer_text", "answer_style", "answer_notes", "answer_seconds")
    meta = {k: record[k] for k in keep}
    meta["answer_notes"] = list(meta["answer_notes"] or [])
    meta["group"] = group
    return meta


def build_bench(config: BenchConfig, out_dir: str | Path, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Build (or resume) the benchmark in `out_dir`; returns bench.json's content."""
    require_synthesisers()
    out_dir = Path(out_dir)
    started = time.time()
    training, corpus = corpus_config_for(config)
    config_sha = hashlib.sha256(json.dumps({"bench": to_dict(config), "corpus": corpus.to_dict()},
                                           sort_keys=True).encode()).hexdigest()
    stamp = out_dir / ".config_sha256"
    if out_dir.exists() and any(out_dir.iterdir()):
        if not stamp.is_file() or stamp.read_text().strip() != config_sha:
            raise BenchError(f"{out_dir} is not empty and holds another benchmark (or no benchmark); "
                             "choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(config_sha + "\n")

    chosen = select_conversations(config, corpus)
    group_of_index = {index: group for index, _, group in chosen}
    chunks = [[i for i, _, _ in chosen[s:s + CHUNK]] for s in range(0, len(chosen), CHUNK)]
    parts = [out_dir / "data" / f"part-{n:03d}.parquet" for n in range(len(chunks))]
    pending = [n for n, p in enumerate(parts) if _part_hashes(p) is None]
    bar = tqdm(total=len(chosen), initial=len(chosen) - sum(len(chunks[n]) for n in pending), unit="conv",
               desc=f"building {config.name}", disable=not progress)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {n: pool.submit(_synthesize_chunk, corpus.to_dict(), chunks[n]) for n in pending}
        for n, future in futures.items():
            _write_part(parts[n], future.result())
            bar.update(len(chunks[n]))
    bar.close()

    turns, hashes = [], []
    for part in parts:
        table = pq.read_table(part, columns=[c for c in SCHEMA.names if not c.endswith("_audio")])
        hashes += _part_hashes(part) or []
        for row in table.to_pylist():
            meta = turn_metadata(row, group_of_index[int(row["conversation_id"][1:])])
            meta["key"] = answer_key(meta)
            turns.append(meta)
    overlap = None
    if config.check_overlap:
        overlap = overlap_report(turns, training_questions(training, progress))
    calibration = calibrate(corpus, config.style_sentences, progress=progress)
    manifest_sha = hashlib.sha256((config_sha + "".join(hashes)).encode()).hexdigest()
    conversations: dict[str, list[str]] = defaultdict(list)
    for t in turns:
        conversations[t["conversation_id"]].append(t["id"])
    bench = {
        "format": BENCH_FORMAT,
        "name": config.name,
        "version": config.version,
        "manifest_sha256": manifest_sha,
        "config": to_dict(config),
        "corpus_config": corpus.to_dict(),
        "training_corpus_seed": training.seed,
        "groups": dict(Counter(group for _, _, group in chosen)),
        "families": dict(sorted(Counter(family for _, family, _ in chosen).items())),
        "conversations": [{"id": cid, "group": group_of_index[int(cid[1:])], "turns": ids}
                          for cid, ids in conversations.items()],
        "turns": turns,
        "overlap": overlap,
        "style_calibration": calibration,
        "files": [str(p.relative_to(out_dir)) for p in parts],
        "build_seconds_last_run": round(time.time() - started, 1),
    }
    write_json(out_dir / "bench.json", bench)
    return bench


@dataclass
class Bench:
    """A built benchmark: its manifest and lazy access to each turn's audio."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def sha256(self) -> str:
        return self.manifest["manifest_sha256"]

    @functools.cached_property
    def turns(self) -> dict[str, dict[str, Any]]:
        """Every turn's metadata and answer key, by turn id."""
        return {t["id"]: t for t in self.manifest["turns"]}

    def conversations(self) -> list[dict[str, Any]]:
        return self.manifest["conversations"]

    def audio(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, int]]:
        """(turn id, query waveform, reference answer waveform, sample rate) for every turn, in part order
        (a conversation's turns are consecutive and in order)."""
        for rel in self.manifest["files"]:
            path = self.directory / rel
            if not path.is_file():
                raise BenchError(f"{path} is missing: the benchmark directory is incomplete")
            table = pq.read_table(path, columns=["id", "query_audio", "answer_audio"])
            for row in table.to_pylist():
                query, sr = decode_audio_bytes(row["query_audio"]["bytes"])
                answer, _ = decode_audio_bytes(row["answer_audio"]["bytes"])
                yield row["id"], query, answer, sr


def open_bench(directory: str | Path) -> Bench:
    """A built benchmark; a clear error when `directory` is not one (or its build did not finish)."""
    directory = Path(directory)
    path = directory / "bench.json"
    if not path.is_file():
        hint = " (its build did not finish: run `aqaa eval build-bench` again to resume)" if (
            directory / ".config_sha256").is_file() else ""
        raise BenchError(f"{directory} is not a built benchmark: no bench.json{hint}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != BENCH_FORMAT:
        raise BenchError(f"{path}: benchmark format {manifest.get('format')}, this aqaa reads {BENCH_FORMAT}")
    return Bench(directory, manifest)
