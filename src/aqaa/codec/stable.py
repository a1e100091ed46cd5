"""Matrix products whose result for a row does not depend on how many rows are computed with it.

Streaming must give exactly the offline codes, so a frame's features must come out bit for bit the same whether
the frame is encoded alone or inside a long signal. On this CPU, BLAS picks other kernels for very few rows and
their rounding differs; from MIN_ROWS rows on, each row's result is the same for any row count (the codec tests
check this). So every product pads its input to at least MIN_ROWS rows.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

MIN_ROWS = 16


def stable_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias) over x [..., K], computed with at least MIN_ROWS rows."""
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    if n < MIN_ROWS:
        rows = torch.cat([rows, rows.new_zeros(MIN_ROWS - n, rows.shape[1])])
    return F.linear(rows, weight, bias)[:n].reshape(*x.shape[:-1], weight.shape[0])


def nearest(x: torch.Tensor, codebook: torch.Tensor, sq_norms: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest codebook row (Euclidean) for each row of x [..., D]; codebook is [K, D]."""
    if sq_norms is None:
        sq_norms = codebook.pow(2).sum(-1)
    # argmin |x - c|² = argmax 2 x·c - |c|²
    scores = stable_linear(x, codebook) * 2 - sq_norms
    return scores.argmax(-1)
