"""Shared test helpers that belong to no one package."""

import os
import subprocess
import sys


def run_on_two_cpu_processes(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m torch.distributed.run ... ARGS` as two CPU processes (gloo; accelerate told to stay on the CPU)
    and return the finished run, failing with its stderr's tail if either process failed."""
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run
