"""aqaa's C++ kernels, built on first use by torch's extension loader: the LM's decode step and the vocoder's
stream kernels, as one extension.

Each part is one source file under its package's `csrc/` folder; `csrc/module.cpp` binds them all into one
module, compiled once per machine (about a minute, the sources side by side; needs a C++ compiler and Python's
headers) and loaded from torch's extension cache afterwards. Callers fall back to their Python path when it
cannot be built, so nothing requires a compiler.
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import Any

KERNELS = ("auto", "cpp", "python")  # how a caller may ask: C++ where it builds, C++ or an error, Python only
FLAGS = ["-O3", "-fopenmp-simd"]
_PACKAGE = Path(__file__).parent
SOURCES = [_PACKAGE / "csrc" / "module.cpp", _PACKAGE / "lm" / "csrc" / "decode_step.cpp",
           _PACKAGE / "vocoder" / "csrc" / "kernels.cpp"]


@functools.cache
def load_extension() -> tuple[Any, str]:
    """(the compiled module, "") or (None, why not); tried once per process."""
    from torch.utils.cpp_extension import load

    print("aqaa: loading the C++ kernels (built once per machine, about a minute)", file=sys.stderr, flush=True)
    try:
        return load("aqaa_kernels", [str(source) for source in SOURCES], extra_cflags=FLAGS), ""
    except Exception as error:  # no compiler, no headers, a failed build: all mean "no C++ kernels here"
        return None, f"{type(error).__name__}: {error}"


def check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")


def kernel_module(kernel: str, purpose: str, python_cost: str) -> Any:
    """The compiled module for `kernel` ("auto", "cpp" or "python"), or None for the Python path: "auto" warns
    (saying what `purpose` then costs: `python_cost`) and falls back where it does not build, "cpp" raises."""
    check_kernel(kernel)
    if kernel == "python":
        return None
    module, why = load_extension()
    if module is None:
        if kernel == "cpp":
            raise RuntimeError(f"cannot build the C++ {purpose}: {why}")
        warnings.warn(f"running without the C++ {purpose} ({python_cost}): {why}", stacklevel=4)
    return module
