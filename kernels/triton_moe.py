"""Triton fused MoE; contract of :func:`sglc.kernels.moe.fused_moe`.

Pipeline: ``moe_align`` (torch) sorts the (token, k) slots by expert into blocks of one
expert each; a grouped GEMM gathers each block's token rows and multiplies them by the
block's ``w13[e]``; ``triton_silu_and_mul`` applies the activation per slot; the same grouped
GEMM with ``w2[e]`` scales each row by its routing weight (float32, per slot); the combine
sums each token's K slots.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.moe import MoeAlignment, moe_align
from sglc.kernels.triton_activation import triton_silu_and_mul
from sglc.kernels.triton_common import dot_settings

_BLOCK_N = 32
_BLOCK_K = 32




@triton.jit
def _grouped_gemm_kernel(
    a_ptr,
    w_ptr,
    out_ptr,
    sorted_slots_ptr,
    block_experts_ptr,
    slot_weights_ptr,
    num_slots,
    out_size,
    in_size,
    slots_per_a_row,
    WEIGHTED: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``out[slot] = a[slot // slots_per_a_row] @ w[e]ᵀ`` (times the slot's weight if WEIGHTED).

    Program (block, column block); the block's rows are its sorted slots, all for expert e.
    """
    block = tl.program_id(0)
    expert = tl.load(block_experts_ptr + block).to(tl.int64)
    if expert >= 0:
        slots = tl.load(sorted_slots_ptr + block * BLOCK_M + tl.arange(0, BLOCK_M))
        is_slot = slots < num_slots
        a_rows = slots // slots_per_a_row
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        col_mask = cols < out_size
        w_base = w_ptr + expert * out_size * in_size
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, in_size, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            k_mask = ks < in_size
            a_tile = tl.load(
                a_ptr + a_rows[:, None] * in_size + ks[None, :],
                mask=is_slot[:, None] & k_mask[None, :],
                other=0.0,
            )
            w_tile = tl.load(
                w_base + cols[None, :] * in_size + ks[:, None],
                mask=col_mask[None, :] & k_mask[:, None],
                other=0.0,
            )
            if UPCAST:
                a_tile, w_tile = a_tile.to(tl.float32), w_tile.to(tl.float32)
            acc += tl.dot(a_tile, w_tile, input_precision=PRECISION)
        if WEIGHTED:
            weights = tl.load(slot_weights_ptr + slots, mask=is_slot, other=0.0)
            acc = acc * weights.to(tl.float32)[:, None]
        out_ptrs = out_ptr + slots[:, None] * out_size + cols[None, :]
        tl.store(
            out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=is_slot[:, None] & col_mask[None, :]
        )


def _grouped_gemm(
    a: Tensor,
    weights: Tensor,
    alignment: MoeAlignment,
    out: Tensor,
    slots_per_a_row: int,
    slot_weights: Tensor | None,
) -> None:
    """Fill ``out [num_slots, out_size]`` per slot; see ``_grouped_gemm_kernel``."""
    num_slots, out_size = out.shape
    num_blocks = alignment.block_experts.shape[0]
    block_size = alignment.sorted_slots.shape[0] // num_blocks
    upcast, precision = dot_settings(a.dtype)
    _grouped_gemm_kernel[(num_blocks, triton.cdiv(out_size, _BLOCK_N))](
        a,
        weights,
        out,
        alignment.sorted_slots,
        alignment.block_experts,
        slot_weights if slot_weights is not None else out,
        num_slots,
        out_size,
        weights.shape[2],
        slots_per_a_row,
        WEIGHTED=slot_weights is not None,
        UPCAST=upcast,
        PRECISION=precision,
        BLOCK_M=block_size,
        BLOCK_N=_BLOCK_N,
        BLOCK_K=_BLOCK_K,
    )


def triton_fused_moe(
    x: Tensor,
    w13: Tensor,
    w2: Tensor,
    topk_ids: Tensor,
    topk_weights: Tensor,
    *,
    block_size: int = 16,
) -> Tensor:
    """Same contract as the reference ``fused_moe``; ``block_size`` (>= 16, a power of 2) is
    the rows per grouped-GEMM block, i.e. the padding granularity of ``moe_align``."""
    num_tokens, top_k = topk_ids.shape
    num_slots = num_tokens * top_k
    if num_slots == 0:
        return torch.zeros_like(x)
    x, w13, w2 = x.contiguous(), w13.to(x.dtype).contiguous(), w2.to(x.dtype).contiguous()
    alignment = moe_align(topk_ids, w13.shape[0], block_size)
    gate_up = torch.empty(num_slots, w13.shape[1], dtype=x.dtype, device=x.device)
    _grouped_gemm(x, w13, alignment, gate_up, top_k, None)
    activated = triton_silu_and_mul(gate_up)
    slot_out = torch.empty(num_slots, w2.shape[1], dtype=torch.float32, device=x.device)
    _grouped_gemm(activated, w2, alignment, slot_out, 1, topk_weights.flatten().contiguous())
    return slot_out.view(num_tokens, top_k, -1).sum(dim=1).to(x.dtype)
