"""Lloyd's k-means on CPU tensors (k-means++ seeding), for the linguistic codebook."""

from __future__ import annotations

import torch
from tqdm import tqdm

from aqaa.codec.stable import nearest


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0, progress: bool = False) -> torch.Tensor:
    """Centroids [k, D] of the rows of x [N, D]; empty clusters are re-seeded from the worst-fit points."""
    if x.shape[0] < k:
        raise ValueError(f"k-means needs at least k={k} points, got {x.shape[0]}")
    gen = torch.Generator().manual_seed(seed)
    x = x.float()
    centroids = _plus_plus(x, k, gen)
    steps = tqdm(range(iters), desc="k-means", unit="iter", disable=not progress)
    for _ in steps:
        assign = _assign(x, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # move each empty centroid onto a point far from its current centroid
            err = (x - centroids[assign]).pow(2).sum(-1)
            centroids[empty] = x[err.topk(int(empty.sum())).indices]
        steps.set_postfix(empty=int(empty.sum()))
    return centroids


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    norms = centroids.pow(2).sum(-1)
    return torch.cat([nearest(x[i:i + chunk], centroids, norms) for i in range(0, x.shape[0], chunk)])


def _plus_plus(x: torch.Tensor, k: int, gen: torch.Generator, sample: int = 20_000) -> torch.Tensor:
    """k-means++ seeding over a random subset (exact seeding is O(N k) per centre)."""
    pool = x[torch.randperm(x.shape[0], generator=gen)[:sample]]
    chosen = [int(torch.randint(pool.shape[0], (1,), generator=gen))]
    dist = (pool - pool[chosen[0]]).pow(2).sum(-1)
    for _ in range(1, k):
        i = int(torch.multinomial(dist.clamp(min=0) + 1e-12, 1, generator=gen))
        chosen.append(i)
        dist = torch.minimum(dist, (pool - pool[i]).pow(2).sum(-1))
    return pool[chosen].clone()
