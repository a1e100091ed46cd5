"""Vocoder training data: corpus audio with its log-mel, and (once a tokenizer exists) its codes, cached.

An audio cache holds each utterance's waveform (int16, as the corpus stores it) and log-mel (float16), in the
format of `aqaa.codec.data.FeatureCache` (concatenated arrays + offsets, JSON metadata per utterance). A codes
cache beside it holds the frozen tokenizer's codes of the same utterances in the same order. Both are written
atomically.

Batches: the mel → waveform model trains on random fixed-length crops (`segments`, `crop`); the flow model on
whole utterances grouped by length (`aqaa.codec.data.batches`, `flow_batch`).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes, resample
from aqaa.checkpoint import save_ragged, state_fingerprint
from aqaa.codec.data import CacheUnion, FeatureCache
from aqaa.codec.mel import LogMel, MelConfig
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.configs import to_dict
from aqaa.data.corpus import split_files
from aqaa.vocoder.layout import TokenLayout

SIDES = ("query", "answer")


@dataclass
class _Job:
    path: str
    sides: tuple[str, ...]
    mel: MelConfig
    max_examples: int | None


def audio_features(wav: np.ndarray, text: str, mel: MelConfig, frontend: LogMel) -> dict[str, np.ndarray]:
    """One utterance's cached arrays: the waveform as int16 and its log-mel as float16 (`text` is not needed)."""
    with torch.inference_mode():
        log_mel = frontend(torch.from_numpy(wav)[None])[0].numpy()
    return {"wav": np.round(np.clip(wav, -1, 1) * 32767).astype(np.int16), "mel": log_mel.astype(np.float16)}


def _process_shard(job: _Job) -> tuple[list[np.ndarray], list[np.ndarray], list[dict[str, Any]]]:
    torch.set_num_threads(1)
    frontend = LogMel(job.mel)
    columns = ["id", "family"] + [f"{s}_{c}" for s in job.sides for c in ("text", "audio", "voice", "style")]
    rows = pq.read_table(job.path, columns=columns).to_pylist()[: job.max_examples]
    wavs, mels, meta = [], [], []
    for row in rows:
        for side in job.sides:
            wav, sr = decode_audio_bytes(row[f"{side}_audio"]["bytes"])
            if sr != job.mel.sample_rate:
                wav = resample(wav, sr, job.mel.sample_rate)
            features = audio_features(wav, row[f"{side}_text"], job.mel, frontend)
            wavs.append(features["wav"])
            mels.append(features["mel"])
            meta.append({"id": row["id"], "side": side, "family": row["family"], "text": row[f"{side}_text"],
                         "voice": row[f"{side}_voice"], "style": row[f"{side}_style"],
                         "seconds": len(wav) / job.mel.sample_rate})
    return wavs, mels, meta


def build_audio_cache(corpus_dir: str | Path, split: str, out: str | Path, mel: MelConfig,
                      sides: tuple[str, ...] = SIDES, max_shards: int | None = None,
                      max_examples_per_shard: int | None = None, workers: int = 2, progress: bool = True) -> Path:
    """Cache waveform and log-mel of `sides` of the first `max_shards` shards of `split` at `out`."""
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides:
        raise ValueError(f"cache sides must be among {SIDES}, got {list(sides)}")
    files = split_files(corpus_dir)
    if split not in files:
        raise ValueError(f"split {split!r} not in {corpus_dir}; it has {sorted(files)}")
    jobs = [_Job(p, tuple(sides), mel, max_examples_per_shard) for p in files[split][:max_shards]]
    wavs: list[np.ndarray] = []
    mels: list[np.ndarray] = []
    meta: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for w, m, info in tqdm(pool.map(_process_shard, jobs), total=len(jobs), desc=f"audio {split}",
                               unit="shard", disable=not progress):
            wavs += w
            mels += m
            meta += info
    if not meta:
        raise ValueError(f"no utterances in split {split!r} of {corpus_dir}")
    return save_ragged(Path(out), {"wav": wavs, "mel": mels},
                       {"corpus": str(corpus_dir), "split": split, "sample_rate": mel.sample_rate, "utterances": meta,
                        "hours": sum(m["seconds"] for m in meta) / 3600})


