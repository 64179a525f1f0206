"""The compiled CPU RMSNorm, SiLU-and-mul and RoPE against the PyTorch reference ops."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.activation import silu_and_mul
from sglc.kernels.cpu_build import cpu_kernels_available
from sglc.kernels.cpu_elementwise import cpu_apply_rope, cpu_rms_norm, cpu_silu_and_mul
from sglc.kernels.rmsnorm import rms_norm
from sglc.kernels.rope import apply_rope, build_rope_cache

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


@pytest.mark.parametrize(("dtype", "tol"), CASES)
@pytest.mark.parametrize(("head_dim", "rotary"), [(16, 16), (32, 16), (64, 64)])
@pytest.mark.parametrize("is_neox", [True, False])
def test_rope_matches_reference(dtype, tol, head_dim, rotary, is_neox):
    gen = torch.Generator().manual_seed(head_dim + rotary)
    cache = build_rope_cache(rotary, 300, 10000.0, dtype=dtype)  # bf16 models keep it in bf16
    positions = torch.tensor([0, 5, 299, 17, 17, 1])
    q = torch.randn(6, 4, head_dim, generator=gen).to(dtype)
    k = torch.randn(6, 2, head_dim, generator=gen).to(dtype)
    got = cpu_apply_rope(q, k, positions, cache, is_neox=is_neox)
    ref = apply_rope(q, k, positions, cache, is_neox=is_neox)
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype and g.shape == r.shape
        torch.testing.assert_close(g, r, atol=tol, rtol=tol)
    with pytest.raises(ValueError, match="positions"):
        cpu_apply_rope(q, k, positions[:3], cache)
