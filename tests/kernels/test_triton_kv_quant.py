"""Triton attention and KV store over a quantized pool (`kv_quant`) equal the PyTorch
reference ops on the same codes (interpreter on CPU): the kernels dequantize as they read,
and the store quantizes exactly as `kv_quant.quantize` does."""

from __future__ import annotations

import pytest
import torch
from kv_tables import scattered_table

from sglc.kernels import AttentionShape, for_kv_cache, triton_ops
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention
from sglc.kernels.kv_quant import QuantizedKV, allocate, gather_rows
from sglc.kernels.kv_store import store_kv
from sglc.kernels.triton_decode_attention import triton_decode_attention, triton_plan_decode
from sglc.kernels.triton_extend_attention import triton_extend_attention
from sglc.kernels.triton_kv_store import triton_store_kv


def to_device(buffer: QuantizedKV, device: torch.device) -> QuantizedKV:
    return buffer._replace(data=buffer.data.to(device), scales=buffer.scales.to(device),
                           zeros=buffer.zeros.to(device))


def quant_pools(seq_lens, num_kv_heads, head_dim, bits, seed, device):
    """Quantized K and V pools holding every request's context in shuffled slots (the
    reference store writes them), a req_to_token table with rows out of order, and the
    request rows."""
    gen = torch.Generator().manual_seed(seed)
    num_slots = sum(seq_lens) + 3
    pools = [allocate(num_slots, num_kv_heads, head_dim, bits, "cpu") for _ in range(2)]
    values = [torch.randn(num_slots, num_kv_heads, head_dim, generator=gen) * scale
              for scale in (3.0, 1.0)]
    store_kv(*pools, torch.arange(num_slots), *values)
    table, rows = scattered_table(seq_lens, num_slots, gen)
    return [to_device(p, device) for p in pools], table.to(device), rows.to(device)


def cpu_reference(op, *args, **kwargs) -> torch.Tensor:
    """`op` on CPU copies of the arguments (the reference ops run on CPU)."""
    def cpu(x):
        if isinstance(x, QuantizedKV):
            return to_device(x, torch.device("cpu"))
        return x.cpu() if isinstance(x, torch.Tensor) else x

    return op(*map(cpu, args), **kwargs)


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    atol = 2e-5 if got.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.cpu().float(), want.float(), atol=atol, rtol=atol)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(
    ("num_heads", "head_dim", "dtype"),
    [(2, 32, torch.float32), (4, 16, torch.bfloat16), (3, 48, torch.float32)],
    ids=["groups-of-64", "group-spans-heads-bf16", "nine-groups-of-16"],
)
def test_store_writes_the_reference_codes(bits, num_heads, head_dim, dtype, device):
    gen = torch.Generator().manual_seed(bits + head_dim)
    num_slots, num_tokens, width = 20, 7, num_heads * head_dim
    # k and v sliced out of a fused qkv row: strided views
    qkv = (torch.randn(num_tokens, 3 * width, generator=gen) * 4).to(dtype)
    qkv[2] = 0.75  # a constant row: scale 0, codes 0
    qkv[4, width:] = torch.arange(2 * width) % 16 * 0.5  # values on exact half steps
    k = qkv[:, width : 2 * width].view(num_tokens, num_heads, head_dim)
    v = qkv[:, 2 * width :].view(num_tokens, num_heads, head_dim)
    loc = torch.randperm(num_slots, generator=gen)[:num_tokens]
    pools = [[allocate(num_slots, num_heads, head_dim, bits, "cpu") for _ in range(2)]
             for _ in range(2)]
    store_kv(*pools[0], loc, k, v)
    got = [to_device(p, device) for p in pools[1]]
    triton_store_kv(*got, loc.to(device), k.to(device), v.to(device))
    for want, buffer in zip(pools[0], got, strict=True):
        buffer = to_device(buffer, torch.device("cpu"))
        assert torch.equal(buffer.scales, want.scales) and torch.equal(buffer.zeros, want.zeros)
        assert torch.equal(buffer.data, want.data)  # untouched slots stay zero as well


