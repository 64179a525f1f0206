"""Weight-only group-wise quantized linear layers: ``y = x W^T (+ b)`` with W stored as codes.

W ``[N, K]`` is quantized row by row exactly as a KV slot row is (`kv_quant`: asymmetric
min/max groups of up to 64 values along K, float16 scale and zero per group, int4 packed
two codes a byte)::

    QuantizedWeight   codes  [N, K * bits / 8] uint8
                      scales [N, K / group_size] float16      W[n, k] = zero + scale * code
                      zeros  [N, K / group_size] float16      (group = k // group_size)

`quant_linear` is the reference (dequantize, then one matmul: the ground truth, and what
non-CPU devices run); `cpu_quant_linear` is the compiled kernel (`cpu_sources_weight_quant`):
one pass over the codes for the few rows of a decode step, and for more rows (prefill, large
batches) a float GEMM over cache-sized tiles of W dequantized on the fly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sglc.kernels.kv_quant import dequantize, group_size_for, quantize

WEIGHT_BITS = {"int8": 8, "int4": 4}

# Rows of x up to which the compiled kernel makes one pass over the codes per four rows;
# more rows go through its tiled float GEMM (the crossover measured by
# benchmarks/weight_quant.py --kernels).
GEMV_ROWS = 12


class QuantizedWeight(NamedTuple):
    codes: Tensor
    scales: Tensor
    zeros: Tensor
    bits: int
    group_size: int

    @property
    def out_features(self) -> int:
        return self.codes.shape[0]

    @property
    def in_features(self) -> int:
        return self.codes.shape[1] * 8 // self.bits

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scales, self.zeros))


def quantize_weight(weight: Tensor, bits: int) -> QuantizedWeight:
    """The quantized form of a float ``[N, K]`` weight (K must be even)."""
    group = group_size_for(weight.shape[1])
    codes, scales, zeros = quantize(weight.detach(), bits, group)
    return QuantizedWeight(codes.contiguous(), scales.contiguous(), zeros.contiguous(), bits,
                           group)


def dequantize_weight(weight: QuantizedWeight, dtype: torch.dtype) -> Tensor:
    """``[N, K]`` in `dtype`."""
    return dequantize(weight.codes, weight.scales, weight.zeros, weight.bits,
                      weight.group_size).to(dtype)


def quant_linear(x: Tensor, weight: QuantizedWeight, bias: Tensor | None = None) -> Tensor:
    """Reference: ``x [..., K] @ dequantize(W)^T + bias`` in x's dtype."""
    return torch.nn.functional.linear(x, dequantize_weight(weight, x.dtype), bias)


def cpu_quant_linear(x: Tensor, weight: QuantizedWeight, bias: Tensor | None = None) -> Tensor:
    """Same contract as `quant_linear`, for CPU tensors (computed in float32)."""
    from sglc.kernels.cpu_build import extension

    rows = x.reshape(-1, x.shape[-1])
    out = extension().weight_quant_linear(rows.float().contiguous(), weight.codes, weight.scales,
                                          weight.zeros, weight.bits, weight.group_size,
                                          GEMV_ROWS)
    if bias is not None:
        out += bias
    return out.to(x.dtype).view(*x.shape[:-1], weight.out_features)