def wav_of(cache: FeatureCache, i: int) -> torch.Tensor:
    return cache.get("wav", i).float() / 32767


@torch.inference_mode()
def build_codes_cache(audio: FeatureCache, tokenizer: AudioTokenizer, layout: TokenLayout, out: str | Path,
                      progress: bool = True) -> Path:
    """Encode every utterance of an audio cache with the frozen tokenizer (its fingerprint is kept with them)."""
    linguistic, semantic = [], []
    for i in tqdm(range(len(audio)), desc="codes", unit="utt", disable=not progress):
        codes = tokenizer.encode(wav_of(audio, i))
        linguistic.append(codes.linguistic.numpy())
        semantic.append(codes.semantic.numpy())
    return save_ragged(Path(out), {"linguistic": linguistic, "semantic": semantic},
                       {"layout": to_dict(layout), "tokenizer_sha256": state_fingerprint(tokenizer.state_dict()),
                       "utterances": audio.meta})


def silence_level(mel: MelConfig) -> float:
    """The log-mel of digital silence (the front end's floor)."""
    return math.log(mel.floor)


def segments(cache: FeatureCache, count: int, seed: int, epoch: int, frames: int) -> list[list[tuple[int, int]]]:
    """One random crop start per utterance per epoch, shuffled, in batches of `count` (utterance, first frame)."""
    rng = np.random.default_rng(seed + 1000 * epoch)
    lengths = cache.lengths("mel")
    order = rng.permutation(len(cache))
    starts = [int(rng.integers(0, max(1, lengths[i] - frames + 1))) for i in order]
    pairs = list(zip(order.tolist(), starts, strict=True))
    return [pairs[i: i + count] for i in range(0, len(pairs) - count + 1, count)] or [pairs]


def crop(cache: FeatureCache, plan: list[tuple[int, int]], frames: int, left: int, right: int, hop: int,
         silence: float) -> dict[str, torch.Tensor]:
    """Batch of crops: mel [B, left + frames + right, n_mels] (silence outside the utterance) and the waveform
    [B, (left + frames + right) * hop] it came from (zeros outside)."""
    mels, wavs = [], []
    for i, start in plan:
        mel = cache.get("mel", i).float()
        wav = wav_of(cache, i)
        a, b = start - left, start + frames + right
        lo, hi = max(a, 0), min(b, len(mel))
        mels.append(torch.nn.functional.pad(mel[lo:hi], (0, 0, lo - a, b - hi), value=silence))
        wavs.append(torch.nn.functional.pad(wav[lo * hop: hi * hop], ((lo - a) * hop, (b - hi) * hop)))
    return {"mel": torch.stack(mels), "wav": torch.stack(wavs)}


def flow_batch(audio: FeatureCache | CacheUnion, codes: FeatureCache | CacheUnion, layout: TokenLayout,
               indices: list[int]) -> dict[str, torch.Tensor]:
    """Padded codes [B, T_l], [B, T_s], frame counts [B], log-mel [B, T, n_mels] of whole utterances."""
    ling = [codes.get("linguistic", i) for i in indices]
    sem = [codes.get("semantic", i) for i in indices]
    frames = torch.tensor([layout.frames(len(a), len(b)) for a, b in zip(ling, sem, strict=True)])
    t = int(frames.max())
    mels = [audio.get("mel", i).float()[:t] for i in indices]
    mel = torch.stack([torch.nn.functional.pad(m, (0, 0, 0, t - len(m))) for m in mels])

    def pad(seqs: list[torch.Tensor]) -> torch.Tensor:
        width = max(1, max(len(s) for s in seqs))
        return torch.stack([torch.nn.functional.pad(s, (0, width - len(s))) for s in seqs])

    return {"linguistic": pad(ling), "semantic": pad(sem), "frames": frames, "mel": mel}
