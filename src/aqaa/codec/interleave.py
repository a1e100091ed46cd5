"""The paper's audio token layout: groups of 2 linguistic + 3 semantic tokens (120 ms each).

groups = min(len(semantic) // 3, len(linguistic) // 2); the tail that does not fill a group is dropped. A
single-stream layout (the LM ablation) is the same with one count set to 0.
"""

from __future__ import annotations

import torch

from aqaa.vocab import AudioVocab


def group_count(n_linguistic: int, n_semantic: int, per_group: tuple[int, int] = (2, 3)) -> int:
    counts = [n // k for n, k in zip((n_linguistic, n_semantic), per_group, strict=True) if k > 0]
    if not counts:
        raise ValueError("a group needs at least one linguistic or semantic token")
    return min(counts)


def interleave(linguistic: torch.Tensor, semantic: torch.Tensor, vocab: AudioVocab,
               per_group: tuple[int, int] = (2, 3)) -> torch.Tensor:
    """Codes [T_l], [T_s] → ids [groups * (n_l + n_s)]: n_l linguistic then n_s semantic ids per group."""
    n_l, n_s = per_group
    g = group_count(len(linguistic), len(semantic), per_group)
    parts = []
    if n_l:
        parts.append(vocab.linguistic_ids(linguistic[: g * n_l].reshape(g, n_l)))
    if n_s:
        parts.append(vocab.semantic_ids(semantic[: g * n_s].reshape(g, n_s)))
    return torch.cat(parts, dim=1).reshape(-1)


def deinterleave(ids: torch.Tensor, vocab: AudioVocab,
                 per_group: tuple[int, int] = (2, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    """ids of whole groups → (linguistic codes, semantic codes); malformed input raises ValueError."""
    n_l, n_s = per_group
    size = n_l + n_s
    if len(ids) % size:
        raise ValueError(f"{len(ids)} audio ids is not a whole number of {size}-token groups")
    groups = ids.reshape(-1, size)
    ling, sem = groups[:, :n_l].reshape(-1), groups[:, n_l:].reshape(-1)
    if not bool(vocab.is_linguistic(ling).all()) or not bool(vocab.is_semantic(sem).all()):
        raise ValueError(f"audio ids do not follow the {n_l} linguistic + {n_s} semantic group pattern")
    return ling - vocab.linguistic_offset, sem - vocab.semantic_offset


class GroupStream:
    """Collects codes as they stream in and releases the ids of each group as soon as it is complete."""

    def __init__(self, vocab: AudioVocab, per_group: tuple[int, int] = (2, 3)) -> None:
        self.vocab, self.per_group = vocab, per_group
        self.linguistic = torch.zeros(0, dtype=torch.long)
        self.semantic = torch.zeros(0, dtype=torch.long)

    def push(self, linguistic: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        self.linguistic = torch.cat([self.linguistic, linguistic])
        self.semantic = torch.cat([self.semantic, semantic])
        g = group_count(len(self.linguistic), len(self.semantic), self.per_group)
        ids = interleave(self.linguistic, self.semantic, self.vocab, self.per_group)
        self.linguistic = self.linguistic[g * self.per_group[0]:]
        self.semantic = self.semantic[g * self.per_group[1]:]
        return ids
