"""Fused mixture-of-experts reference (Mixtral / Qwen-MoE) and the sort of tokens by expert.

Each token t is routed to K experts ``topk_ids[t]`` with weights ``topk_weights[t]``; expert
e is a gated MLP with ``w13[e]`` (gate || up, ``[2I, H]``) and ``w2[e]`` (``[H, I]``)::

    out[t] = sum_k topk_weights[t, k] * w2[e] @ silu_and_mul(w13[e] @ x[t]),  e = topk_ids[t, k]

Rounding points (shared with the Triton version): the first product is rounded to
``x.dtype``, the activation is :func:`silu_and_mul` in ``x.dtype``, the second product, the
weighting and the sum over k run in float32, and the result is cast to ``x.dtype``.

:func:`moe_align` sorts the T*K (token, k) slots (slot s = t*K + k) by expert, so a grouped
GEMM can run one block of ``block_size`` rows at a time with a single expert per block::

    topk_ids = [[1, 0], [1, 3]]  (T=2, K=2)   slots 0..3,  block_size = 4,  N = T*K = 4
    sorted_slots   [ 1  N  N  N | 0  2  N  N | 3  N  N  N | N ... ]   (N marks padding)
    block_experts  [ 0          | 1          | 3          | -1 ... ]  (-1: unused block)
    expert_offsets [0, 4, 8, 8, 12]   expert 2 has no slots, so no block

The output length is a bound known without a host sync, ``N + min(E, N) * (block_size - 1)``
rounded up to a block; blocks past the last expert's run are unused.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sglc.kernels.activation import silu_and_mul


class MoeAlignment(NamedTuple):
    """Slots sorted by expert, each expert's run padded to a whole number of blocks.

    sorted_slots    int64 [num_blocks * block_size]  slot ids; T*K marks padding
    block_experts   int32 [num_blocks]               expert of each block; -1 past the end
    expert_offsets  int64 [E + 1]                    start of each expert's padded run
    """

    sorted_slots: Tensor
    block_experts: Tensor
    expert_offsets: Tensor


def fused_moe(x: Tensor, w13: Tensor, w2: Tensor, topk_ids: Tensor, topk_weights: Tensor) -> Tensor:
    """Routed expert MLPs: ``x [T, H]`` -> ``[T, H]`` in ``x.dtype``; see the module docstring."""
    num_tokens, top_k = topk_ids.shape
    flat_ids = topk_ids.flatten()
    flat_weights = topk_weights.flatten().float()
    out = torch.zeros(num_tokens, x.shape[1], dtype=torch.float32, device=x.device)
    for expert in flat_ids.unique().tolist():
        slots = (flat_ids == expert).nonzero()[:, 0]
        tokens = slots // top_k
        hidden = expert_mlp(x[tokens], w13[expert], w2[expert])
        out.index_add_(0, tokens, hidden * flat_weights[slots, None])
    return out.to(x.dtype)


def expert_mlp(x: Tensor, w13: Tensor, w2: Tensor) -> Tensor:
    """One expert's gated MLP on rows ``x [n, H]``: float32 ``[n, H]`` (unweighted)."""
    gate_up = (x.float() @ w13.float().T).to(x.dtype)
    return silu_and_mul(gate_up).float() @ w2.float().T


def moe_align(topk_ids: Tensor, num_experts: int, block_size: int) -> MoeAlignment:
    """Sort the slots of ``topk_ids [T, K]`` by expert (stable), padding each run to blocks."""
    flat_ids = topk_ids.flatten().long()
    num_slots = flat_ids.numel()
    device = flat_ids.device
    counts = torch.bincount(flat_ids, minlength=num_experts)
    padded_counts = (counts + block_size - 1) // block_size * block_size
    expert_offsets = torch.zeros(num_experts + 1, dtype=torch.int64, device=device)
    expert_offsets[1:] = padded_counts.cumsum(0)

    order = torch.argsort(flat_ids, stable=True)
    sorted_ids = flat_ids[order]
    unpadded_starts = counts.cumsum(0) - counts
    rank_in_expert = torch.arange(num_slots, device=device) - unpadded_starts[sorted_ids]
    max_padded = num_slots + min(num_experts, num_slots) * (block_size - 1)
    num_blocks = -(-max_padded // block_size)
    sorted_slots = torch.full(
        (num_blocks * block_size,), num_slots, dtype=torch.int64, device=device
    )
    sorted_slots[expert_offsets[sorted_ids] + rank_in_expert] = order

    block_starts = torch.arange(num_blocks, device=device) * block_size
    block_experts = torch.searchsorted(expert_offsets[1:], block_starts, right=True)
    block_experts = torch.where(block_experts < num_experts, block_experts, -1)
    return MoeAlignment(sorted_slots, block_experts.to(torch.int32), expert_offsets)
