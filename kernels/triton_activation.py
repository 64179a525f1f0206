"""Triton SiLU-and-mul; contract of :func:`sglc.kernels.activation.silu_and_mul`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

_BLOCK = 1024


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, width, BLOCK: tl.constexpr):
    """Program (row, column block): ``out[row, c] = silu(x[row, c]) * x[row, width + c]``."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < width
    in_row = x_ptr + row * 2 * width
    gate = tl.load(in_row + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(in_row + width + cols, mask=mask, other=0.0).to(tl.float32)
    out_ty = out_ptr.dtype.element_ty
    # NOTE: silu is rounded to the output dtype before the multiply, as the reference does.
    activated = (gate * tl.sigmoid(gate)).to(out_ty).to(tl.float32)
    tl.store(out_ptr + row * width + cols, (activated * up).to(out_ty), mask=mask)


def triton_silu_and_mul(x: Tensor) -> Tensor:
    """``x[..., 2*I]`` (gate || up) -> ``silu(gate) * up`` of shape ``[..., I]``, in ``x.dtype``."""
    width = x.shape[-1] // 2
    rows = x.reshape(-1, 2 * width).contiguous()
    out = torch.empty((rows.shape[0], width), dtype=x.dtype, device=x.device)
    if rows.shape[0] > 0 and width > 0:
        block = min(_BLOCK, triton.next_power_of_2(width))
        _silu_and_mul_kernel[(rows.shape[0], triton.cdiv(width, block))](
            rows, out, width, BLOCK=block
        )
    return out.view(*x.shape[:-1], width)
