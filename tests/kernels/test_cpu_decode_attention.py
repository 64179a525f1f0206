"""The compiled CPU decode attention against the PyTorch reference op."""

from __future__ import annotations

import pytest
import torch

import sglc.kernels as kernels
from sglc.kernels.cpu_decode_attention import (
    MAX_KERNEL_EXTEND,
    CpuDecodePlan,
    cpu_decode_attention,
    cpu_extend_attention,
    cpu_kernels_available,
    cpu_plan_decode,
    cpu_plan_extend,
)
from sglc.kernels.cpu_prefill import (
    CpuPrefillPlan,
)
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention

pytestmark = pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain here")

POISON = 1.0e4  # K/V of slots no request owns: reading one would show


def _pool(seq_lens: list[int], num_kv_heads: int, head_dim: int, dtype: torch.dtype, seed: int):
    """K/V scattered over a shuffled pool; unowned slots poisoned; rows out of order."""
    gen = torch.Generator().manual_seed(seed)
    num_slots = sum(seq_lens) + 7
    k = torch.full((num_slots, num_kv_heads, head_dim), POISON)
    v = torch.full((num_slots, num_kv_heads, head_dim), POISON)
    perm = torch.randperm(num_slots, generator=gen)
    table = torch.full((len(seq_lens) + 2, max(seq_lens) + 3), 1 << 20, dtype=torch.int64)
    rows = torch.randperm(len(seq_lens) + 2, generator=gen)[: len(seq_lens)]
    used = 0
    for row, n in zip(rows.tolist(), seq_lens, strict=True):
        slots = perm[used : used + n]
        used += n
        table[row, :n] = slots
        k[slots] = torch.randn(n, num_kv_heads, head_dim, generator=gen)
        v[slots] = torch.randn(n, num_kv_heads, head_dim, generator=gen)
    return k.to(dtype), v.to(dtype), table, rows


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize(("num_q_heads", "num_kv_heads"), [(4, 4), (8, 2), (8, 1)])
@pytest.mark.parametrize(("window", "cap"), [(None, None), (40, None), (None, 20.0)])
def test_matches_reference(dtype, atol, num_q_heads, num_kv_heads, window, cap):
    seq_lens = [1, 2, 63, 64, 65, 130, 257]  # around the kernel's 64-key block
    head_dim = 32
    k, v, table, rows = _pool(seq_lens, num_kv_heads, head_dim, dtype, seed=num_q_heads)
    q = torch.randn(len(seq_lens), num_q_heads, head_dim).to(dtype)
    args = (q, k, v, table, rows, seq_lens)
    opts = {"sm_scale": head_dim**-0.5, "sliding_window": window, "logit_cap": cap}
    ref = decode_attention(*args, **opts)
    out = cpu_decode_attention(*args, **opts)
    assert out.dtype == dtype and out.shape == q.shape
    torch.testing.assert_close(out.float(), ref.float(), atol=atol, rtol=atol)
    shape = kernels.AttentionShape(num_q_heads, num_kv_heads, head_dim)
    plan = cpu_plan_decode(table, rows, seq_lens, shape, sliding_window=window)
    torch.testing.assert_close(cpu_decode_attention(*args, **opts, plan=plan), out)


def test_bad_inputs_are_clear_errors():
    k, v, table, rows = _pool([3, 4], 2, 16, torch.float32, seed=0)
    q = torch.randn(2, 4, 16)
    with pytest.raises(ValueError, match="every seq_len must be >= 1"):
        cpu_decode_attention(q, k, v, table, rows, [0, 4], sm_scale=0.25)
    with pytest.raises(ValueError, match="q is torch.bfloat16"):
        cpu_decode_attention(q.bfloat16(), k, v, table, rows, [3, 4], sm_scale=0.25)
    with pytest.raises(ValueError, match="q has 1 rows"):
        cpu_decode_attention(q[:1], k, v, table, rows, [3, 4], sm_scale=0.25)


@pytest.mark.parametrize(("window", "cap"), [(None, None), (5, None), (None, 20.0)])
@pytest.mark.parametrize("extends", [[1, 1, 1, 1, 1, 1, 1], [1, 7, 3, 1, 32, 2, 1], [1, 40, 2, 1, 1, 1, 5],
                                     [1, 49, 63, 64, 65, 130, 257], [0, 49, 1, 64, 33, 130, 100]])
def test_extend_matches_reference(extends, window, cap):
    # short extends (decode rows and forced tokens) run on the kernel, one query per new
    # token over its causal prefix; in a batch with a long extend, fresh prompts (no prefix)
    # run a causal SDPA each and the others the reference's plan
    seq_lens = [1, 49, 63, 64, 65, 130, 257]
    prefixes = [n - e for n, e in zip(seq_lens, extends, strict=True)]
    k, v, table, rows = _pool(seq_lens, 2, 32, torch.float32, seed=sum(extends))
    q = torch.randn(sum(extends), 8, 32)
    args = (q, k, v, table, rows, prefixes, extends)
    opts = {"sm_scale": 32**-0.5, "sliding_window": window, "logit_cap": cap}
    out, ref = cpu_extend_attention(*args, **opts), extend_attention(*args, **opts)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)
    plan = cpu_plan_extend(table, rows, prefixes, extends, kernels.AttentionShape(8, 2, 32),
                           sliding_window=window)
    assert isinstance(plan, CpuDecodePlan) == (max(extends) <= MAX_KERNEL_EXTEND)
    if isinstance(plan, CpuPrefillPlan):  # both paths taken where the batch has both kinds
        fresh = sum(p == 0 for p in prefixes) if window is None else 0
        assert len(plan.fresh) == fresh
        assert (plan.rest_q_rows is None) == (fresh == len(extends) - extends.count(0))
    torch.testing.assert_close(cpu_extend_attention(*args, **opts, plan=plan), out)


def test_cpu_backend_swaps_the_compiled_ops_in():
    ops, reference = kernels.get_ops("cpu"), kernels.get_ops("torch")
    assert ops.decode_attention is cpu_decode_attention
    assert ops.extend_attention is cpu_extend_attention
    assert ops.store_kv is not reference.store_kv  # it quantizes a quantized pool itself
    assert ops.fused_moe is reference.fused_moe
    assert kernels.default_backend("cpu") == "cpu"  # where it builds, as here
