"""Tokenizer training data: log-mel, CTC phone targets, F0, voicing and energy, cached from a corpus.

A cache is one safetensors file of concatenated per-utterance arrays plus offsets, and a JSON sidecar with
per-utterance metadata (id, which side, voice, style, text). Shards are processed in parallel; the cache is
written atomically, so an interrupted run leaves no half-written cache behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes, resample
from aqaa.checkpoint import save_ragged
from aqaa.codec.mel import LogMel, MelConfig
from aqaa.codec.phones import text_to_phone_ids
from aqaa.data.corpus import split_files
from aqaa.data.speech import Prosody, synthesize, voice_from_name

F0_REFERENCE = 120.0  # Hz; F0 targets are octaves relative to this
F0_MIN, F0_MAX = 60.0, 500.0
ARRAYS = ("mel", "phones", "f0", "voiced", "energy")


def frame_targets(wav: np.ndarray, mel: MelConfig, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per mel frame: F0 in octaves re F0_REFERENCE (0 where unvoiced), voicing 0/1, log10 RMS energy."""
    f0 = librosa.yin(wav, fmin=F0_MIN, fmax=F0_MAX, sr=mel.sample_rate, frame_length=1024, hop_length=mel.hop)
    rms = librosa.feature.rms(y=wav, frame_length=mel.win, hop_length=mel.hop)[0]
    f0, rms = _fit(f0, n_frames), _fit(rms, n_frames)
    energy = np.log10(np.maximum(rms, 1e-5))
    # YIN gives a value in every frame; keep frames with energy near the utterance's speech level whose F0 is
    # not pinned to a search bound.
    voiced = (energy > energy.max() - 1.5) & (f0 > F0_MIN * 1.05) & (f0 < F0_MAX * 0.95)
    octaves = np.where(voiced, np.log2(np.maximum(f0, 1.0) / F0_REFERENCE), 0.0)
    return octaves.astype(np.float32), voiced.astype(np.float32), energy.astype(np.float32)


def utterance_features(wav: np.ndarray, text: str, mel: MelConfig, frontend: LogMel) -> dict[str, np.ndarray] | None:
    """One utterance's cached arrays (ARRAYS), or None when its text has no phone transcription."""
    try:
        phones, _ = text_to_phone_ids(text)
    except ValueError:
        return None
    with torch.inference_mode():
        log_mel = frontend(torch.from_numpy(wav)[None])[0].numpy()
    f0, voiced, energy = frame_targets(wav, mel, log_mel.shape[0])
    return {"mel": log_mel.astype(np.float16), "phones": np.asarray(phones, dtype=np.int64), "f0": f0,
            "voiced": voiced, "energy": energy}


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)), mode="edge")


@dataclass
class _Job:
    path: str
    sides: tuple[str, ...]
    mel: MelConfig
    max_examples: int | None


def _process_shard(job: _Job) -> tuple[dict[str, list[np.ndarray]], list[dict[str, Any]]]:
    torch.set_num_threads(1)
    frontend = LogMel(job.mel)
    columns = ["id", "family", "split"] + [f"{s}_{c}" for s in job.sides
                                          for c in ("text", "audio", "voice", "style")]
    columns += ["query_rate", "query_pitch", "query_gain_db"] if "query" in job.sides else []
    rows = pq.read_table(job.path, columns=columns).to_pylist()[: job.max_examples]
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    meta = []
    for row in rows:
        for side in job.sides:
            wav, sr = decode_audio_bytes(row[f"{side}_audio"]["bytes"])
            if sr != job.mel.sample_rate:
                wav = resample(wav, sr, job.mel.sample_rate)
            features = utterance_features(wav, row[f"{side}_text"], job.mel, frontend)
            if features is None:
                continue
            for key in ARRAYS:
                arrays[key].append(features[key])
            item = {"id": row["id"], "side": side, "family": row["family"], "split": row["split"],
                    "text": row[f"{side}_text"], "voice": row[f"{side}_voice"], "style": row[f"{side}_style"],
                    "seconds": len(wav) / job.mel.sample_rate}
            if side == "query":
                item.update(rate=row["query_rate"], pitch=row["query_pitch"], gain_db=row["query_gain_db"])
            meta.append(item)
    return arrays, meta


