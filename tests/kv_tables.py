"""A req_to_token table for kernel tests: each request's slots scattered over the pool."""

from __future__ import annotations

import torch


def scattered_table(seq_lens: list[int], num_slots: int,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(table, rows): requests on random rows of a table one row and two columns larger than
    needed, their positions on a random permutation of the pool's slots."""
    perm = torch.randperm(num_slots, generator=gen)
    table = torch.zeros(len(seq_lens) + 1, max(seq_lens) + 2, dtype=torch.int64)
    rows = torch.randperm(len(seq_lens) + 1, generator=gen)[: len(seq_lens)]
    used = 0
    for row, n in zip(rows.tolist(), seq_lens, strict=True):
        table[row, :n] = perm[used : used + n]
        used += n
    return table, rows
