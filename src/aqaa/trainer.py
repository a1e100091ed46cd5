"""A small resumable training loop shared by the recipes: AdamW, warm-up + cosine schedule, gradient clipping and
accumulation, JSONL metrics, tqdm progress, and safetensors checkpoints that a rerun resumes from.

With an `accelerate.Accelerator` the same loop runs on one CPU or on many GPUs (`accelerate launch`): the model
and optimizer are prepared by it, only the main process writes, and each process feeds its own share of the
batches (the caller's `epoch_batches` decides the share)."""

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
    grad_accum: int = 1  # batches whose gradients add up to one optimizer step
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


def batch_to(batch: Batch, device: torch.device | None) -> Batch:
    """`batch` with every tensor on `device` (as it is where `device` is None)."""
    return {k: v.to(device) for k, v in batch.items()} if device is not None else batch


def trained_weights(run_dir: str | Path, name: str) -> Path:
    """Where `train(..., run_dir, name)` keeps the model's latest weights."""
    return Path(run_dir) / name / "model.safetensors"


def train(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Batch], dict[str, torch.Tensor]],
          epoch_batches: Callable[[int], list[Any]], make_batch: Callable[[Any], Batch], config: TrainConfig,
          run_dir: str | Path, name: str, evaluate: Callable[[], dict[str, float]] | None = None,
          param_groups: list[dict[str, Any]] | None = None, accelerator: Any = None) -> Path:
    """Train `model` for `config.steps` optimizer steps of `config.grad_accum` batches each; state lives in
    `run_dir/name/`. A rerun resumes from the last checkpoint (same batches in the same order, so a resumed run
    matches an uninterrupted one's data). `param_groups` (AdamW groups; an `lr_scale` entry scales a group's
    learning rate) default to all parameters at `config.lr`. `loss_fn(model, batch)` is handed the model the
    trainer runs: with an `accelerator`, its distributed wrapper, whose forward is what makes the backward pass
    average gradients across processes (a loss that called the bare model would train each process alone).
    `evaluate` runs on the main process only; it must not need the other processes."""
    work = Path(run_dir) / name
    main_process = accelerator is None or accelerator.is_main_process
    if main_process:
        work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    groups = param_groups or [{"params": list(model.parameters())}]
    for group in groups:
        group.setdefault("lr_scale", 1.0)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    step, epoch, index = 0, 0, 0
    if (work / "state.json").is_file():
        state = json.loads((work / "state.json").read_text())
        model.load_state_dict(load_file(str(trained_weights(run_dir, name))))
        load_optimizer_state(opt, load_file(str(work / "optimizer.safetensors")), state["optimizer"])
        step, epoch, index = state["step"], state["epoch"], state["index"]
        torch.manual_seed(config.seed + step)
    if step >= config.steps:
        return work
    trained = model
    if accelerator is not None:
        model, opt = accelerator.prepare(model, opt)

    def save() -> None:
        if not main_process:
            return
        tensors, meta = optimizer_state(opt)
        save_tensors(trained_weights(run_dir, name), trained.state_dict())
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
    bar = tqdm(total=config.steps, initial=step, desc=f"train {name}", unit="step", disable=not main_process)
    started = time.time()
    clip = torch.nn.utils.clip_grad_norm_ if accelerator is None else accelerator.clip_grad_norm_
    with open(work / "log.jsonl", "a") if main_process else open("/dev/null", "w") as log:
        while step < config.steps:
            for group in opt.param_groups:
                group["lr"] = config.lr * group["lr_scale"] * lr_factor(step, config)
            opt.zero_grad(set_to_none=True)
            sums: dict[str, torch.Tensor] = {}
            for _ in range(config.grad_accum):
                losses = loss_fn(model, make_batch(next(stream)))
                scaled = losses["loss"] / config.grad_accum
                scaled.backward() if accelerator is None else accelerator.backward(scaled)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.detach() / config.grad_accum
            losses = sums
            grad_norm = clip(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
            record: dict[str, Any] = {}
            if step % config.log_every == 0 or step == config.steps:
                record = {k: round(float(v.detach()), 5) for k, v in losses.items()}
                record.update(grad_norm=round(float(grad_norm), 4), lr=config.lr * lr_factor(step - 1, config))
            # Only the main process evaluates (the others wait at the next step's gradient sync): its figures
            # are the ones logged, and every process computing the same ones is wasted time.
            if evaluate is not None and main_process and (step % config.eval_every == 0 or step == config.steps):
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