def build_cache(corpus_dir: str | Path, split: str, out: str | Path, mel: MelConfig, max_shards: int | None = None,
                max_examples_per_shard: int | None = None, sides: tuple[str, ...] = ("query", "answer"),
                workers: int = 2, progress: bool = True) -> Path:
    """Cache features of `split` (the first `max_shards` shards) at `out` (.safetensors + .json)."""
    files = split_files(corpus_dir)
    if split not in files:
        raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
    jobs = [_Job(p, tuple(sides), mel, max_examples_per_shard) for p in files[split][:max_shards]]
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    meta: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_process_shard, jobs)
        for shard_arrays, shard_meta in tqdm(results, total=len(jobs), desc=f"features {split}", unit="shard",
                                             disable=not progress):
            for k in ARRAYS:
                arrays[k].extend(shard_arrays[k])
            meta.extend(shard_meta)
    if not meta:
        raise ValueError(f"no usable utterances in split {split!r} of {corpus_dir}")
    return save_ragged(out, arrays, {"corpus": str(corpus_dir), "split": split, "utterances": meta,
                                     "hours": sum(m["seconds"] for m in meta) / 3600})


@dataclass
class VoiceDataConfig:
    """The corpus's answers re-spoken in more voices: the corpus speaks every answer in the assistant's voice and
    only a few hundred questions in each other voice, too few for a model to learn those voices from."""

    voices: list[str] = field(default_factory=list)  # e.g. flite:kal16; none: no such data
    sentences_per_voice: int = 2000  # each voice its own random draw of the distinct answers
    rate_range: tuple[float, float] = (0.85, 1.15)
    pitch_range: tuple[float, float] = (0.9, 1.1)
    seed: int = 0


Featurize = Callable[[np.ndarray, str, MelConfig, LogMel], "dict[str, np.ndarray] | None"]


@dataclass
class _VoiceJob:
    items: list[tuple[str, str, float, float]]  # text, voice name, rate, pitch
    mel: MelConfig
    featurize: Featurize


def _render_voices(job: _VoiceJob) -> tuple[dict[str, list[np.ndarray]], list[dict[str, Any]]]:
    torch.set_num_threads(1)
    frontend = LogMel(job.mel)
    arrays: dict[str, list[np.ndarray]] = {}
    meta = []
    for text, voice, rate, pitch in job.items:
        wav = synthesize(text, voice_from_name(voice), Prosody(rate=rate, pitch=pitch), job.mel.sample_rate).wav
        features = job.featurize(wav, text, job.mel, frontend)
        if features is None:
            continue
        for key, value in features.items():
            arrays.setdefault(key, []).append(value)
        meta.append({"side": "answer", "text": text, "voice": voice, "style": "neutral", "rate": rate,
                     "pitch": pitch, "seconds": len(wav) / job.mel.sample_rate})
    return arrays, meta


def build_voice_cache(texts_by_voice: dict[str, list[str]], out: str | Path, mel: MelConfig,
                      rate_range: tuple[float, float] = (1.0, 1.0), pitch_range: tuple[float, float] = (1.0, 1.0),
                      seed: int = 0, workers: int = 2, featurize: Featurize = utterance_features,
                      progress: bool = True) -> Path:
    """Cache each voice speaking its texts, at a random rate and pitch drawn uniformly from the ranges: sentences
    in voices the corpus has few of. `featurize` (a module-level function, as it crosses processes) gives each
    utterance's arrays: by default those of `build_cache`."""
    for voice in texts_by_voice:
        voice_from_name(voice)  # an unknown voice fails here, before any worker starts
    rng = np.random.default_rng(seed)
    items = [(text, voice, float(rng.uniform(*rate_range)), float(rng.uniform(*pitch_range)))
             for voice, texts in texts_by_voice.items() for text in texts]
    if not items:
        raise ValueError("no texts to speak: give each voice at least one text")
    chunk = max(1, len(items) // (8 * workers))
    jobs = [_VoiceJob(items[i:i + chunk], mel, featurize) for i in range(0, len(items), chunk)]
    arrays: dict[str, list[np.ndarray]] = {}
    meta: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(items), desc="speaking in more voices", unit="utt", disable=not progress) as bar:
        for job, (job_arrays, job_meta) in zip(jobs, pool.map(_render_voices, jobs), strict=True):
            for key, values in job_arrays.items():
                arrays.setdefault(key, []).extend(values)
            meta.extend(job_meta)
            bar.update(len(job.items))
    if not meta:
        raise ValueError("none of the texts could be used (no phone transcription)")
    return save_ragged(out, arrays, {"voices": sorted(texts_by_voice), "sample_rate": mel.sample_rate,
                                     "utterances": meta, "hours": sum(m["seconds"] for m in meta) / 3600})


