"""Measurements of a vocoder: intelligibility (the ASR judge's WER), mel-cepstral distortion, and streaming
against offline synthesis.

MCD here: mel-cepstra are the DCT-II (orthonormal) of the 80-band natural-log mel power of each waveform,
halved (log power → log amplitude), coefficients 1 … 24 (c0, the level, is left out); per frame
(10 / ln 10) · sqrt(2 · Σ_d (c_d - ĉ_d)²) dB, averaged over the reference's speech frames (mel energy within
SPEECH_DB of its loudest frame: the corpus's synthetic speech has digital silence between words, whose log
spectrum says nothing about speech). Frames are compared one to one, with no time warping: resynthesis keeps
the original's timing frame for frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.fft import dct

from aqaa.codec.mel import LogMel, MelConfig
from aqaa.codec.tokenizer import Codes
from aqaa.vocoder.vocoder import Vocoder

CEPSTRA = 24
SPEECH_DB = 40.0


@torch.inference_mode()
def log_mel(wav: np.ndarray, config: MelConfig) -> np.ndarray:
    return LogMel(config)(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])[0].numpy()


def mel_cepstral_distortion(reference: np.ndarray, other: np.ndarray, config: MelConfig) -> float:
    """MCD in dB between two waveforms at config.sample_rate (see the module docstring)."""
    a, b = log_mel(reference, config), log_mel(other, config)
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("MCD needs at least one mel frame of each signal")
    a, b = a[:n], b[:n]
    energy_db = 10 * np.log10(np.exp(a).sum(-1))
    speech = energy_db >= energy_db.max() - SPEECH_DB
    ca = dct(a[speech], type=2, norm="ortho", axis=-1)[:, 1: CEPSTRA + 1] / 2
    cb = dct(b[speech], type=2, norm="ortho", axis=-1)[:, 1: CEPSTRA + 1] / 2
    per_frame = 10 / math.log(10) * np.sqrt(2 * ((ca - cb) ** 2).sum(-1))
    return float(per_frame.mean())


def mean_mcd(references: Sequence[np.ndarray], others: Sequence[np.ndarray], config: MelConfig) -> float:
    return float(np.mean([mel_cepstral_distortion(r, o, config) for r, o in zip(references, others, strict=True)]))


@torch.inference_mode()
def streaming_agreement(vocoder: Vocoder, codes: Codes, chunk_groups: int = 3, steps: int | None = None,
                        seed: int = 0) -> dict[str, float]:
    """Stream `codes` in chunks of `chunk_groups` token groups (as the LM emits them) and compare with offline
    synthesis: L1 between the generated log-mels, L1 between the log-mels of the two waveforms, the largest
    sample difference, and the largest sample-to-sample jump at a chunk seam against the largest elsewhere."""
    layout = vocoder.layout
    offline_wav = vocoder.synthesize(codes, steps, seed=seed)
    offline_mel = vocoder.mel(codes, steps, seed=seed)
    stream = vocoder.stream(steps, seed=seed)
    n_l, n_s = (k * chunk_groups for k in (layout.linguistic_per_group, layout.semantic_per_group))
    pieces, seams = [], []
    for i in range(0, max(len(codes.linguistic) // n_l, len(codes.semantic) // n_s) + 1):
        piece = stream.push(Codes(codes.linguistic[i * n_l:(i + 1) * n_l], codes.semantic[i * n_s:(i + 1) * n_s]))
        pieces.append(piece)
        seams.append(sum(len(p) for p in pieces))
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces)
    streamed_mel = stream.mel()
    cfg = vocoder.config.mel
    jumps = np.abs(np.diff(streamed))
    at_seams = [jumps[s - 1] for s in seams if 0 < s < len(streamed)]
    return {
        "generated_mel_l1": float((streamed_mel - offline_mel).abs().mean()),
        "waveform_mel_l1": float(np.abs(log_mel(streamed, cfg) - log_mel(offline_wav, cfg)).mean()),
        "max_sample_difference": float(np.abs(streamed - offline_wav).max()),
        "max_jump_at_seams": float(max(at_seams, default=0.0)),
        "max_jump_elsewhere": float(jumps.max(initial=0.0)),
    }
