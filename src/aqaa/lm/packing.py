"""Batching training sequences, two ways:

- packing: several sequences share one row of `row_len` tokens, each attending only to itself (a block-diagonal
  causal mask) with positions restarting at 0, so a packed row computes exactly what the sequences would compute
  alone, with almost no padding;
- bucketing: one sequence per row, rows of similar length batched together and right-padded. No mask is needed
  (causal attention never looks right), so attention runs its fast causal path over each sequence's own length.
Which is faster depends on the hardware (a dense mask costs attention time); the recipe's `batch.packing` picks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from aqaa.lm.tasks import TrainingSequence

IGNORE = -100  # label of positions outside the loss (the convention of torch's cross_entropy and HF)


def pack(lengths: Sequence[int], row_len: int, seed: int = 0, open_rows: int = 16) -> tuple[list[list[int]], int]:
    """Group sequence indices into rows of at most `row_len` tokens: a shuffled first-fit over the `open_rows`
    most recent rows. Returns (rows, number of sequences dropped for being longer than a row)."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    rows: list[list[int]] = []
    room: list[int] = []
    dropped = 0
    for i in order:
        n = lengths[i]
        if n > row_len:
            dropped += 1
            continue
        first = max(0, len(rows) - open_rows)
        for r in range(first, len(rows)):
            if room[r] >= n:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(row_len - n)
    return rows, dropped


def bucket(lengths: Sequence[int], max_tokens: int, seed: int = 0, window: int = 512) -> tuple[list[list[int]], int]:
    """Group sequence indices into batches of at most `max_tokens` padded tokens: shuffled, then sorted by length
    within windows of `window` sequences so neighbours have similar lengths; the batch order is shuffled too.
    Returns (batches, number of sequences dropped for being longer than `max_tokens`)."""
    rng = random.Random(seed)
    order = [i for i in range(len(lengths)) if lengths[i] <= max_tokens]
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        batch: list[int] = []
        for i in sorted(order[start:start + window], key=lambda i: lengths[i]):
            if batch and (len(batch) + 1) * lengths[i] > max_tokens:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches, len(lengths) - len(order)


def collate_packed(sequences: Sequence[Sequence[TrainingSequence]], row_len: int | None,
                   pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of sequences → input_ids, labels, position_ids [B, L] and, when a row holds several sequences, a
    bool attention mask [B, 1, L, L] (True: may attend). Padding fills each row's end; it is its own block and
    carries no loss. `row_len` None: rows are as long as the longest."""
    lengths = [sum(len(seq.ids) for seq in row) for row in sequences]
    row_len = max(lengths) if row_len is None else row_len
    b = len(sequences)
    ids = torch.full((b, row_len), pad_id, dtype=torch.long)
    labels = torch.full((b, row_len), IGNORE, dtype=torch.long)
    positions = torch.zeros((b, row_len), dtype=torch.long)
    block = torch.full((b, row_len), -1, dtype=torch.long)
    for r, row in enumerate(sequences):
        at = 0
        for k, seq in enumerate(row):
            n = len(seq.ids)
            ids[r, at:at + n] = seq.ids
            labels[r, at:at + n] = seq.ids.masked_fill(~seq.loss_mask, IGNORE)
            positions[r, at:at + n] = torch.arange(n)
            block[r, at:at + n] = k
            at += n
        if at > row_len:
            raise ValueError(f"row {r} holds {at} tokens, more than row_len={row_len}")
        positions[r, at:] = torch.arange(row_len - at)
    batch = {"input_ids": ids, "labels": labels, "position_ids": positions}
    if any(len(row) > 1 for row in sequences):
        same = block[:, :, None] == block[:, None, :]  # [B, L, L]
        causal = torch.ones(row_len, row_len, dtype=torch.bool).tril()
        batch["attention_mask"] = (same & causal)[:, None]
    return batch