def build_answer_voices(config: VoiceDataConfig, answers: list[str], out: str | Path, mel: MelConfig,
                        workers: int = 2, featurize: Featurize = utterance_features) -> Path:
    """`build_voice_cache` of `config`: each voice speaks its own draw of the distinct `answers`."""
    if config.sentences_per_voice < 1:
        raise ValueError(f"voices.sentences_per_voice must be at least 1, got {config.sentences_per_voice}")
    answers = sorted(set(answers))
    generator = torch.Generator().manual_seed(config.seed)
    texts = {voice: [answers[i] for i in torch.randperm(len(answers), generator=generator)[
        : config.sentences_per_voice]] for voice in config.voices}
    return build_voice_cache(texts, out, mel, config.rate_range, config.pitch_range, config.seed, workers, featurize)


def cache_meta(path: str | Path) -> list[dict[str, Any]]:
    """The per-utterance metadata of a cache, without reading its arrays."""
    path = Path(path).with_suffix(".safetensors")
    if not path.is_file():
        raise FileNotFoundError(f"feature cache not found: {path} (build it with the tokenizer recipe)")
    return json.loads(path.with_suffix(".json").read_text())["utterances"]


class FeatureCache:
    """Random access to a cache written by `build_cache`."""

    def __init__(self, path: str | Path) -> None:
        self.meta: list[dict[str, Any]] = cache_meta(path)
        self.tensors = load_file(str(Path(path).with_suffix(".safetensors")))

    def __len__(self) -> int:
        return len(self.meta)

    def get(self, key: str, i: int) -> torch.Tensor:
        off = self.tensors[f"{key}_offsets"]
        return self.tensors[key][off[i]: off[i + 1]]

    def lengths(self, key: str = "mel") -> np.ndarray:
        """Each item's length along `key`'s first axis."""
        return np.diff(self.tensors[f"{key}_offsets"].numpy())

    def mel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mel = self.tensors["mel"].float()
        return mel.mean(0), mel.std(0)

    def hours(self) -> float:
        return sum(m["seconds"] for m in self.meta) / 3600


class CacheUnion:
    """Caches of the same arrays read as one: index i runs through the first cache, then the next."""

    def __init__(self, caches: list[FeatureCache]) -> None:
        if not caches:
            raise ValueError("a cache union needs at least one cache")
        self.caches = caches
        self.starts = np.cumsum([0] + [len(c) for c in caches])
        self.meta = [m for c in caches for m in c.meta]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def get(self, key: str, i: int) -> torch.Tensor:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.caches[k].get(key, i - int(self.starts[k]))

    def lengths(self, key: str = "mel") -> np.ndarray:
        return np.concatenate([c.lengths(key) for c in self.caches])


def batches(cache: FeatureCache | CacheUnion, max_frames: int, seed: int, epoch: int) -> list[list[int]]:
    """Utterance indices grouped into batches of about `max_frames` padded mel frames, length-sorted in buckets."""
    rng = np.random.default_rng(seed + 1000 * epoch)
    order = rng.permutation(len(cache))
    lengths = cache.lengths("mel")
    out: list[list[int]] = []
    bucket = 256
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start:start + bucket], key=lambda i: lengths[i])
        batch: list[int] = []
        for i in chunk:
            if batch and (len(batch) + 1) * max(lengths[batch[-1]], lengths[i]) > max_frames:
                out.append(batch)
                batch = []
            batch.append(int(i))
        if batch:
            out.append(batch)
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def collate(cache: FeatureCache, indices: list[int], frames_per_token: int) -> dict[str, torch.Tensor]:
    """Padded batch: mel [B, T, n_mels], lengths, phones [B, L], per-token F0/voicing/energy targets."""
    mels = [cache.get("mel", i).float() for i in indices]
    lengths = torch.tensor([len(m) for m in mels])
    t = int(lengths.max())
    mel = torch.stack([torch.nn.functional.pad(m, (0, 0, 0, t - len(m))) for m in mels])
    phones = [cache.get("phones", i) for i in indices]
    targets = torch.zeros(len(indices), max(1, max(len(p) for p in phones)), dtype=torch.long)
    for b, p in enumerate(phones):
        targets[b, : len(p)] = p
    tok = t // frames_per_token
    per_token = {}
    for key in ("f0", "voiced", "energy"):
        rows = [torch.nn.functional.pad(cache.get(key, i), (0, t - int(lengths[b])))
                for b, i in enumerate(indices)]
        per_token[key] = torch.stack(rows)[:, : tok * frames_per_token].reshape(len(indices), tok, frames_per_token)
    voiced_frac = per_token["voiced"].mean(-1)
    f0_sum = (per_token["f0"] * per_token["voiced"]).sum(-1)
    return {
        "mel": mel, "mel_lengths": lengths, "phones": targets,
        "phone_lengths": torch.tensor([len(p) for p in phones]),
        "log_f0": f0_sum / per_token["voiced"].sum(-1).clamp(min=1),
        "voiced": (voiced_frac >= 0.5).float(),
        "log_energy": per_token["energy"].mean(-1),
    }


