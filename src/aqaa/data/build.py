"""Build the spoken-QA corpus: deterministic, sharded, resumable, parallel.

Conversation i is a pure function of (config, seed, i), so any shard can be (re)built alone, in any order, on
any core. A shard is done when its marker in `.progress/` exists; the marker is written after the shard's Parquet
files are atomically in place, so an interrupted build resumes by rebuilding exactly the unfinished shards.

Layout of OUT:
    config.json                         the config the corpus was built with (a resume must match it)
    data/{train,validation,test}/shard-NNNNN.parquet
    .progress/shard-NNNNN.json          per-shard summary and content hash
    manifest.json                       written last: counts, hours, files and the corpus content hash
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from aqaa import __version__
from aqaa.audio import encode_flac
from aqaa.data.align import WordTime, align_words
from aqaa.data.config import CorpusConfig
from aqaa.data.effects import add_noise, add_room
from aqaa.data.speech import Prosody, Voice, require_synthesisers, set_level, synthesize, voice_from_name
from aqaa.data.tasks import FAMILIES, Turn

SPLITS = ("train", "validation", "test")
CORPUS_FORMAT = 1

AUDIO_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
WORD_TYPE = pa.struct([("word", pa.string()), ("start", pa.float32()), ("end", pa.float32())])
SCHEMA = pa.schema([
    ("id", pa.string()), ("conversation_id", pa.string()), ("turn", pa.int32()), ("split", pa.string()),
    ("family", pa.string()), ("dimension", pa.string()), ("template", pa.string()),
    ("query_text", pa.string()), ("query_audio", AUDIO_TYPE), ("query_voice", pa.string()),
    ("query_gender", pa.string()), ("query_style", pa.string()), ("query_rate", pa.float32()),
    ("query_pitch", pa.float32()), ("query_gain_db", pa.float32()), ("query_snr_db", pa.float32()),
    ("query_rt60", pa.float32()), ("query_seconds", pa.float32()),
    ("answer_text", pa.string()), ("answer_audio", AUDIO_TYPE), ("answer_voice", pa.string()),
    ("answer_style", pa.string()), ("answer_notes", pa.list_(pa.string())), ("answer_words", pa.list_(WORD_TYPE)),
    ("answer_seconds", pa.float32()), ("sample_rate", pa.int32()),
])
# Lets Hugging Face `datasets` restore the audio columns as Audio features (decode=False: no torchcodec needed).
HF_FEATURES = {
    **{name: {"dtype": "string", "_type": "Value"} for name in SCHEMA.names},
    "turn": {"dtype": "int32", "_type": "Value"},
    "sample_rate": {"dtype": "int32", "_type": "Value"},
    **{name: {"dtype": "float32", "_type": "Value"} for name in
       ("query_rate", "query_pitch", "query_gain_db", "query_snr_db", "query_rt60", "query_seconds",
        "answer_seconds")},
    "query_audio": {"_type": "Audio", "decode": False},
    "answer_audio": {"_type": "Audio", "decode": False},
    "answer_notes": {"_type": "List", "feature": {"dtype": "string", "_type": "Value"}},
    "answer_words": {"_type": "List", "feature": {"word": {"dtype": "string", "_type": "Value"},
                                                  "start": {"dtype": "float32", "_type": "Value"},
                                                  "end": {"dtype": "float32", "_type": "Value"}}},
}


class CorpusError(RuntimeError):
    """The output directory cannot be used as asked."""


@dataclass
class ShardSummary:
    index: int
    examples: dict[str, int]  # per split
    seconds: float  # audio, query + answer
    content_sha256: str
    files: list[str]


# ------------------------------------------------------------------------------------------------ sampling


def _split_of(rng: random.Random, config: CorpusConfig) -> str:
    u = rng.random()
    if u < config.test_fraction:
        return "test"
    if u < config.test_fraction + config.validation_fraction:
        return "validation"
    return "train"


def _is_heldout_voice(name: str, config: CorpusConfig) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in config.heldout_voices)


def _pick_query_voice(rng: random.Random, config: CorpusConfig, split: str, turns: list[Turn]) -> Voice:
    heldout = split == "test"
    pool = [voice_from_name(n) for n in config.query_voices if _is_heldout_voice(n, config) == heldout]
    if any(t.query_style in ("high", "low") for t in turns):
        pool = [v for v in pool if v.pitch_control]
    genders = {t.query_gender for t in turns if t.query_gender}
    if genders:
        pool = [v for v in pool if v.gender in genders]
    if not pool:
        raise CorpusError(f"no query voice fits split={split} and the turn's constraints; widen query_voices")
    flite = [v for v in pool if v.engine == "flite"]
    other = [v for v in pool if v.engine != "flite"]
    if flite and other:
        pool = flite if rng.random() < config.flite_query_fraction else other
    return rng.choice(pool)


def _query_prosody(rng: random.Random, config: CorpusConfig, turn: Turn) -> tuple[str, Prosody]:
    if turn.query_style:
        j = config.style_jitter
        base = config.styles[turn.query_style]
        return turn.query_style, base.scaled(rng.uniform(1 - j, 1 + j), rng.uniform(1 - j, 1 + j),
                                             rng.uniform(-1.0, 1.0))
    return "neutral", Prosody(rng.uniform(*config.query_rate_range), rng.uniform(*config.query_pitch_range),
                              rng.uniform(*config.query_gain_db_range))


def conversation_turns(config: CorpusConfig, index: int) -> tuple[random.Random, str, str, list[Turn]]:
    """The family, split and turns of conversation `index` (pure: no synthesis)."""
    rng = random.Random(f"{config.seed}:{index}")
    names = sorted(n for n, w in config.family_weights.items() if w > 0)
    family = rng.choices(names, weights=[config.family_weights[n] for n in names])[0]
    split = _split_of(rng, config)
    turns = FAMILIES[family].make(rng, split == "test")
    return rng, family, split, turns


# ------------------------------------------------------------------------------------------------ synthesis


def note_hz(note: str) -> float:
    """Equal-tempered frequency of a note name such as "C3" or "A4" (A4 = 440 Hz)."""
    semis = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}
    return 440.0 * 2 ** ((semis[note[0]] + 12 * (int(note[1:]) - 4)) / 12)


def sing(syllables: list[str], notes: tuple[str, ...], voice: Voice, config: CorpusConfig,
          workdir: Path | None) -> tuple[np.ndarray, list[WordTime]]:
    """Each syllable synthesised monotone at its note's F0, trimmed of flite's pauses, then concatenated."""
    style = config.styles["sing"]
    gap = np.zeros(int(config.note_gap_seconds * config.sample_rate), np.float32)
    pieces, times, t = [], [], 0.0
    for syllable, note in zip(syllables, notes, strict=True):
        prosody = Prosody(style.rate, note_hz(note) / voice.base_f0, 0.0, 0.0)
        utt = synthesize(syllable, voice, prosody, config.sample_rate, workdir, level=False)
        voiced = [(p, end) for p, end in utt.phones if p != "pau"]
        starts = [end for p, end in utt.phones if p == "pau"]
        begin = int((starts[0] if starts else 0.0) * config.sample_rate)
        finish = int(voiced[-1][1] * config.sample_rate) if voiced else len(utt.wav)
        chunk = utt.wav[begin:finish]
        pieces += [chunk, gap]
        times.append(WordTime(syllable, round(t, 4), round(t + len(chunk) / config.sample_rate, 4)))
        t += (len(chunk) + len(gap)) / config.sample_rate
    wav = set_level(np.concatenate(pieces), style.gain_db)
    return wav, times


def _pcm_sha(wav: np.ndarray) -> str:
    return hashlib.sha256((np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()).hexdigest()


def synthesize_conversation(config: CorpusConfig, index: int, workdir: Path) -> list[dict[str, Any]]:
    """All examples (turns) of conversation `index`, as corpus records."""
    rng, family, split, turns = conversation_turns(config, index)
    np_rng = np.random.default_rng([config.seed, index])
    voice = _pick_query_voice(rng, config, split, turns)
    assistant = voice_from_name(config.assistant_voice)
    sr = config.sample_rate
    conv_id = f"c{index:07d}"
    records = []
    for turn_index, turn in enumerate(turns):
        style_name, prosody = _query_prosody(rng, config, turn)
        query = synthesize(turn.query, voice, prosody, sr, workdir, level=False).wav
        snr = rng.uniform(*config.snr_db_range) if rng.random() < config.noise_probability else None
        rt60 = rng.uniform(*config.rt60_range) if rng.random() < config.room_probability else None
        if rt60 is not None:
            query = add_room(query, rt60, sr, np_rng)
        if snr is not None:
            query = add_noise(query, snr, np_rng)
        query = set_level(query, prosody.gain_db)
        if turn.notes:
            syllables = turn.answer.rstrip(".").lower().split()
            answer, words = sing(syllables, turn.notes, assistant, config, workdir)
        else:
            utt = synthesize(turn.answer, assistant, config.styles[turn.answer_style], sr, workdir)
            answer = utt.wav
            words = align_words(turn.answer, utt.phones, len(answer) / sr)
        example_id = f"{conv_id}-t{turn_index}"
        records.append({
            "id": example_id, "conversation_id": conv_id, "turn": turn_index, "split": split,
            "family": family, "dimension": turn.dimension, "template": turn.template,
            "query_text": turn.query, "query_audio": {"bytes": encode_flac(query, sr), "path": f"{example_id}-q.flac"},
            "query_voice": voice.name, "query_gender": voice.gender, "query_style": style_name,
            "query_rate": prosody.rate, "query_pitch": prosody.pitch, "query_gain_db": prosody.gain_db,
            "query_snr_db": snr, "query_rt60": rt60, "query_seconds": len(query) / sr,
            "answer_text": turn.answer,
            "answer_audio": {"bytes": encode_flac(answer, sr), "path": f"{example_id}-a.flac"},
            "answer_voice": assistant.name, "answer_style": turn.answer_style, "answer_notes": list(turn.notes),
            "answer_words": [{"word": w.word, "start": w.start, "end": w.end} for w in words],
            "answer_seconds": len(answer) / sr, "sample_rate": sr,
            "_sha": _pcm_sha(query) + _pcm_sha(answer),
        })
    return records


# ------------------------------------------------------------------------------------------------ shards


def _record_hash(record: dict[str, Any]) -> str:
    meta = {k: v for k, v in record.items() if k not in ("query_audio", "answer_audio", "_sha")}
    # Metadata as JSON plus the PCM hashes of both audios: equal for equal content, whatever Parquet does.
    text = json.dumps(meta, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256((text + record["_sha"]).encode()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _shard_range(config: CorpusConfig, shard: int) -> range:
    start = shard * config.shard_size
    return range(start, min(start + config.shard_size, config.conversations))


def num_shards(config: CorpusConfig) -> int:
    return (config.conversations + config.shard_size - 1) // config.shard_size


def build_shard(config: CorpusConfig, shard: int, out_dir: Path) -> ShardSummary:
    """Synthesise shard `shard` and write its Parquet files and marker atomically."""
    with tempfile.TemporaryDirectory(prefix="aqaa-synth-", dir=_scratch_dir()) as tmp:
        records = [r for i in _shard_range(config, shard) for r in synthesize_conversation(config, i, Path(tmp))]
    hashes = [_record_hash(r) for r in records]
    files, counts = [], {}
    for split in SPLITS:
        rows = [r for r in records if r["split"] == split]
        counts[split] = len(rows)
        if not rows:
            continue
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "_sha"} for r in rows], schema=SCHEMA)
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})
        rel = f"data/{split}/shard-{shard:05d}.parquet"
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp_path, compression="zstd")
        os.replace(tmp_path, path)
        files.append(rel)
    summary = ShardSummary(
        index=shard, examples=counts,
        seconds=float(sum(r["query_seconds"] + r["answer_seconds"] for r in records)),
        content_sha256=hashlib.sha256("".join(hashes).encode()).hexdigest(), files=files,
    )
    _atomic_write_text(out_dir / ".progress" / f"shard-{shard:05d}.json", json.dumps(summary.__dict__, indent=1))
    return summary


def _scratch_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _read_summary(path: Path) -> ShardSummary | None:
    try:
        return ShardSummary(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # a torn or foreign marker: the shard is rebuilt


def _worker_init() -> None:
    # Each worker runs subprocess synthesisers; numeric libraries must not also spawn threads per core.
    os.environ["OMP_NUM_THREADS"] = "1"


def _build_shard_task(config_dict: dict[str, Any], shard: int, out_dir: str) -> ShardSummary:
    return build_shard(CorpusConfig.from_dict(config_dict), shard, Path(out_dir))


def _prepare_out_dir(config: CorpusConfig, out_dir: Path, overwrite: bool) -> None:
    config_path = out_dir / "config.json"
    if out_dir.exists() and any(out_dir.iterdir()):
        if overwrite:
            shutil.rmtree(out_dir)
        elif not config_path.exists():
            raise CorpusError(f"{out_dir} exists, is not empty and holds no corpus; choose another --out")
        else:
            previous = json.loads(config_path.read_text())
            if previous.get("config_sha256") != config.sha256():
                raise CorpusError(
                    f"{out_dir} holds a corpus built from a different config (or seed); resuming would mix "
                    "two corpora. Use another --out, or --overwrite to rebuild it from scratch."
                )
    out_dir.mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        _atomic_write_text(config_path, json.dumps(
            {"config_sha256": config.sha256(), "config": config.to_dict()}, indent=1, sort_keys=True))


def build_corpus(config: CorpusConfig, out_dir: str | Path, workers: int | None = None, progress: bool = True,
                 overwrite: bool = False, max_shards: int | None = None) -> dict[str, Any]:
    """Build (or resume) the corpus in `out_dir`; returns the manifest.

    `max_shards` stops after building that many new shards without writing the manifest, as an interrupted
    build would; calling again resumes.
    """
    require_synthesisers()
    out_dir = Path(out_dir)
    _prepare_out_dir(config, out_dir, overwrite)
    started = time.time()
    total = num_shards(config)
    done: dict[int, ShardSummary] = {}
    for shard in range(total):
        summary = _read_summary(out_dir / ".progress" / f"shard-{shard:05d}.json")
        if summary is not None and all((out_dir / f).exists() for f in summary.files):
            done[shard] = summary
    pending = [s for s in range(total) if s not in done]
    if max_shards is not None:
        pending = pending[:max_shards]
    workers = max(1, workers or os.cpu_count() or 1)
    bar = tqdm(total=config.conversations, unit="conv", desc=f"building {config.name}", disable=not progress,
               initial=sum(len(_shard_range(config, s)) for s in done))
    if workers == 1 or len(pending) <= 1:
        for shard in pending:
            done[shard] = build_shard(config, shard, out_dir)
            bar.update(len(_shard_range(config, shard)))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
            futures = {pool.submit(_build_shard_task, config.to_dict(), s, str(out_dir)): s for s in pending}
            for future in as_completed(futures):
                summary = future.result()
                done[summary.index] = summary
                bar.update(len(_shard_range(config, summary.index)))
    bar.close()
    if len(done) < total:
        return {}
    manifest = _manifest(config, out_dir, [done[s] for s in range(total)], time.time() - started)
    _atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _manifest(config: CorpusConfig, out_dir: Path, shards: list[ShardSummary], seconds: float) -> dict[str, Any]:
    content = hashlib.sha256()
    content.update(config.sha256().encode())
    for s in shards:
        content.update(s.content_sha256.encode())
    families, dimensions, voices = Counter(), Counter(), Counter()
    for split in SPLITS:
        for rel in (f for s in shards for f in s.files if f.startswith(f"data/{split}/")):
            table = pq.read_table(out_dir / rel, columns=["family", "dimension", "query_voice"])
            families.update(table.column("family").to_pylist())
            dimensions.update(table.column("dimension").to_pylist())
            voices.update(table.column("query_voice").to_pylist())
    return {
        "format": CORPUS_FORMAT,
        "aqaa_version": __version__,
        "name": config.name,
        "seed": config.seed,
        "config_sha256": config.sha256(),
        "manifest_sha256": content.hexdigest(),
        "sample_rate": config.sample_rate,
        "examples": sum(sum(s.examples.values()) for s in shards),
        "conversations": config.conversations,
        "hours": round(sum(s.seconds for s in shards) / 3600, 4),
        "splits": {sp: {"examples": sum(s.examples.get(sp, 0) for s in shards),
                        "files": [f for s in shards for f in s.files if f.startswith(f"data/{sp}/")]}
                   for sp in SPLITS},
        "families": dict(sorted(families.items())),
        "dimensions": dict(sorted(dimensions.items())),
        "query_voices": len(voices),
        "build_seconds_last_run": round(seconds, 1),
    }
