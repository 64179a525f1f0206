"""triton_store_kv writes exactly what store_kv writes: the given slots, cast, nothing else."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.kv_store import store_kv
from sglc.kernels.triton_kv_store import triton_store_kv


def make_pool(num_slots: int, num_heads: int, head_dim: int, dtype: torch.dtype, device):
    """K and V pools filled with a sentinel, so that any stray write shows."""
    return (torch.full((num_slots, num_heads, head_dim), -7.0, dtype=dtype, device=device)
            for _ in range(2))  # fmt: skip


@pytest.mark.parametrize(
    ("pool_dtype", "num_heads", "head_dim"),
    [(torch.float32, 2, 64), (torch.bfloat16, 8, 128), (torch.bfloat16, 3, 48)],
    ids=["fp32-d64", "bf16-d128", "bf16-odd-shape"],
)
def test_matches_reference_on_scattered_slots(pool_dtype, num_heads, head_dim, device):
    gen = torch.Generator().manual_seed(0)
    num_slots, num_tokens = 40, 11
    loc = torch.randperm(num_slots, generator=gen)[:num_tokens].to(device)
    # float32 k/v sliced out of a fused qkv row: strided views, cast to the pool dtype
    width = num_heads * head_dim
    qkv = torch.randn(num_tokens, 3 * width, generator=gen).to(device)
    k = qkv[:, width : 2 * width].view(num_tokens, num_heads, head_dim)
    v = qkv[:, 2 * width :].view(num_tokens, num_heads, head_dim)
    k_buffer, v_buffer = make_pool(num_slots, num_heads, head_dim, pool_dtype, device)
    k_expected, v_expected = make_pool(num_slots, num_heads, head_dim, pool_dtype, device)
    triton_store_kv(k_buffer, v_buffer, loc, k, v)
    store_kv(k_expected, v_expected, loc, k, v)
    assert torch.equal(k_buffer, k_expected) and torch.equal(v_buffer, v_expected)


def test_int32_locations_and_same_dtype_copy(device):
    k_buffer, v_buffer = make_pool(16, 1, 16, torch.bfloat16, device)
    loc = torch.tensor([15, 0, 7], dtype=torch.int32, device=device)
    k = torch.randn(3, 1, 16, device=device).to(torch.bfloat16)
    triton_store_kv(k_buffer, v_buffer, loc, k, -k)
    assert torch.equal(k_buffer[loc.long()], k) and torch.equal(v_buffer[loc.long()], -k)
    assert (k_buffer[1:7] == -7).all()


def test_empty_write_is_a_no_op(device):
    k_buffer, v_buffer = make_pool(4, 2, 16, torch.float32, device)
    empty = torch.empty(0, 2, 16, device=device)
    triton_store_kv(
        k_buffer, v_buffer, torch.empty(0, dtype=torch.int64, device=device), empty, empty
    )
    assert (k_buffer == -7).all() and (v_buffer == -7).all()


def test_rejects_mismatched_shapes(device):
    k_buffer, v_buffer = make_pool(8, 2, 64, torch.float32, device)
    ones = torch.ones(3, 4, 64, device=device)
    with pytest.raises(ValueError, match="do not fit"):
        triton_store_kv(k_buffer, v_buffer, torch.arange(3, device=device), ones, ones)
    with pytest.raises(ValueError, match="do not fit"):
        triton_store_kv(
            k_buffer, v_buffer, torch.arange(2, device=device), ones[:, :2], ones[:, :2]
        )


def test_rejects_tensors_the_kernel_cannot_reach():
    """Meta tensors are neither CPU (interpreter) nor CUDA (compiled kernels)."""
    k_buffer, v_buffer = make_pool(8, 2, 16, torch.float32, "meta")
    k = torch.empty(3, 2, 16, device="meta")
    with pytest.raises(ValueError, match="(CPU|CUDA) tensors, got one on meta"):
        triton_store_kv(k_buffer, v_buffer, torch.arange(3, device="meta"), k, k)
