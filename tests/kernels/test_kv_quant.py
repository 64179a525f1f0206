"""Group-wise quantized KV (kv_quant): round-trip error, the pool layout, and every attention
path over a quantized pool against the same attention over the dequantized values."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from kv_tables import scattered_table

from sglc.kernels import for_kv_cache, torch_ops
from sglc.kernels.attention_scores import accumulate_key_scores
from sglc.kernels.cpu_decode_attention import (
    cpu_decode_attention,
    cpu_extend_attention,
    cpu_kernels_available,
)
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention
from sglc.kernels.kv_quant import (
    allocate,
    bytes_per_row,
    dequantize,
    gather_rows,
    group_size_for,
    kv_bits,
    quantize,
    store_quantized,
)
from sglc.kernels.kv_store import cpu_store_kv, store_kv
from sglc.runtime.config import KV_CACHE_DTYPES
from sglc.runtime.mem import KVPool

needs_cpu_kernels = pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain")


@pytest.mark.parametrize("bits", [8, 4])
def test_round_trip_error_is_within_half_a_step_per_group(bits):
    gen = torch.Generator().manual_seed(bits)
    x = torch.randn(37, 2, 32, generator=gen) * torch.linspace(0.1, 5, 37)[:, None, None]
    x[3] = 0.25  # a constant row: span 0, stored exactly
    codes, scales, zeros = quantize(x, bits, 64)
    assert codes.dtype == torch.uint8 and codes.shape == (37, 64 * bits // 8)
    back = dequantize(codes, scales, zeros, bits, 64).view_as(x)
    step = scales.float().repeat_interleave(64, dim=1).view_as(x)
    # half a step from rounding, plus float16's rounding of the zero a step is taken from
    assert ((back - x).abs() <= step / 2 + 1e-3 * x.abs().amax()).all()
    assert torch.equal(back[3], x[3])
    # the extremes of each group are hit to within float16 rounding
    groups = x.reshape(37, 1, 64)
    deq = back.reshape(37, 1, 64)
    assert torch.allclose(deq.amin(-1), groups.amin(-1), atol=2e-3 * groups.abs().amax())


def test_int4_packs_even_elements_in_the_low_nibble():
    x = torch.arange(64, dtype=torch.float32).view(1, 1, 64) % 16  # codes 0..15 twice
    codes, scales, zeros = quantize(x, 4, 64)
    assert float(scales[0, 0]) == 1.0 and float(zeros[0, 0]) == 0.0
    assert codes[0, 0] == 0x10 and codes[0, 1] == 0x32  # (0, 1) and (2, 3)


def test_pool_sizes_and_names():
    assert kv_bits("auto") is None and kv_bits("int8") == 8 and kv_bits("int4") == 4
    with pytest.raises(ValueError, match="kv_cache_dtype 'fp8'.*auto, int8, int4"):
        kv_bits("fp8")
    assert KV_CACHE_DTYPES == ("auto", "int8", "int4")  # the torch-free config's copy
    assert group_size_for(128) == 64 and group_size_for(96) == 32
    assert bytes_per_row(128, 4) == 64 + 2 * 4  # codes, then a float16 scale + zero per group
    dims = {"num_layers": 6, "num_kv_heads": 4, "head_dim": 32}
    fp32 = KVPool.bytes_per_slot(**dims, dtype=torch.float32)
    bf16 = KVPool.bytes_per_slot(**dims, dtype=torch.bfloat16)
    int4 = KVPool.bytes_per_slot(**dims, dtype=torch.float32, kv_cache_dtype="int4")
    assert bf16 / int4 >= 3.5 and fp32 / int4 >= 7


def test_pool_stores_copies_and_reads_back():
    pool = KVPool(num_layers=2, num_slots=8, num_kv_heads=2, head_dim=16, dtype=torch.float32,
                  device="cpu", kv_cache_dtype="int8")
    k, v = torch.randn(3, 2, 16), torch.randn(3, 2, 16)
    slots = torch.tensor([5, 2, 7])
    pool.store_kv(1, slots, k, v)
    k_buf, v_buf = pool.layer(1)
    assert k_buf.shape == (8, 2, 16)
    assert torch.allclose(gather_rows(k_buf, slots), k, atol=0.02)
    assert torch.allclose(gather_rows(v_buf, slots), v, atol=0.02)
    assert not gather_rows(pool.layer(0)[0], slots).any()  # the other layer untouched
    pool.copy_slots(torch.tensor([5]), torch.tensor([1]))
    assert torch.equal(gather_rows(k_buf, torch.tensor([1])), gather_rows(k_buf, slots[:1]))


def _pools(seq_lens, num_kv_heads, head_dim, bits, seed):
    """A quantized pool and a dense pool holding exactly its dequantized values, with the
    requests' slots shuffled over the pool and rows out of order."""
    gen = torch.Generator().manual_seed(seed)
    num_slots = sum(seq_lens) + 5
    quant_k = allocate(num_slots, num_kv_heads, head_dim, bits, "cpu")
    quant_v = allocate(num_slots, num_kv_heads, head_dim, bits, "cpu")
    all_slots = torch.arange(num_slots)
    store_kv(quant_k, quant_v, all_slots, torch.randn(num_slots, num_kv_heads, head_dim,
                                                      generator=gen) * 3,
             torch.randn(num_slots, num_kv_heads, head_dim, generator=gen))
    dense_k, dense_v = gather_rows(quant_k, all_slots), gather_rows(quant_v, all_slots)
    table, rows = scattered_table(seq_lens, num_slots, gen)
    return (quant_k, quant_v), (dense_k, dense_v), table, rows


