"""C++ kernels built on first use by torch's extension loader, shared by the LM's decode step and the vocoder's
stream blocks.

Each kernel is one source file under a `csrc/` folder, compiled once per machine (about a minute; needs a C++
compiler and Python's headers) and loaded from torch's extension cache afterwards. Callers fall back to their
Python path when a kernel cannot be built, so nothing requires a compiler.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

KERNELS = ("auto", "cpp", "python")  # how a caller may ask: C++ where it builds, C++ or an error, Python only
FLAGS = ["-O3", "-fopenmp-simd"]


@functools.cache
def load_extension(name: str, source: Path, purpose: str) -> tuple[Any, str]:
    """(the compiled module, "") or (None, why not); tried once per process."""
    from torch.utils.cpp_extension import load

    print(f"aqaa: loading the C++ {purpose} (compiled on first use: about a minute)", file=sys.stderr, flush=True)
    try:
        return load(name, [str(source)], extra_cflags=FLAGS), ""
    except Exception as error:  # no compiler, no headers, a failed build: all mean "no C++ kernel here"
        return None, f"{type(error).__name__}: {error}"


def check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
