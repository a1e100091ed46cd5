"""Weights as safetensors plus a JSON config, written atomically; optimizer state without pickle."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    _atomic(path, lambda p: p.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n"))


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic(path, lambda p: save_file(flat, str(p), metadata=metadata))


STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def storage_dtype(name: str) -> torch.dtype:
    if name not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype must be one of {sorted(STORAGE_DTYPES)}, not {name!r}")
    return STORAGE_DTYPES[name]


def round_through(state: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Round every float32 tensor of `state` in place to what storing it as `dtype` keeps, so a model measured
    after this is exactly the model that loads from the smaller file."""
    with torch.no_grad():
        for tensor in state.values():
            if tensor.dtype == torch.float32:
                tensor.copy_(tensor.to(dtype).float())


def save_model(directory: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any],
               dtype: torch.dtype = torch.float32) -> None:
    """Write `model.safetensors` then `config.json`; each file is replaced atomically. With `dtype` float16 or
    bfloat16 the float32 tensors are stored at half the size (loading copies them back into float32 modules)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(directory / WEIGHTS, {k: v.to(dtype) if v.dtype == torch.float32 else v for k, v in state.items()})
    write_json(directory / CONFIG, config)


def load_model(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    directory = Path(directory)
    for name in (WEIGHTS, CONFIG):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory}: no {name} here; is this a saved model directory?")
    return load_file(str(directory / WEIGHTS)), json.loads((directory / CONFIG).read_text())


def state_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, dtypes, shapes and values: which weights made a cache."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous().cpu()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as flat tensors plus JSON (param groups and non-tensor entries)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = flat.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_ragged(out: str | Path, arrays: dict[str, list[np.ndarray]], info: dict[str, Any]) -> Path:
    """A cache of variable-length items: for each key its items concatenated plus `{key}_offsets` (item i is
    `tensor[offsets[i]:offsets[i + 1]]`) in OUT.safetensors, and `info` in OUT.json. The JSON is written first:
    a cache counts as written once its .safetensors exists."""
    out = Path(out).with_suffix(".safetensors")
    tensors = {}
    for key, items in arrays.items():
        lengths = np.array([len(a) for a in items], dtype=np.int64)
        tensors[key] = torch.from_numpy(np.concatenate(items))
        tensors[f"{key}_offsets"] = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), info)
    save_tensors(out, tensors)
    return out
