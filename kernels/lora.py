"""Segmented LoRA reference (S-LoRA / Punica style): shrink and expand for mixed adapters.

A batch's tokens are grouped into segments of consecutive rows; each segment uses one adapter
(or none). Adapters of different ranks are stacked, padded to the largest rank::

    x [T, H]          seg_indptr = [0, 3, 5, 9]    seg_adapter = [2, -1, 0]
    t=0 ┌──────────┐
        │ segment 0│  adapter 2, rank 16:  y[0:3, :16] = x[0:3] @ A[2, :16]ᵀ
    t=3 ├──────────┤
        │ segment 1│  no adapter (-1):     y[3:5] = 0,  out[3:5] = base_out[3:5]
    t=5 ├──────────┤
        │ segment 2│  adapter 0, rank 8:   y[5:9, :8] = x[5:9] @ A[0, :8]ᵀ
    t=9 └──────────┘

    a_weights [num_adapters, max_rank, H]      rows r >= ranks[a] are padding, never read
    b_weights [num_adapters, H_out, max_rank]  columns r >= ranks[a] are padding, never read
    y         [T, max_rank] float32            columns r >= the row's rank are 0

``lora_expand`` then adds ``scalings[a] * y[:, :rank] @ B[a, :, :rank]ᵀ`` to ``base_out``.
``seg_indptr`` (int ``[S+1]``) starts at 0, is non-decreasing and ends at T; empty segments
are allowed. ``ranks`` (int ``[num_adapters]``) are each in ``[0, max_rank]``; rank 0 is an
adapter without weights for this projection (its rows are left as without an adapter).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

NO_ADAPTER = -1


def lora_shrink(
    x: Tensor, a_weights: Tensor, seg_indptr: Tensor, seg_adapter: Tensor, ranks: Tensor
) -> Tensor:
    """``y [T, max_rank]`` float32: each row of ``x [T, H]`` times its adapter's ``Aᵀ``."""
    y = torch.zeros(x.shape[0], a_weights.shape[1], dtype=torch.float32, device=x.device)
    for start, end, adapter, rank in _adapter_segments(seg_indptr, seg_adapter, ranks):
        y[start:end, :rank] = x[start:end].float() @ a_weights[adapter, :rank].float().T
    return y


def lora_expand(
    y: Tensor,
    b_weights: Tensor,
    seg_indptr: Tensor,
    seg_adapter: Tensor,
    ranks: Tensor,
    scalings: Tensor,
    base_out: Tensor,
) -> Tensor:
    """``base_out + scaling * y[:, :rank] @ Bᵀ`` per segment, a new tensor in ``base_out.dtype``.

    ``y`` is first rounded to ``b_weights.dtype`` (the kernels feed the product in the weights'
    dtype); the product, scaling and sum run in float32. Rows of segments without an adapter
    equal ``base_out``.
    """
    out = base_out.float()
    out = out.clone() if out is base_out else out
    for start, end, adapter, rank in _adapter_segments(seg_indptr, seg_adapter, ranks):
        y_rows = y[start:end, :rank].to(b_weights.dtype).float()
        delta = y_rows @ b_weights[adapter, :, :rank].float().T
        out[start:end] += scalings[adapter].float() * delta
    return out.to(base_out.dtype)


def _adapter_segments(
    seg_indptr: Tensor, seg_adapter: Tensor, ranks: Tensor
) -> Iterator[tuple[int, int, int, int]]:
    """(start, end, adapter, rank) of each non-empty segment that has an adapter."""
    bounds, adapters, rank_list = seg_indptr.tolist(), seg_adapter.tolist(), ranks.tolist()
    for segment, adapter in enumerate(adapters):
        start, end = bounds[segment], bounds[segment + 1]
        if adapter != NO_ADAPTER and end > start and rank_list[adapter] > 0:
            yield start, end, adapter, rank_list[adapter]
