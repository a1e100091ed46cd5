"""The audio tokenizer: waveform → linguistic codes (16.7 Hz) and semantic codes (25 Hz) → interleaved ids.

Interface (what the LM, the vocoder and the server rely on):
  - `encode(wav, sample_rate)` → `Codes` of the whole signal;
  - `stream()` → an object whose `push(chunk)` returns the codes completed by that chunk; the concatenation of
    everything pushed equals `encode` of the whole signal, bit for bit;
  - `ids(codes)` / `codes(ids)` map to and from interleaved LM ids via `aqaa.vocab.AudioVocab`;
  - `save(dir)` / `AudioTokenizer.from_pretrained(dir)` (safetensors + config.json).
`streams` selects the dual layout or one stream alone (the tokenizer ablation of the LM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.audio import lift_quiet, resample
from aqaa.checkpoint import load_model, save_model
from aqaa.codec.encoder import FeatureStream, MelStream
from aqaa.codec.interleave import deinterleave, interleave
from aqaa.codec.linguistic import LinguisticConfig, LinguisticModel
from aqaa.codec.mel import LogMel
from aqaa.codec.semantic import SemanticConfig, SemanticModel
from aqaa.configs import from_dict, to_dict
from aqaa.vocab import AudioVocab

STREAMS = ("dual", "linguistic", "semantic")


@dataclass
class LevelConfig:
    """How whole recordings too quiet for the encoders are brought up before tokenizing (`lift_quiet`).

    The corpus's questions peak between -21 dBFS (the "quiet" style) and 0 dBFS ("loud"), neutral ones between
    -14 and -6; inside that range the level is a cue the LM reads. Far below it the linguistic encoder misreads
    the phones (bench/question_recordings.py: the assistant voice's phone error rate is 2.9% at its own level, 43% at
    -24 dBFS and 72% at -30), so a recording that peaks below `below_dbfs` is taken for a quiet recording, not
    quiet speech, and raised to the level of a neutral question, `to_dbfs`."""

    below_dbfs: float = -22.0
    to_dbfs: float = -10.0

    def __post_init__(self) -> None:
        if self.to_dbfs < self.below_dbfs:
            raise ValueError(f"level.to_dbfs ({self.to_dbfs}) must not be below level.below_dbfs ({self.below_dbfs})")


@dataclass
class TokenizerConfig:
    linguistic: LinguisticConfig = field(default_factory=LinguisticConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    streams: str = "dual"
    linguistic_per_group: int = 2
    semantic_per_group: int = 3
    level: LevelConfig = field(default_factory=LevelConfig)

    def __post_init__(self) -> None:
        if self.streams not in STREAMS:
            raise ValueError(f"streams must be one of {STREAMS}, not {self.streams!r}")
        if self.linguistic.mel != self.semantic.mel:
            raise ValueError("the linguistic and semantic tokenizers must share one mel front end")
        group_ms = [1000 * n * self.linguistic.mel.hop * c.encoder.frames_per_token / self.linguistic.mel.sample_rate
                    for n, c in ((self.linguistic_per_group, self.linguistic),
                                 (self.semantic_per_group, self.semantic))]
        if abs(group_ms[0] - group_ms[1]) > 1e-6:
            raise ValueError(f"a group must span the same time in both streams, got {group_ms} ms")

    @property
    def per_group(self) -> tuple[int, int]:
        """Tokens of each stream per group in the chosen layout (0 for a stream left out)."""
        return (self.linguistic_per_group if self.streams != "semantic" else 0,
                self.semantic_per_group if self.streams != "linguistic" else 0)


@dataclass
class Codes:
    linguistic: torch.Tensor  # [T_l] long
    semantic: torch.Tensor  # [T_s] long


class AudioTokenizer(torch.nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = LogMel(config.linguistic.mel)
        self.linguistic = LinguisticModel(config.linguistic)
        self.semantic = SemanticModel(config.semantic)
        self.eval()

    @property
    def sample_rate(self) -> int:
        return self.config.linguistic.mel.sample_rate

    @property
    def vocab(self) -> AudioVocab:
        return AudioVocab(0, self.config.linguistic.codebook_size, self.config.semantic.codebook_size)

    def _prepare(self, wav: np.ndarray | torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        wav = wav.detach().cpu().numpy() if torch.is_tensor(wav) else np.asarray(wav)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono waveform [samples], got shape {wav.shape}")
        if sample_rate is not None and sample_rate != self.sample_rate:
            wav = resample(wav.astype(np.float32), sample_rate, self.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))

    def lift_quiet(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        """A whole recording raised to a neutral question's level when it is too quiet for the encoders (see
        `LevelConfig`), and the gain applied in dB (0.0 when left as is). `encode` and `stream` never do this
        themselves: a stream cannot know a recording's peak before it ends, and both must give the same codes."""
        wav = wav.detach().cpu().numpy() if torch.is_tensor(wav) else np.asarray(wav, dtype=np.float32)
        return lift_quiet(wav, self.config.level.below_dbfs, self.config.level.to_dbfs)

    @torch.inference_mode()
    def encode(self, wav: np.ndarray | torch.Tensor, sample_rate: int | None = None) -> Codes:
        """Codes of a whole mono waveform (resampled to the tokenizer's rate when `sample_rate` differs)."""
        return self.stream().push(self._prepare(wav, sample_rate))

    def stream(self, sample_rate: int | None = None) -> TokenizerStream:
        return TokenizerStream(self, sample_rate)

    def ids(self, codes: Codes, vocab: AudioVocab | None = None) -> torch.Tensor:
        """Interleaved ids in `vocab` (default: audio-only ids, linguistic from 0, semantic after them)."""
        return interleave(codes.linguistic, codes.semantic, vocab or self.vocab, self.config.per_group)

    def codes(self, ids: torch.Tensor, vocab: AudioVocab | None = None) -> Codes:
        ling, sem = deinterleave(ids, vocab or self.vocab, self.config.per_group)
        return Codes(ling, sem)

    def save(self, directory: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Weights + config; `dtype` float16 stores the weights at half the size (see `checkpoint.round_through`
        to make the in-memory model equal the stored one first)."""
        save_model(directory, self.state_dict(), {"kind": "aqaa.audio_tokenizer", **to_dict(self.config)}, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, streams: str | None = None) -> AudioTokenizer:
        state, config = load_model(directory)
        if config.pop("kind", None) != "aqaa.audio_tokenizer":
            raise ValueError(f"{directory} does not hold an aqaa audio tokenizer")
        if streams is not None:
            config["streams"] = streams
        tokenizer = cls(from_dict(TokenizerConfig, config, "tokenizer config"))
        tokenizer.load_state_dict(state)
        return tokenizer.eval()

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> AudioTokenizer:
        return cls(from_dict(TokenizerConfig, config, "tokenizer config"))


class TokenizerStream:
    """Push waveform chunks of any size; get the codes each chunk completes."""

    def __init__(self, tokenizer: AudioTokenizer, sample_rate: int | None = None) -> None:
        if sample_rate is not None and sample_rate != tokenizer.sample_rate:
            raise ValueError(f"streaming needs audio at {tokenizer.sample_rate} Hz, got {sample_rate} Hz; "
                             "resample it first")
        self.tokenizer = tokenizer
        self.mel = MelStream(tokenizer.mel)
        self.linguistic = FeatureStream(tokenizer.linguistic.encoder)
        self.semantic = FeatureStream(tokenizer.semantic.encoder)

    @torch.inference_mode()
    def push(self, wav: np.ndarray | torch.Tensor) -> Codes:
        mel = self.mel.push(self.tokenizer._prepare(wav, None))
        ling = self.tokenizer.linguistic.quantize(self.linguistic.push(mel))[0]
        sem = self.tokenizer.semantic.quantize(self.semantic.push(mel))[0]
        return Codes(ling, sem)
