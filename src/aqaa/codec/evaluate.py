"""Measurements of a trained tokenizer: what its codes carry, how much of each codebook is used, how well it
aligns. Every probe is fitted on the training cache and scored on held-out utterances.

- phone error rate (PER) of the linguistic encoder's own CTC head (greedy decoding), and of the same head read
  through the codes (each code's centroid) on clean speech of a chosen voice;
- a CTC probe on the linguistic *codes* (embedding → small causal conv → CTC), against the same probe fed a
  constant code (what the phone prior alone gives);
- pitch and energy per semantic token predicted by a per-code lookup table (mean target of each code in the
  training cache), and speaking rate (phones per second) from the rate of code changes: Pearson correlations;
- speaker identity from each stream's bag of codes (logistic regression): accuracy on held-out utterances;
- codebook usage and perplexity;
- forced-alignment boundary errors against flite's own phone timings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from aqaa.codec.align import AlignmentError, align
from aqaa.codec.conv import CausalConvStack
from aqaa.codec.data import FeatureCache
from aqaa.codec.phones import VOCAB_SIZE, text_to_phone_ids
from aqaa.codec.tokenizer import AudioTokenizer


@dataclass
class EncodedUtterance:
    linguistic: torch.Tensor  # [T_l] codes
    semantic: torch.Tensor  # [T_s] codes
    ctc_phones: list[int]  # greedy CTC decoding of the linguistic encoder
    phones: list[int]  # reference
    f0: torch.Tensor  # [T_s] per semantic token, octaves (0 where unvoiced)
    voiced: torch.Tensor  # [T_s] 0/1
    energy: torch.Tensor  # [T_s] log10 RMS
    meta: dict[str, Any]


def ctc_greedy(log_probs: torch.Tensor) -> list[int]:
    best = log_probs.argmax(-1).tolist()
    return [p for i, p in enumerate(best) if p != 0 and (i == 0 or p != best[i - 1])]


def edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def error_rate(refs: list[list[int]], hyps: list[list[int]]) -> float:
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True)) / max(1, sum(len(r) for r in refs))


@torch.inference_mode()
def encode_cache(tokenizer: AudioTokenizer, cache: FeatureCache, limit: int | None = None,
                 desc: str = "encoding") -> list[EncodedUtterance]:
    out = []
    k = tokenizer.config.semantic.encoder.frames_per_token
    n = len(cache) if limit is None else min(limit, len(cache))
    for i in tqdm(range(n), desc=desc, unit="utt"):
        mel = cache.get("mel", i).float()[None]
        lf, _ = tokenizer.linguistic.encoder(mel)
        sf, _ = tokenizer.semantic.encoder(mel)
        t = sf.shape[1]
        per_tok = {key: cache.get(key, i)[: t * k].reshape(t, k) for key in ("f0", "voiced", "energy")}
        voiced = per_tok["voiced"].sum(-1)
        out.append(EncodedUtterance(
            linguistic=tokenizer.linguistic.quantize(lf[0]), semantic=tokenizer.semantic.quantize(sf[0]),
            ctc_phones=ctc_greedy(tokenizer.linguistic.ctc_log_probs(lf)[0]), phones=cache.get("phones", i).tolist(),
            f0=(per_tok["f0"] * per_tok["voiced"]).sum(-1) / voiced.clamp(min=1), voiced=(voiced >= k / 2).float(),
            energy=per_tok["energy"].mean(-1), meta=cache.meta[i]))
    return out


def voice_group(meta: dict[str, Any]) -> str:
    """`query flite`, `query espeak` or `answer flite` (test-split queries are all in held-out voices)."""
    return f"{meta['side']} {meta['voice'].split(':')[0]}"


def phone_error_rates(items: list[EncodedUtterance]) -> dict[str, float]:
    groups: dict[str, list[EncodedUtterance]] = {"all": items}
    for item in items:
        groups.setdefault(voice_group(item.meta), []).append(item)
    return {name: round(error_rate([g.phones for g in group], [g.ctc_phones for g in group]), 4)
            for name, group in sorted(groups.items())}


@torch.inference_mode()
def clean_phone_error_rates(tokenizer: AudioTokenizer, wavs: list[np.ndarray],
                            texts: list[str]) -> dict[str, float]:
    """Greedy CTC phone error rates of waveforms (at the tokenizer's rate) against their texts, read by the
    linguistic encoder's CTC head from its features (`encoder`) and from the quantised codes, each code's
    centroid standing in for the features (`codes`): the phonetic content the codes keep, which no vocoder can
    add back."""
    linguistic = tokenizer.linguistic
    refs = [text_to_phone_ids(t)[0] for t in texts]
    from_features, from_codes = [], []
    for wav in wavs:
        feats, _ = linguistic.encoder(tokenizer.mel(torch.as_tensor(wav, dtype=torch.float32)[None]))
        from_features.append(ctc_greedy(linguistic.ctc_log_probs(feats)[0]))
        from_codes.append(ctc_greedy(linguistic.ctc_log_probs(linguistic.nearest_centroids(feats))[0]))
    return {"encoder": round(error_rate(refs, from_features), 4), "codes": round(error_rate(refs, from_codes), 4)}


def code_ctc_probe(train: list[EncodedUtterance], test: list[EncodedUtterance], codebook_size: int,
                   steps: int = 600, constant_input: bool = False, seed: int = 0) -> float:
    """PER of a small CTC model that reads only the linguistic codes (or, as the chance baseline, a constant)."""
    torch.manual_seed(seed)
    embed = torch.nn.Embedding(codebook_size, 128)
    stack = CausalConvStack(128, 128, 3, [1, 2, 4, 1, 2, 4])
    head = torch.nn.Linear(128, 3 * VOCAB_SIZE)
    params = [*embed.parameters(), *stack.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    rng = random.Random(seed)

    def forward(batch: list[EncodedUtterance]) -> tuple[torch.Tensor, torch.Tensor]:
        codes = torch.nn.utils.rnn.pad_sequence([u.linguistic for u in batch], batch_first=True)
        if constant_input:
            codes = torch.zeros_like(codes)
        h, _ = stack(embed(codes))
        logits = head(h).reshape(len(batch), -1, VOCAB_SIZE)
        return logits.log_softmax(-1), torch.tensor([3 * len(u.linguistic) for u in batch])

    for _ in tqdm(range(steps), desc="code CTC probe" + (" (constant input)" if constant_input else ""),
                  unit="step"):
        batch = rng.sample(train, min(32, len(train)))
        log_probs, lengths = forward(batch)
        targets = torch.nn.utils.rnn.pad_sequence([torch.tensor(u.phones) for u in batch], batch_first=True)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, lengths,
                                            torch.tensor([len(u.phones) for u in batch]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    hyps = []
    with torch.no_grad():
        for u in test:
            log_probs, _ = forward([u])
            hyps.append(ctc_greedy(log_probs[0]))
    return round(error_rate([u.phones for u in test], hyps), 4)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def prosody_probe(train: list[EncodedUtterance], test: list[EncodedUtterance], codebook_size: int,
                  stream: str = "semantic") -> dict[str, float]:
    """Per-code lookup probes for pitch (voiced tokens) and energy, and speaking rate from code changes."""
    result = {}
    for target in ("f0", "energy"):
        sums, counts = torch.zeros(codebook_size), torch.zeros(codebook_size)
        for u in train:
            codes = getattr(u, stream)
            mask = u.voiced.bool() if target == "f0" else torch.ones(len(codes), dtype=torch.bool)
            values = getattr(u, target)[: len(codes)]
            sums.index_add_(0, codes[mask[: len(codes)]], values[mask[: len(codes)]])
            counts.index_add_(0, codes[mask[: len(codes)]], torch.ones(int(mask[: len(codes)].sum())))
        table = torch.where(counts > 0, sums / counts.clamp(min=1), sums.sum() / counts.sum())
        pred, true = [], []
        for u in test:
            codes = getattr(u, stream)
            mask = u.voiced.bool()[: len(codes)] if target == "f0" else torch.ones(len(codes), dtype=torch.bool)
            pred.append(table[codes[mask]])
            true.append(getattr(u, target)[: len(codes)][mask])
        result[f"{target}_r"] = _pearson(torch.cat(pred).numpy(), torch.cat(true).numpy())
    rate_true, rate_pred = [], []
    for u in test:
        codes = getattr(u, stream)
        seconds = u.meta["seconds"]
        rate_true.append(len(u.phones) / seconds)
        rate_pred.append(float((codes[1:] != codes[:-1]).sum()) / seconds)
    result["speaking_rate_r"] = _pearson(np.array(rate_pred), np.array(rate_true))
    return result


def speaker_probe(items: list[EncodedUtterance], codebook_size: int, stream: str, min_utterances: int = 12,
                  seed: int = 0) -> dict[str, float]:
    """Which voice spoke a query, from its bag of codes: logistic regression, 75/25 split of utterances."""
    from sklearn.linear_model import LogisticRegression

    queries = [u for u in items if u.meta["side"] == "query"]
    counts: dict[str, int] = {}
    for u in queries:
        counts[u.meta["voice"]] = counts.get(u.meta["voice"], 0) + 1
    keep = [u for u in queries if counts[u.meta["voice"]] >= min_utterances]
    voices = sorted({u.meta["voice"] for u in keep})
    x = np.stack([np.sqrt(np.bincount(getattr(u, stream).numpy(), minlength=codebook_size)
                          / max(1, len(getattr(u, stream)))) for u in keep])
    y = np.array([voices.index(u.meta["voice"]) for u in keep])
    order = np.random.default_rng(seed).permutation(len(keep))
    cut = int(0.75 * len(order))
    clf = LogisticRegression(max_iter=300, C=10.0)
    clf.fit(x[order[:cut]], y[order[:cut]])
    accuracy = float((clf.predict(x[order[cut:]]) == y[order[cut:]]).mean())
    majority = float(np.bincount(y[order[cut:]]).max() / (len(order) - cut))
    return {"voices": len(voices), "test_utterances": len(order) - cut, "accuracy": round(accuracy, 4),
            "majority_baseline": round(majority, 4)}


def alignment_errors(tokenizer: AudioTokenizer, texts: list[str], voices: list[str],
                     delay_ms: float | None = None) -> dict[str, Any]:
    """Boundary errors (ms) of forced alignment against flite's own phone end times, per voice."""
    from aqaa.data.speech import Prosody, synthesize, voice_from_name

    sr = tokenizer.sample_rate
    result: dict[str, Any] = {}
    signed_all: list[float] = []
    for name in voices:
        voice = voice_from_name(name)
        word_err, signed = [], []
        for text in tqdm(texts, desc=f"aligning {name}", unit="utt"):
            utt = synthesize(text, voice, Prosody(), sr, level=True)
            ref = [(p, end) for p, end in utt.phones if p != "pau"]
            ref_start = _starts(utt.phones)
            try:
                phones, _ = align(tokenizer.linguistic, utt.wav, text, sr, delay_ms=delay_ms)
            except AlignmentError:
                continue
            if [p.phone for p in phones] != [p for p, _ in ref]:
                continue  # flite changed a phone in context; boundaries would not correspond one to one
            for ours, start in zip(phones, ref_start, strict=True):
                signed.append(1000 * (ours.start - start))
            _, words = text_to_phone_ids(text)
            for _, a, b in words:
                if b > a:
                    word_err.append(1000 * abs(phones[a].start - ref_start[a]))
                    word_err.append(1000 * abs(phones[b - 1].end - ref[b - 1][1]))
        signed_all += signed
        result[name] = {"boundaries": len(signed),
                        "median_phone_boundary_error_ms": _median([abs(s) for s in signed]),
                        "median_word_boundary_error_ms": _median(word_err)}
    result["median_signed_phone_start_error_ms"] = _median(signed_all)
    return result


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


def _starts(phones: list[tuple[str, float]]) -> list[float]:
    """Start time of each non-pause phone from flite's (phone, end time) list."""
    starts, prev = [], 0.0
    for phone, end in phones:
        if phone != "pau":
            starts.append(prev)
        prev = end
    return starts


def codebook_usage(items: list[EncodedUtterance], tokenizer: AudioTokenizer) -> dict[str, dict[str, float]]:
    """Per stream: fraction of the codebook used, and perplexity (exp of the code distribution's entropy)."""
    report = {}
    for stream in ("linguistic", "semantic"):
        size = getattr(tokenizer.config, stream).codebook_size
        counts = torch.bincount(torch.cat([getattr(u, stream) for u in items]), minlength=size).float()
        p = counts[counts > 0] / counts.sum()
        report[stream] = {"codebook_size": size, "used": int((counts > 0).sum()),
                          "used_fraction": round(float((counts > 0).float().mean()), 4),
                          "perplexity": round(float(torch.exp(-(p * p.log()).sum())), 1), "tokens": int(counts.sum())}
    return report