def test_store_leaves_other_slots_alone(device):
    pools = [to_device(allocate(9, 2, 16, 4, "cpu"), device) for _ in range(2)]
    for pool in pools:
        for part in (pool.data, pool.scales, pool.zeros):
            part.fill_(7)
    k = torch.randn(2, 2, 16, device=device)
    triton_store_kv(*pools, torch.tensor([5, 1], device=device), k, -k)
    for pool in pools:
        untouched = [s for s in range(9) if s not in (5, 1)]
        assert (pool.data[untouched] == 7).all() and (pool.scales[untouched] == 7).all()
        assert (pool.zeros[untouched] == 7).all() and not (pool.data[[5, 1]] == 7).all()
    assert torch.allclose(gather_rows(to_device(pools[1], torch.device("cpu")),
                                      torch.tensor([5, 1])), -k.cpu(), atol=0.2)


DECODE_CASES = {  # (q heads, kv heads, head dim, dtype, window, cap, kv splits)
    "gqa4": (8, 2, 32, torch.float32, None, None, 1),
    "mha-window-splits": (2, 2, 16, torch.float32, 9, None, 3),
    "gqa-cap-bf16-splits": (4, 1, 64, torch.bfloat16, None, 3.0, 2),
    "padded-head": (3, 3, 48, torch.float32, None, None, 1),
}


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("case", DECODE_CASES.values(), ids=DECODE_CASES.keys())
def test_decode_matches_the_reference_on_the_same_codes(bits, case, device):
    num_q_heads, num_kv_heads, head_dim, dtype, window, cap, num_kv_splits = case
    seq_lens = [1, 17, 40]
    (k_buf, v_buf), table, rows = quant_pools(seq_lens, num_kv_heads, head_dim, bits,
                                              seed=bits + num_kv_splits, device=device)
    q = (torch.randn(len(seq_lens), num_q_heads, head_dim) * 2).to(dtype).to(device)
    opts = {"sm_scale": head_dim**-0.5, "sliding_window": window, "logit_cap": cap}
    plan = triton_plan_decode(table, rows, seq_lens,
                              AttentionShape(num_q_heads, num_kv_heads, head_dim),
                              sliding_window=window, num_kv_splits=num_kv_splits)
    got = triton_decode_attention(q, k_buf, v_buf, table, rows, seq_lens, plan=plan, **opts)
    assert_close(got, cpu_reference(decode_attention, q, k_buf, v_buf, table, rows, seq_lens,
                                    **opts))


@pytest.mark.parametrize(("bits", "num_kv_heads", "head_dim", "window"),
                         [(8, 2, 32, None), (4, 2, 32, None), (4, 1, 48, None), (8, 2, 16, 6)])
def test_extend_matches_the_reference_on_the_same_codes(bits, num_kv_heads, head_dim, window,
                                                        device):
    # a 35-token prefix crosses the kernel's unmasked key blocks; a fresh prompt and a
    # one-token extend beside it
    seq_lens, prefixes = [40, 18, 5], [35, 0, 4]
    (k_buf, v_buf), table, rows = quant_pools(seq_lens, num_kv_heads, head_dim, bits,
                                              seed=head_dim + bits, device=device)
    extends = [n - p for n, p in zip(seq_lens, prefixes, strict=True)]
    q = torch.randn(sum(extends), 2 * num_kv_heads, head_dim).to(device)
    args = (q, k_buf, v_buf, table, rows, prefixes, extends)
    opts = {"sm_scale": 0.3, "sliding_window": window}
    assert_close(triton_extend_attention(*args, **opts),
                 cpu_reference(extend_attention, *args, **opts))


def test_mixed_pools_are_refused(device):
    (k_buf, _), table, rows = quant_pools([3], 2, 16, 8, seed=0, device=device)
    plain = torch.zeros(k_buf.shape, device=device)
    q = torch.randn(1, 2, 16, device=device)
    with pytest.raises(ValueError, match="K pool stores 8-bit codes.*V pool no codes"):
        triton_decode_attention(q, k_buf, plain, table, rows, [3], sm_scale=0.2)
    four_bit = to_device(allocate(k_buf.shape[0], 2, 16, 4, "cpu"), device)
    with pytest.raises(ValueError, match="quantized alike"):
        triton_store_kv(k_buf, four_bit, torch.tensor([0], device=device), q[:, :2], q[:, :2])
    with pytest.raises(ValueError, match="both be quantized or neither"):
        triton_store_kv(k_buf, plain, torch.tensor([0], device=device), q[:, :2], q[:, :2])


def test_the_triton_backend_keeps_its_kernels_for_a_quantized_cache():
    ops = for_kv_cache(triton_ops(), "int4")
    assert ops.store_kv is triton_store_kv and ops.decode_attention is triton_decode_attention
    assert ops.extend_attention is triton_extend_attention
