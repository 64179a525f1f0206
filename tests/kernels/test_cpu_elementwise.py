"""The compiled CPU RMSNorm and SiLU-and-mul against the PyTorch reference ops."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.activation import silu_and_mul
from sglc.kernels.cpu_build import cpu_kernels_available
from sglc.kernels.cpu_elementwise import cpu_rms_norm, cpu_silu_and_mul
from sglc.kernels.rmsnorm import rms_norm

pytestmark = pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain here")

CASES = [(torch.float32, 1e-5), (torch.bfloat16, 1.6e-2), (torch.float16, 2e-3)]


@pytest.mark.parametrize(("dtype", "tol"), CASES)
@pytest.mark.parametrize("shape", [(1, 8), (3, 64), (5, 7, 96), (300, 512)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_rms_norm_matches_reference(dtype, tol, shape, with_residual):
    gen = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(shape, generator=gen) * 3).to(dtype)
    weight = (torch.rand(shape[-1], generator=gen) + 0.5).to(dtype)
    residual = torch.randn(shape, generator=gen).to(dtype) if with_residual else None
    got = cpu_rms_norm(x, weight, 1e-6, residual)
    ref = rms_norm(x, weight, 1e-6, residual)
    if with_residual:
        torch.testing.assert_close(got[1], ref[1], atol=0, rtol=0)  # the sum, rounded alike
        got, ref = got[0], ref[0]
    assert got.dtype == ref.dtype and got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=tol, rtol=tol)


def test_rms_norm_float32_weight_with_bf16_activations():
    x = torch.randn(4, 32).to(torch.bfloat16)
    weight = torch.rand(32) + 0.5  # float32: the reference promotes, then rounds once
    torch.testing.assert_close(cpu_rms_norm(x, weight, 1e-5), rms_norm(x, weight, 1e-5),
                               atol=1.6e-2, rtol=1.6e-2)


@pytest.mark.parametrize(("dtype", "tol"), CASES)
@pytest.mark.parametrize("shape", [(1, 2), (4, 2 * 37), (2, 3, 2 * 64), (200, 2 * 1408)])
def test_silu_and_mul_matches_reference(dtype, tol, shape):
    gen = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(shape, generator=gen) * 4).to(dtype)
    got, ref = cpu_silu_and_mul(x), silu_and_mul(x)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=tol, rtol=tol)


def test_non_contiguous_inputs_and_bad_shapes():
    x = torch.randn(8, 64)[:, :32]  # a strided view
    torch.testing.assert_close(cpu_rms_norm(x, torch.ones(32), 1e-6),
                               rms_norm(x, torch.ones(32), 1e-6))
    torch.testing.assert_close(cpu_silu_and_mul(x), silu_and_mul(x))
    with pytest.raises(ValueError, match="even"):
        cpu_silu_and_mul(torch.randn(2, 5))
    with pytest.raises(ValueError, match="residual"):
        cpu_rms_norm(torch.randn(2, 8), torch.ones(8), 1e-6, torch.randn(3, 8))
    with pytest.raises(ValueError, match="weight"):
        cpu_rms_norm(torch.randn(2, 8), torch.ones(7), 1e-6)
