"""A small resumable training loop shared by the recipes: AdamW, warm-up + cosine schedule, gradient clipping,
JSONL metrics, tqdm progress, and safetensors checkpoints that a rerun resumes from."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from aqaa.checkpoint import load_optimizer_state, optimizer_state, save_tensors, write_json


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    max_frames: int = 12000  # padded mel frames per batch
    log_every: int = 10
    eval_every: int = 250
    checkpoint_every: int = 100
    seed: int = 0


def lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


Batch = dict[str, torch.Tensor]


def train(model: torch.nn.Module, loss_fn: Callable[[Batch], dict[str, torch.Tensor]],
          epoch_batches: Callable[[int], list[Any]], make_batch: Callable[[Any], Batch], config: TrainConfig,
          run_dir: str | Path, name: str, evaluate: Callable[[], dict[str, float]] | None = None) -> Path:
    """Train `model` for `config.steps` steps; state lives in `run_dir/name/`. A rerun resumes from the last
    checkpoint (same batches in the same order, so a resumed run matches an uninterrupted one's data)."""
    work = Path(run_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, epoch, index = 0, 0, 0
    if (work / "state.json").is_file():
        state = json.loads((work / "state.json").read_text())
        model.load_state_dict(load_file(str(work / "model.safetensors")))
        load_optimizer_state(opt, load_file(str(work / "optimizer.safetensors")), state["optimizer"])
        step, epoch, index = state["step"], state["epoch"], state["index"]
        torch.manual_seed(config.seed + step)
    if step >= config.steps:
        return work

    def save() -> None:
        tensors, meta = optimizer_state(opt)
        save_tensors(work / "model.safetensors", model.state_dict())
        save_tensors(work / "optimizer.safetensors", tensors)
        write_json(work / "state.json", {"step": step, "epoch": epoch, "index": index, "optimizer": meta})

    def batch_stream() -> Iterator[Any]:
        nonlocal epoch, index
        while True:
            plan = epoch_batches(epoch)
            while index < len(plan):
                index += 1
                yield plan[index - 1]
            epoch, index = epoch + 1, 0

    stream = batch_stream()
    model.train()
    bar = tqdm(total=config.steps, initial=step, desc=f"train {name}", unit="step")
    started = time.time()
    with open(work / "log.jsonl", "a") as log:
        while step < config.steps:
            for group in opt.param_groups:
                group["lr"] = config.lr * lr_factor(step, config)
            losses = loss_fn(make_batch(next(stream)))
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
            record: dict[str, Any] = {}
            if step % config.log_every == 0 or step == config.steps:
                record = {k: round(float(v.detach()), 5) for k, v in losses.items()}
                record.update(grad_norm=round(float(grad_norm), 4), lr=opt.param_groups[0]["lr"])
            if evaluate is not None and (step % config.eval_every == 0 or step == config.steps):
                model.eval()
                with torch.no_grad():
                    record.update({f"val_{k}": round(v, 5) for k, v in evaluate().items()})
                model.train()
            if record:
                record.update(step=step, epoch=epoch, seconds=round(time.time() - started, 1))
                log.write(json.dumps(record) + "\n")
                log.flush()
            if step % config.checkpoint_every == 0 or step == config.steps:
                save()
    bar.close()
    model.eval()
    return work
