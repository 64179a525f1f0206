"""Weight-only quantized linear: quantization error, and the compiled CPU kernel against the
reference on the same codes."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.cpu_decode_attention import cpu_kernels_available
from sglc.kernels.weight_quant import (
    MAX_KERNEL_ROWS,
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
@pytest.mark.parametrize("rows", [1, 3, MAX_KERNEL_ROWS, MAX_KERNEL_ROWS + 5])
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-4), (torch.bfloat16, 0.1)])
def test_cpu_kernel_matches_the_reference(bits, rows, dtype, atol):
    gen = torch.Generator().manual_seed(rows)
    q = quantize_weight(torch.randn(70, 160, generator=gen), bits)  # K=160: groups of 32
    bias = torch.randn(70, generator=gen).to(dtype)
    x = torch.randn(2, rows, 160, generator=gen).to(dtype)
    # the kernel accumulates in float32 whatever x is (past MAX_KERNEL_ROWS a bfloat16 GEMM
    # runs): the float32 reference is the truth; outputs are about +-40
    want = quant_linear(x.float(), q, bias.float())
    got = cpu_quant_linear(x, q, bias)
    assert got.shape == (2, rows, 70) and got.dtype == dtype
    assert torch.allclose(got.float(), want, atol=atol, rtol=1e-2)
