"""Weight-only quantized linear: quantization error, and the compiled CPU kernel against the
reference on the same codes."""

from __future__ import annotations

import math

import pytest
import torch

from sglc.kernels.cpu_decode_attention import cpu_kernels_available
from sglc.kernels.weight_quant import (
    GEMV_ROWS,
    cpu_quant_linear,
    dequantize_weight,
    quant_linear,
    quantize_weight,
)


@pytest.mark.parametrize(("bits", "rel"), [(8, 0.01), (4, 0.15)])
def test_quantized_matmul_is_close_to_the_float_one(bits, rel):
    gen = torch.Generator().manual_seed(bits)
    w = torch.randn(96, 192, generator=gen) * 0.05
    x = torch.randn(5, 192, generator=gen)
    q = quantize_weight(w, bits)
    assert q.in_features == 192 and q.out_features == 96 and q.group_size == 64
    assert q.nbytes < w.numel() * 4 * (bits / 32 + 0.05)
    want = x @ w.T
    got = quant_linear(x, q)
    assert (got - want).norm() / want.norm() < rel
    assert not torch.equal(dequantize_weight(q, torch.float32), w)  # it was quantized


@pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain")
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("rows", [1, 3, 4, 7, GEMV_ROWS, GEMV_ROWS + 5])
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-4), (torch.bfloat16, 0.1)])
def test_cpu_kernel_matches_the_reference(bits, rows, dtype, atol):
    gen = torch.Generator().manual_seed(rows)
    q = quantize_weight(torch.randn(70, 160, generator=gen), bits)  # K=160: groups of 32
    bias = torch.randn(70, generator=gen).to(dtype)
    x = torch.randn(2, rows, 160, generator=gen).to(dtype)
    # the kernel computes in float32 whatever x is: the float32 reference is the truth;
    # outputs are about +-40
    want = quant_linear(x.float(), q, bias.float())
    got = cpu_quant_linear(x, q, bias)
    assert got.shape == (2, rows, 70) and got.dtype == dtype
    slack = _int16_rounding_bound(x.float(), q)
    assert ((got.float() - want).abs() <= atol + 1e-2 * want.abs() + slack).all()


def _int16_rounding_bound(x: torch.Tensor, q) -> torch.Tensor:
    """How far the GEMV path may be from the float reference because it multiplies x on an
    int16 grid per group of W (a step of the group's largest |x| / 32767): half a step per
    value times |W|, summed. The float GEMM path is well inside it."""
    w = dequantize_weight(q, torch.float32).abs()
    groups = x.reshape(*x.shape[:-1], -1, q.group_size)
    half_step = groups.abs().amax(-1) / 32767 / 2  # [..., groups]
    w_groups = w.reshape(w.shape[0], -1, q.group_size).sum(-1)  # [N, groups]
    return half_step @ w_groups.T


@pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain")
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("rows", [1, 5, GEMV_ROWS + 1])
# K=2048: groups of 64 and more rows of W than one tile of the GEMM path; K=72: groups of 8
# (the portable loop); K=48: groups of 16
@pytest.mark.parametrize(("n", "k"), [(70, 2048), (33, 72), (19, 48)])
def test_cpu_kernel_shapes(bits, rows, n, k):
    gen = torch.Generator().manual_seed(n + rows)
    q = quantize_weight(torch.randn(n, k, generator=gen), bits)
    assert q.group_size == math.gcd(k, 64)
    x = torch.randn(rows, k, generator=gen)
    want = quant_linear(x, q)
    got = cpu_quant_linear(x, q)
    tolerance = 1e-4 * want.abs().max().item() + _int16_rounding_bound(x, q)
    assert ((got - want).abs() <= tolerance).all()
