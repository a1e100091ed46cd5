"""Where the shipped system lives, and the CPU threads it runs with: one answer for the CLI, the server and the
benches."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Batch-1 decoding of a small model gains little from a second thread, and on a shared machine loses up to 10x
# (measured: 16-20 s per benchmark answer with 2 threads beside another job, 1.7 s with 1).
DEFAULT_THREADS = 1


def system_dir() -> Path:
    """The shipped system: $AQAA_HOME when set, else this checkout's `models/`."""
    home = os.environ.get("AQAA_HOME")
    return Path(home) if home else Path(__file__).resolve().parents[2] / "models"


def system_threads(directory: str | Path | None = None) -> int:
    """The threads the system in `directory` (default: the shipped one) runs with: its config's `threads`, or
    `DEFAULT_THREADS` where it has no config or names none."""
    path = Path(directory or system_dir()) / "config.json"
    try:
        threads = json.loads(path.read_text()).get("threads", DEFAULT_THREADS)
    except (OSError, ValueError):
        return DEFAULT_THREADS
    return DEFAULT_THREADS if threads is None else int(threads)
