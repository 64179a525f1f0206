"""RMSNorm (with the residual add), SiLU-and-mul and RoPE as compiled CPU kernels, one pass
each.

The PyTorch references (`rmsnorm.py`, `activation.py`, `rope.py`) make four to ten passes
over the activations (square, mean, rsqrt, scale, cast; chunk, silu, multiply; gather,
chunk, four products, concatenate). These do one pass per row, parallel over rows with
ATen's thread pool, rounding where the references round (the residual sum and the normalised
values in the input dtype), so they agree with them to float32 rounding. The C++ is
`cpu_sources.ELEMENTWISE`, built with the decode-attention kernel into one extension
(`cpu_build`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sglc.kernels.cpu_build import extension


def cpu_rms_norm(
    x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """Same contract as `rmsnorm.rms_norm`, for CPU tensors (weight in any float dtype: the
    weight multiply runs in float32 and rounds once, as the reference's type promotion does
    for a float32 weight)."""
    _check(x)
    if residual is not None and (residual.shape != x.shape or residual.dtype != x.dtype):
        raise ValueError(f"residual {tuple(residual.shape)} {residual.dtype} does not match "
                         f"x {tuple(x.shape)} {x.dtype}")
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"weight {tuple(weight.shape)} does not match width {x.shape[-1]}")
    parts = extension().rms_norm(x.contiguous(), weight.float().contiguous(), float(eps),
                                 None if residual is None else residual.contiguous())
    return parts[0] if residual is None else (parts[0], parts[1])


def cpu_silu_and_mul(x: Tensor) -> Tensor:
    """Same contract as `activation.silu_and_mul`, for CPU tensors."""
    _check(x)
    if x.shape[-1] % 2:
        raise ValueError(f"silu_and_mul needs an even last dimension, got {x.shape[-1]}")
    return extension().silu_and_mul(x.contiguous())


def cpu_apply_rope(
    q: Tensor, k: Tensor, positions: Tensor, cos_sin_cache: Tensor, *, is_neox: bool = True
) -> tuple[Tensor, Tensor]:
    """Same contract as `rope.apply_rope`, for CPU tensors."""
    for x in (q, k):
        _check(x)
        if x.dim() != 3 or x.shape[0] != positions.shape[0]:
            raise ValueError(f"expected [T, H, D] with T = {positions.shape[0]} positions, "
                             f"got {tuple(x.shape)}")
    rotary = cos_sin_cache.shape[-1]
    if rotary % 2 or rotary > q.shape[-1] or k.shape[-1] != q.shape[-1]:
        raise ValueError(f"rope cache width {rotary} does not fit head dims "
                         f"{q.shape[-1]} / {k.shape[-1]}")
    positions = positions.long().contiguous()
    if cos_sin_cache.dtype != torch.float32:  # the rows in use, in float32 (as the reference)
        cos_sin_cache = cos_sin_cache.index_select(0, positions).float()
        positions = torch.arange(positions.shape[0])
    q_out, k_out = extension().rope(q.contiguous(), k.contiguous(), positions,
                                    cos_sin_cache.contiguous(), bool(is_neox))
    return q_out, k_out


def _check(x: Tensor) -> None:
    if x.device.type != "cpu":
        raise ValueError("the CPU kernels need CPU tensors")
    if not torch.is_floating_point(x):
        raise ValueError(f"floating-point input expected, got {x.dtype}")
