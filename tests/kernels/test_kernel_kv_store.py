"""store_kv writes exactly the given slots and nothing else."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.kv_store import store_kv


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_writes_scattered_slots_in_place(dtype):
    gen = torch.Generator().manual_seed(0)
    k_buffer = torch.zeros(20, 2, 64, dtype=dtype)
    v_buffer = torch.zeros(20, 2, 64, dtype=dtype)
    loc = torch.randperm(20, generator=gen)[:7]
    k = torch.randn(7, 2, 64, generator=gen)  # float32 input: cast to the pool dtype
    v = torch.randn(7, 2, 64, generator=gen)
    store_kv(k_buffer, v_buffer, loc, k, v)
    assert torch.equal(k_buffer[loc], k.to(dtype))
    assert torch.equal(v_buffer[loc], v.to(dtype))
    untouched = torch.ones(20, dtype=torch.bool)
    untouched[loc] = False
    assert not k_buffer[untouched].any() and not v_buffer[untouched].any()


def test_rejects_mismatched_shapes():
    k_buffer = torch.zeros(8, 2, 64)
    with pytest.raises(ValueError, match="do not fit"):
        store_kv(
            k_buffer, k_buffer.clone(), torch.arange(3), torch.ones(3, 4, 64), torch.ones(3, 4, 64)
        )
