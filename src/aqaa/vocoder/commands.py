"""What `aqaa synth` and `aqaa resynth` do, as plain functions (the command line wraps them; tests call them).

- `read_tokens(path, layout)`: a TOKENS.json as `aqaa tokenize --json` prints it (keys `linguistic` and
  `semantic`, or interleaved audio-only `ids`) → `Codes`, with errors that name the file and the problem;
- `check_tokenizer(vocoder, tokenizer)`: the vocoder reads this tokenizer's codes (same codebooks, same frame
  arithmetic), or a clear error; a warning when it learned them from other tokenizer weights;
- `resynthesize(...)`: waveform → codes → waveform, the codec's round trip.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.checkpoint import state_fingerprint
from aqaa.codec.interleave import deinterleave
from aqaa.codec.tokenizer import AudioTokenizer, Codes
from aqaa.vocoder.layout import CodesError, TokenLayout
from aqaa.vocoder.vocoder import Vocoder


def _int_list(value: Any, key: str, path: Path) -> torch.Tensor:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CodesError(f"{path}: {key!r} must be a list of integers")
    return torch.tensor(value, dtype=torch.long)


def read_tokens(path: str | Path, layout: TokenLayout) -> Codes:
    """Codes from a TOKENS.json; the per-stream codes win over `ids` when both are present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokens file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CodesError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CodesError(f"{path}: expected a JSON object with 'linguistic' and 'semantic' (or 'ids') keys")
    if "linguistic" in data or "semantic" in data:
        codes = Codes(_int_list(data.get("linguistic", []), "linguistic", path),
                      _int_list(data.get("semantic", []), "semantic", path))
    elif "ids" in data:
        ids = _int_list(data["ids"], "ids", path)
        streams = data.get("streams", layout.streams)
        if streams != layout.streams:
            raise CodesError(f"{path}: ids in the {streams!r} layout, but this vocoder reads the "
                             f"{layout.streams!r} layout")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= layout.vocab.end):
            raise CodesError(f"{path}: audio ids must lie in [0, {layout.vocab.end}) (audio-only ids, as "
                             "`aqaa tokenize` prints them)")
        try:
            codes = Codes(*deinterleave(ids, layout.vocab, layout.per_group))
        except ValueError as err:
            raise CodesError(f"{path}: {err}") from None
    else:
        raise CodesError(f"{path}: no 'linguistic'/'semantic' or 'ids' key (keys: {sorted(data)})")
    try:
        return layout.check(codes)
    except CodesError as err:
        raise CodesError(f"{path}: {err}") from None


def check_tokenizer(vocoder: Vocoder, tokenizer: AudioTokenizer) -> None:
    """Raise ValueError unless the vocoder reads this tokenizer's codes; warn when it was trained on the codes of
    other weights of the same shape (a retrained tokenizer: its codes mean other sounds)."""
    expected = TokenLayout.from_tokenizer(tokenizer.config, vocoder.layout.streams)
    differ = {k: (v, getattr(expected, k)) for k, v in asdict(vocoder.layout).items() if getattr(expected, k) != v}
    if differ:
        detail = ", ".join(f"{k}: vocoder {a}, tokenizer {b}" for k, (a, b) in differ.items())
        raise ValueError(f"this vocoder was trained on another tokenizer's codes ({detail})")
    trained_on = vocoder.config.tokenizer_sha256
    if trained_on is not None and trained_on != state_fingerprint(tokenizer.state_dict()):
        warnings.warn(f"this vocoder was trained on the codes of other tokenizer weights (sha256 {trained_on[:12]}…): "
                      "pair it with the tokenizer it was trained with", stacklevel=2)


def resynthesize(wav: np.ndarray, tokenizer: AudioTokenizer, vocoder: Vocoder, steps: int | None = None,
                 guidance: float | None = None, seed: int = 0,
                 griffin_lim_iterations: int | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """Waveform at the tokenizer's rate → codes → waveform at the vocoder's rate, and timings in seconds (plus
    `gain_db`). A recording too quiet for the tokenizer is raised before it is read and the result lowered by
    the same gain, so the round trip keeps the recording's level (`LevelConfig`)."""
    check_tokenizer(vocoder, tokenizer)
    started = time.perf_counter()
    lifted, gain_db = tokenizer.lift_quiet(wav)
    codes = tokenizer.encode(lifted)
    encoded = time.perf_counter()
    out = vocoder.synthesize(codes, steps, guidance, seed, griffin_lim_iterations)
    if gain_db:
        out = (out * 10 ** (-gain_db / 20)).astype(np.float32)
    done = time.perf_counter()
    return out, {"tokenize": encoded - started, "vocode": done - encoded, "audio": len(out) / vocoder.sample_rate,
                 "gain_db": gain_db}
