"""Triton RMSNorm with the fused residual add; contract of :func:`sglc.kernels.rmsnorm.rms_norm`."""

from __future__ import annotations

from typing import overload

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _rms_norm_kernel(
    x_ptr,
    residual_ptr,
    weight_ptr,
    out_ptr,
    summed_ptr,
    hidden_size,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program per row; the whole row sits in one block (hidden sizes are a few thousand)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < hidden_size
    offsets = row * hidden_size + cols
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(residual_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        # NOTE: the sum is rounded to the input dtype before the statistics, as the reference
        # adds in x.dtype; the rounded sum is also the next layer's residual.
        summed = (x + residual).to(summed_ptr.dtype.element_ty)
        tl.store(summed_ptr + offsets, summed, mask=mask)
        x = summed.to(tl.float32)
    mean_square = tl.sum(x * x, axis=0) / hidden_size
    normed = (x * tl.rsqrt(mean_square + eps)).to(out_ptr.dtype.element_ty).to(tl.float32)
    weight = tl.load(weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, (weight * normed).to(out_ptr.dtype.element_ty), mask=mask)


@overload
def triton_rms_norm(x: Tensor, weight: Tensor, eps: float, residual: None = None) -> Tensor: ...


@overload
def triton_rms_norm(
    x: Tensor, weight: Tensor, eps: float, residual: Tensor
) -> tuple[Tensor, Tensor]: ...


def triton_rms_norm(
    x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """``norm(x) * weight``, or ``(norm(x + residual) * weight, x + residual)``; new tensors.

    Same contract and rounding points as the reference ``rms_norm``: statistics in float32,
    the normalised values cast to ``x.dtype`` before the weight multiply, results in ``x.dtype``.
    """
    hidden_size = x.shape[-1]
    rows = x.reshape(-1, hidden_size).contiguous()
    out = torch.empty_like(rows)
    summed = torch.empty_like(rows) if residual is not None else out
    residual_rows = residual.reshape(-1, hidden_size).contiguous() if residual is not None else rows
    block = triton.next_power_of_2(hidden_size)
    if rows.shape[0] > 0:
        _rms_norm_kernel[(rows.shape[0],)](
            rows,
            residual_rows,
            weight.contiguous(),
            out,
            summed,
            hidden_size,
            eps,
            HAS_RESIDUAL=residual is not None,
            BLOCK=block,
            num_warps=min(16, max(1, block // 256)),
        )
    if residual is None:
        return out.view(x.shape)
    return out.view(x.shape), summed.view(x.shape)
