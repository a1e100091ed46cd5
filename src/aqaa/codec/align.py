"""Forced alignment with the linguistic encoder: phone and word start/end times for audio with a transcript.

Viterbi over the CTC posteriors (20 ms positions): the best path through blank, p1, blank, p2, …, blank that
emits the transcript's phones. A phone's span is the run of positions its label holds on that path; it starts
where its first position starts and ends where the next phone begins (trailing blanks before a pause, longer
than `max_trailing_blank` positions, are left out). The encoder is causal, so its emissions come late by a
roughly constant delay; that delay, measured against flite's own timings when the tokenizer is assembled
(`evaluate.alignment_errors`), is subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aqaa.codec.linguistic import LinguisticModel
from aqaa.codec.mel import LogMel
from aqaa.codec.phones import BLANK, PHONES, text_to_phone_ids
from aqaa.data.align import WordTime


@dataclass(frozen=True)
class PhoneTime:
    phone: str
    start: float  # seconds
    end: float


class AlignmentError(ValueError):
    """The transcript cannot be aligned to the audio (e.g. more phones than the audio has room for)."""


def viterbi(log_probs: np.ndarray, targets: list[int], blank: int = BLANK) -> np.ndarray:
    """Best CTC path for `targets` through log_probs [T, V]; returns the label index (into targets) per position,
    or -1 where the path is on a blank."""
    t_len = log_probs.shape[0]
    labels = [blank]
    for p in targets:
        labels += [p, blank]
    s_len = len(labels)
    repeats = sum(a == b for a, b in zip(targets, targets[1:], strict=False))
    if t_len < len(targets) + repeats:
        raise AlignmentError(f"{len(targets)} phones need at least {len(targets) + repeats} CTC positions, "
                             f"the audio gives {t_len}")
    lab = np.array(labels)
    emit = log_probs[:, lab]  # [T, S]
    skip_ok = np.zeros(s_len, dtype=bool)
    skip_ok[2:] = (lab[2:] != blank) & (lab[2:] != lab[:-2])
    score = np.full(s_len, -np.inf)
    score[0], score[1] = emit[0, 0], emit[0, 1] if s_len > 1 else -np.inf
    back = np.zeros((t_len, s_len), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, t_len):
        prev1 = np.concatenate([[-np.inf], score[:-1]])
        prev2 = np.where(skip_ok, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        stacked = np.stack([score, prev1, prev2])
        back[t] = stacked.argmax(0)
        score = stacked.max(0) + emit[t]
    s = s_len - 1 if s_len == 1 or score[-1] >= score[-2] else s_len - 2
    path = np.empty(t_len, dtype=np.int64)
    for t in range(t_len - 1, -1, -1):
        path[t] = s
        s -= back[t, s]
    return np.where(lab[path] == blank, -1, (path - 1) // 2)


def align(model: LinguisticModel, wav: np.ndarray, text: str, sample_rate: int, delay_ms: float | None = None,
          max_trailing_blank: int = 3) -> tuple[list[PhoneTime], list[WordTime]]:
    """Phone and word times (seconds) for `wav` (mono, at the model's sample rate) spoken as `text`.

    `delay_ms` defaults to the delay measured for this model when it was trained."""
    if sample_rate != model.config.mel.sample_rate:
        raise ValueError(f"align needs audio at {model.config.mel.sample_rate} Hz, got {sample_rate} Hz")
    targets, words = text_to_phone_ids(text)
    if not targets:
        raise AlignmentError(f"no phones to align in {text!r}")
    with torch.inference_mode():
        mel = LogMel(model.config.mel)(torch.from_numpy(np.asarray(wav, dtype=np.float32))[None])
        feats, _ = model.encoder(mel)
        log_probs = model.ctc_log_probs(feats)[0].numpy()
    owner = viterbi(log_probs, targets)
    step = model.config.mel.hop * model.config.encoder.frames_per_token / model.config.ctc_slots / sample_rate
    delay = (model.config.alignment_delay_ms if delay_ms is None else delay_ms) / 1000
    duration = len(wav) / sample_rate
    first = [int(np.flatnonzero(owner == i)[0]) for i in range(len(targets))]
    last = [int(np.flatnonzero(owner == i)[-1]) for i in range(len(targets))]
    phones = []
    for i, target in enumerate(targets):
        end_pos = first[i + 1] if i + 1 < len(targets) else len(owner)
        end_pos = min(end_pos, last[i] + 1 + max_trailing_blank)
        start = min(max(first[i] * step - delay, 0.0), duration)
        end = min(max(end_pos * step - delay, start), duration)
        phones.append(PhoneTime(PHONES[target - 1], round(start, 4), round(end, 4)))
    word_times = [WordTime(w, phones[a].start, phones[b - 1].end) if b > a else WordTime(w, 0.0, 0.0)
                  for w, a, b in words]
    return phones, word_times
