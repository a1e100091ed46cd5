"""Running a recipe's stages in order, skipping the finished ones: what every training recipe's `main` does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch


def run_stages(config: Any, runners: dict[str, Callable[[Any], None]], done: Callable[[Any, str], bool],
               stages: list[str] | None = None) -> None:
    """Run `stages` (default: every stage of `runners`, in order, skipping those `done` says are finished; named
    stages always run) with `config.threads` torch threads."""
    torch.set_num_threads(config.threads)
    unknown = sorted(set(stages or []) - set(runners))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; stages are {list(runners)}")
    for stage in stages or runners:
        if stages is None and done(config, stage):
            print(f"stage {stage}: already done")
            continue
        print(f"stage {stage}")
        runners[stage](config)


def up_to_date(out: Path, parts: Iterable[Path]) -> bool:
    """`out` exists and is not older than any existing part it is made of (a run that since trained further, or a
    new run exporting over an older output, must make it again)."""
    return out.is_file() and all(out.stat().st_mtime >= p.stat().st_mtime for p in parts if p.is_file())