@pytest.mark.parametrize("bits", [8, 4])
def test_reference_ops_read_the_quantized_pool_as_its_dequantized_values(bits):
    seq_lens, prefixes = [1, 9, 70], [0, 4, 60]
    quant, dense, table, rows = _pools(seq_lens, 2, 32, bits, seed=bits)
    opts = {"sm_scale": 32**-0.5}
    q = torch.randn(len(seq_lens), 8, 32)
    want = decode_attention(q, *dense, table, rows, seq_lens, **opts)
    assert torch.allclose(decode_attention(q, *quant, table, rows, seq_lens, **opts), want,
                          atol=1e-5)
    extends = [n - p for n, p in zip(seq_lens, prefixes, strict=True)]
    qe = torch.randn(sum(extends), 8, 32)
    want = extend_attention(qe, *dense, table, rows, prefixes, extends, **opts)
    got = extend_attention(qe, *quant, table, rows, prefixes, extends, **opts)
    assert torch.allclose(got, want, atol=1e-5)
    scores = [torch.zeros(table.shape) for _ in range(2)]
    for pool, out in zip((quant, dense), scores, strict=True):
        accumulate_key_scores(qe, pool[0], table, rows.tolist(), prefixes, extends, out, **opts)
    assert torch.allclose(scores[0], scores[1], atol=1e-5)


@needs_cpu_kernels
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 3e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize(("num_q_heads", "num_kv_heads", "head_dim"), [(4, 4, 16), (8, 2, 32),
                                                                       (6, 1, 48)])
@pytest.mark.parametrize(("window", "cap"), [(None, None), (40, None), (None, 20.0)])
def test_cpu_kernel_matches_the_reference_on_the_same_codes(bits, dtype, atol, num_q_heads,
                                                             num_kv_heads, head_dim, window, cap):
    seq_lens = [1, 2, 63, 65, 130]  # around the kernel's 64-key block
    quant, _, table, rows = _pools(seq_lens, num_kv_heads, head_dim, bits, seed=num_q_heads)
    q = torch.randn(len(seq_lens), num_q_heads, head_dim).to(dtype)
    opts = {"sm_scale": head_dim**-0.5, "sliding_window": window, "logit_cap": cap}
    want = decode_attention(q, *quant, table, rows, seq_lens, **opts)
    got = cpu_decode_attention(q, *quant, table, rows, seq_lens, **opts)
    assert got.dtype == dtype and got.shape == q.shape
    assert torch.allclose(got.float(), want.float(), atol=atol)


@needs_cpu_kernels
@pytest.mark.parametrize("bits", [8, 4])
def test_cpu_extend_paths_match_the_reference_on_the_same_codes(bits):
    # short extends run on the kernel, a long fresh prompt on SDPA over gathered rows
    for seq_lens, prefixes in (([5, 40], [2, 36]), ([100, 30], [0, 10])):
        quant, _, table, rows = _pools(seq_lens, 2, 32, bits, seed=len(seq_lens) + bits)
        extends = [n - p for n, p in zip(seq_lens, prefixes, strict=True)]
        q = torch.randn(sum(extends), 4, 32)
        args = (q, *quant, table, rows, prefixes, extends)
        want = extend_attention(*args, sm_scale=0.2)
        assert torch.allclose(cpu_extend_attention(*args, sm_scale=0.2), want, atol=3e-5)


def test_store_quantized_writes_only_its_slots():
    buf = allocate(6, 1, 8, 4, "cpu")
    store_quantized(buf, torch.tensor([4]), torch.randn(1, 1, 8))
    assert buf.data[4].any() and not buf.data[:4].any() and not buf.data[5].any()


@needs_cpu_kernels
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_store_quantizes_as_the_reference_does(bits, dtype):
    gen = torch.Generator().manual_seed(bits)
    k = (torch.randn(9, 2, 48, generator=gen) * 4).to(dtype)  # 96 values: groups of 32
    v = torch.randn(9, 2, 48, generator=gen)[:, :, :].to(dtype)
    k[2] = 1.5  # a constant row
    loc = torch.tensor([3, 11, 7, 1, 2, 9, 4, 12, 5])
    pools = [(allocate(14, 2, 48, bits, "cpu"), allocate(14, 2, 48, bits, "cpu"))
             for _ in range(2)]
    store_kv(*pools[0], loc, k, v)
    cpu_store_kv(*pools[1], loc, k, v)
    for ref, got in zip(pools[0], pools[1], strict=True):
        assert torch.equal(got.scales, ref.scales) and torch.equal(got.zeros, ref.zeros)
        # codes may differ by one where -ffast-math rounds a value sitting on a half step
        assert (got.data != ref.data).float().mean() < 0.01
        steps = ref.scales.float().repeat_interleave(32, dim=1).view(14, 2, 48)
        diff = (gather_rows(got, torch.arange(14)) - gather_rows(ref, torch.arange(14))).abs()
        assert (diff <= steps * 1.01 + 1e-6).all()
    assert not pools[1][0].data[0].any()  # slots not in loc untouched


def test_a_backend_that_cannot_read_codes_falls_back_to_the_reference():
    plain_only = replace(torch_ops(), decode_attention=cpu_decode_attention,
                         reads_quantized_kv=False)
    assert for_kv_cache(plain_only, "auto") is plain_only
    ops = for_kv_cache(plain_only, "int4")
    assert ops.decode_attention is decode_attention and ops.store_kv is store_kv
    assert ops.rms_norm is plain_only.rms_norm  # only the KV ops change
