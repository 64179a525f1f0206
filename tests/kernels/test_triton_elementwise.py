"""Triton RMSNorm, RoPE and SiLU-and-mul against their PyTorch references (TRITON_INTERPRET=1)."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from sglc.kernels.activation import silu_and_mul  # noqa: E402
from sglc.kernels.rmsnorm import rms_norm  # noqa: E402
from sglc.kernels.rope import apply_rope, build_rope_cache  # noqa: E402
from sglc.kernels.triton_activation import triton_silu_and_mul  # noqa: E402
from sglc.kernels.triton_rmsnorm import triton_rms_norm  # noqa: E402
from sglc.kernels.triton_rope import triton_apply_rope  # noqa: E402

DTYPES = [torch.float32, torch.bfloat16]
DTYPE_IDS = ["fp32", "bf16"]
# The interpreter rounds float32 -> bfloat16 toward zero (GPUs round to nearest), so bf16
# results may differ from the reference by an ulp or two.
TOLERANCE = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2},
}
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


def randn(
    *shape: int,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(*shape, generator=gen)).to(device=device, dtype=dtype)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, **TOLERANCE[expected.dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 64), (5, 100), (2, 3, 96)])
def test_rms_norm_matches_reference(shape, dtype, device):
    x = randn(*shape, dtype=dtype, device=device)
    weight = 1 + 0.1 * randn(shape[-1], dtype=dtype, seed=1, device=device)
    assert_close(triton_rms_norm(x, weight, 1e-6), rms_norm(x, weight, 1e-6))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rms_norm_fused_residual_matches_reference(dtype, device):
    x = randn(7, 72, dtype=dtype, device=device)
    residual = randn(7, 72, dtype=dtype, seed=2, device=device)
    weight = 1 + 0.1 * randn(72, dtype=dtype, seed=1, device=device)
    out, summed = triton_rms_norm(x, weight, 1e-5, residual=residual)
    ref_out, ref_summed = rms_norm(x, weight, 1e-5, residual=residual)
    assert_close(summed, ref_summed)
    assert_close(out, ref_out)
    assert not torch.allclose(out.float(), triton_rms_norm(x, weight, 1e-5).float())


def test_rms_norm_float32_weight_on_bf16_input(device):
    x = randn(3, 40, dtype=torch.bfloat16, device=device)
    weight = 1 + 0.1 * randn(40, device=device)
    assert_close(triton_rms_norm(x, weight, 1e-6), rms_norm(x, weight, 1e-6))


def rope_inputs(num_tokens, num_q_heads, num_k_heads, head_dim, dtype, device, max_positions=300):
    q = randn(num_tokens, num_q_heads, head_dim, dtype=dtype, seed=3, device=device)
    k = randn(num_tokens, num_k_heads, head_dim, dtype=dtype, seed=4, device=device)
    gen = torch.Generator().manual_seed(5)
    positions = torch.randint(0, max_positions, (num_tokens,), generator=gen)
    return q, k, positions.to(device)


def assert_rope_matches(q, k, positions, cache, is_neox):
    got = triton_apply_rope(q, k, positions, cache, is_neox=is_neox)
    expected = apply_rope(q, k, positions, cache, is_neox=is_neox)
    for actual, ref in zip(got, expected, strict=True):
        assert_close(actual, ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
@pytest.mark.parametrize(
    "num_tokens, num_q_heads, num_k_heads, head_dim, rotary_dim",
    [(1, 1, 1, 2, 2), (5, 4, 2, 64, 64), (3, 3, 1, 48, 48), (4, 2, 2, 40, 24)],
    ids=["size1", "gqa", "non-pow2-heads", "partial-rotary"],
)
def test_rope_matches_reference(
    num_tokens, num_q_heads, num_k_heads, head_dim, rotary_dim, is_neox, dtype, device
):
    q, k, positions = rope_inputs(num_tokens, num_q_heads, num_k_heads, head_dim, dtype, device)
    cache = build_rope_cache(rotary_dim, 300, 10000.0, dtype=dtype, device=device)
    assert_rope_matches(q, k, positions, cache, is_neox)


@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rope_with_llama3_scaled_cache(is_neox, device):
    q, k, positions = rope_inputs(6, 4, 2, 32, torch.float32, device)
    cache = build_rope_cache(32, 300, 500000.0, scaling=LLAMA3, device=device)
    assert not torch.equal(cache, build_rope_cache(32, 300, 500000.0, device=device))
    assert_rope_matches(q, k, positions, cache, is_neox)


def test_rope_on_strided_qkv_slices(device):
    qkv = randn(5, 4 + 2 + 2, 32, seed=6, device=device)
    q, k = qkv[:, :4], qkv[:, 4:6]
    assert not q.is_contiguous()
    positions = torch.tensor([0, 1, 2, 299, 7], device=device)
    cache = build_rope_cache(32, 300, 10000.0, device=device)
    assert_rope_matches(q, k, positions, cache, True)


def test_rope_position_zero_is_identity(device):
    q, k, _ = rope_inputs(3, 2, 1, 16, torch.float32, device)
    positions = torch.zeros(3, dtype=torch.int64, device=device)
    q_out, k_out = triton_apply_rope(q, k, positions, build_rope_cache(16, 4, 1e4, device=device))
    assert torch.equal(q_out, q) and torch.equal(k_out, k)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(1, 2), (3, 2 * 100), (2, 3, 2 * 1500)])
def test_silu_and_mul_matches_reference(shape, dtype, device):
    x = randn(*shape, dtype=dtype, seed=7, device=device)
    assert_close(triton_silu_and_mul(x), silu_and_mul(x))


def test_silu_and_mul_empty_batch(device):
    assert triton_silu_and_mul(torch.empty(0, 8, device=device)).shape == (0, 4)
