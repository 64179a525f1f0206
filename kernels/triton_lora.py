"""Triton segmented LoRA shrink/expand; contracts and layout in :mod:`sglc.kernels.lora`.

Both kernels run one program per (segment, block of its rows, block of output columns);
programs past a segment's end, past its adapter's rank, or on a segment without an adapter
exit at once, so the grid needs no host sync to size it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.triton_common import dot_settings

_BLOCK_T = 16
_BLOCK_R = 16
_BLOCK_K = 32
_BLOCK_OUT = 32




@triton.jit
def _shrink_kernel(
    x_ptr,
    a_ptr,
    y_ptr,
    seg_indptr_ptr,
    seg_adapter_ptr,
    ranks_ptr,
    hidden_size,
    max_rank,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``y[rows, r] = x[rows] @ A[adapter, r]ᵀ`` for one (segment, row block, rank block)."""
    segment = tl.program_id(0)
    end = tl.load(seg_indptr_ptr + segment + 1)
    first_row = tl.load(seg_indptr_ptr + segment) + tl.program_id(1) * BLOCK_T
    rows = first_row + tl.arange(0, BLOCK_T)
    adapter = tl.load(seg_adapter_ptr + segment).to(tl.int64)
    rank = tl.load(ranks_ptr + tl.maximum(adapter, 0))
    first_col = tl.program_id(2) * BLOCK_R
    cols = first_col + tl.arange(0, BLOCK_R)
    if (adapter >= 0) & (first_row < end) & (first_col < rank):
        row_mask, col_mask = rows < end, cols < rank
        a_base = a_ptr + adapter * max_rank * hidden_size
        acc = tl.zeros((BLOCK_T, BLOCK_R), dtype=tl.float32)
        for k0 in range(0, hidden_size, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            k_mask = ks < hidden_size
            x_tile = tl.load(
                x_ptr + rows[:, None].to(tl.int64) * hidden_size + ks[None, :],
                mask=row_mask[:, None] & k_mask[None, :],
                other=0.0,
            )
            a_tile = tl.load(
                a_base + cols[None, :] * hidden_size + ks[:, None],
                mask=col_mask[None, :] & k_mask[:, None],
                other=0.0,
            )
            if UPCAST:
                x_tile, a_tile = x_tile.to(tl.float32), a_tile.to(tl.float32)
            acc += tl.dot(x_tile, a_tile, input_precision=PRECISION)
        y_ptrs = y_ptr + rows[:, None].to(tl.int64) * max_rank + cols[None, :]
        tl.store(y_ptrs, acc, mask=row_mask[:, None] & col_mask[None, :])


@triton.jit
def _expand_kernel(
    y_ptr,
    b_ptr,
    out_ptr,
    seg_indptr_ptr,
    seg_adapter_ptr,
    ranks_ptr,
    scalings_ptr,
    out_size,
    max_rank,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_OUT: tl.constexpr,
):
    """``out[rows, o] += scaling * y[rows, :rank] @ B[adapter, o, :rank]ᵀ``, in place."""
    segment = tl.program_id(0)
    end = tl.load(seg_indptr_ptr + segment + 1)
    first_row = tl.load(seg_indptr_ptr + segment) + tl.program_id(1) * BLOCK_T
    rows = first_row + tl.arange(0, BLOCK_T)
    adapter = tl.load(seg_adapter_ptr + segment).to(tl.int64)
    if (adapter >= 0) & (first_row < end):
        rank = tl.load(ranks_ptr + adapter)
        outs = tl.program_id(2) * BLOCK_OUT + tl.arange(0, BLOCK_OUT)
        row_mask, out_mask = rows < end, outs < out_size
        b_base = b_ptr + adapter * out_size * max_rank
        acc = tl.zeros((BLOCK_T, BLOCK_OUT), dtype=tl.float32)
        for r0 in range(0, rank, BLOCK_R):
            rs = r0 + tl.arange(0, BLOCK_R)
            r_mask = rs < rank
            y_tile = tl.load(
                y_ptr + rows[:, None].to(tl.int64) * max_rank + rs[None, :],
                mask=row_mask[:, None] & r_mask[None, :],
                other=0.0,
            ).to(b_ptr.dtype.element_ty)
            b_tile = tl.load(
                b_base + outs[None, :] * max_rank + rs[:, None],
                mask=out_mask[None, :] & r_mask[:, None],
                other=0.0,
            )
            if UPCAST:
                y_tile, b_tile = y_tile.to(tl.float32), b_tile.to(tl.float32)
            acc += tl.dot(y_tile, b_tile, input_precision=PRECISION)
        scaling = tl.load(scalings_ptr + adapter).to(tl.float32)
        out_ptrs = out_ptr + rows[:, None].to(tl.int64) * out_size + outs[None, :]
        mask = row_mask[:, None] & out_mask[None, :]
        base = tl.load(out_ptrs, mask=mask, other=0.0).to(tl.float32)
        tl.store(out_ptrs, (base + scaling * acc).to(out_ptr.dtype.element_ty), mask=mask)


def triton_lora_shrink(
    x: Tensor, a_weights: Tensor, seg_indptr: Tensor, seg_adapter: Tensor, ranks: Tensor
) -> Tensor:
    """Same contract as the reference ``lora_shrink``: ``y [T, max_rank]`` float32."""
    num_tokens, hidden_size = x.shape
    max_rank = a_weights.shape[1]
    y = torch.zeros(num_tokens, max_rank, dtype=torch.float32, device=x.device)
    num_segments = seg_adapter.shape[0]
    if num_tokens == 0 or num_segments == 0:
        return y
    upcast, precision = dot_settings(x.dtype)
    grid = (num_segments, triton.cdiv(num_tokens, _BLOCK_T), triton.cdiv(max_rank, _BLOCK_R))
    _shrink_kernel[grid](
        x.contiguous(),
        a_weights.to(x.dtype).contiguous(),
        y,
        seg_indptr.contiguous(),
        seg_adapter.contiguous(),
        ranks.contiguous(),
        hidden_size,
        max_rank,
        UPCAST=upcast,
        PRECISION=precision,
        BLOCK_T=_BLOCK_T,
        BLOCK_R=_BLOCK_R,
        BLOCK_K=_BLOCK_K,
    )
    return y


def triton_lora_expand(
    y: Tensor,
    b_weights: Tensor,
    seg_indptr: Tensor,
    seg_adapter: Tensor,
    ranks: Tensor,
    scalings: Tensor,
    base_out: Tensor,
) -> Tensor:
    """Same contract as the reference ``lora_expand``: a new tensor in ``base_out.dtype``.

    ``y`` is cast to ``b_weights.dtype`` for the product (float32 accumulation).
    """
    num_tokens, out_size = base_out.shape
    out = base_out.clone(memory_format=torch.contiguous_format)
    num_segments = seg_adapter.shape[0]
    if num_tokens == 0 or num_segments == 0:
        return out
    upcast, precision = dot_settings(b_weights.dtype)
    grid = (num_segments, triton.cdiv(num_tokens, _BLOCK_T), triton.cdiv(out_size, _BLOCK_OUT))
    _expand_kernel[grid](
        y.contiguous(),
        b_weights.contiguous(),
        out,
        seg_indptr.contiguous(),
        seg_adapter.contiguous(),
        ranks.contiguous(),
        scalings.float().contiguous(),
        out_size,
        b_weights.shape[2],
        UPCAST=upcast,
        PRECISION=precision,
        BLOCK_T=_BLOCK_T,
        BLOCK_R=_BLOCK_R,
        BLOCK_OUT=_BLOCK_OUT,
    )
    return out
