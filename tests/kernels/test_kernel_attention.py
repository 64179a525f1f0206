"""Extend and decode attention against a dense per-request reference in float64."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sglc.kernels import attention_common
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention

POISON = 1.0e4  # K/V value of every slot no request owns: reading one is visible
UNSET = 1 << 20  # req_to_token entry past a request's length: not a valid slot


@dataclass
class PooledBatch:
    """Requests whose K/V are scattered over a pool, plus the dense copies the reference uses."""

    k_buffer: torch.Tensor
    v_buffer: torch.Tensor
    req_to_token: torch.Tensor
    req_pool_indices: torch.Tensor
    prefix_lens: list[int]
    extend_lens: list[int]
    dense_k: list[torch.Tensor]  # per request [L, Hkv, D]
    dense_v: list[torch.Tensor]

    @property
    def seq_lens(self) -> list[int]:
        return [p + e for p, e in zip(self.prefix_lens, self.extend_lens, strict=True)]


def make_batch(
    prefix_lens: list[int],
    extend_lens: list[int],
    num_kv_heads: int,
    head_dim: int,
    dtype: torch.dtype,
    seed: int = 0,
) -> PooledBatch:
    gen = torch.Generator().manual_seed(seed)
    seq_lens = [p + e for p, e in zip(prefix_lens, extend_lens, strict=True)]
    num_slots = sum(seq_lens) + 5
    slot_order = torch.randperm(num_slots, generator=gen)  # scattered; 5 spare slots
    k_buffer = torch.full((num_slots, num_kv_heads, head_dim), POISON, dtype=dtype)
    v_buffer = k_buffer.clone()
    max_reqs = len(seq_lens) + 3
    req_to_token = torch.full((max_reqs, max(seq_lens) + 4), UNSET, dtype=torch.int32)
    req_pool_indices = torch.randperm(max_reqs, generator=gen)[: len(seq_lens)]
    dense_k, dense_v, used = [], [], 0
    for row, seq_len in zip(req_pool_indices.tolist(), seq_lens, strict=True):
        slots = slot_order[used : used + seq_len]
        used += seq_len
        k = torch.randn(seq_len, num_kv_heads, head_dim, generator=gen).to(dtype)
        v = torch.randn(seq_len, num_kv_heads, head_dim, generator=gen).to(dtype)
        k_buffer[slots], v_buffer[slots] = k, v
        req_to_token[row, :seq_len] = slots.to(torch.int32)
        dense_k.append(k)
        dense_v.append(v)
    return PooledBatch(
        k_buffer, v_buffer, req_to_token, req_pool_indices,
        list(prefix_lens), list(extend_lens), dense_k, dense_v,
    )  # fmt: skip


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_positions: torch.Tensor,
    sm_scale: float,
    sliding_window: int | None,
    logit_cap: float | None,
) -> torch.Tensor:
    """Float64 attention of q ``[E, Hq, D]`` at ``q_positions`` over one request's dense K/V."""
    group = q.shape[1] // k.shape[1]
    k = k.double().repeat_interleave(group, dim=1)
    v = v.double().repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.double(), k) * sm_scale
    if logit_cap is not None:
        scores = logit_cap * torch.tanh(scores / logit_cap)
    key_pos = torch.arange(k.shape[0])
    allowed = key_pos[None, :] <= q_positions[:, None]
    if sliding_window is not None:
        allowed &= key_pos[None, :] > q_positions[:, None] - sliding_window
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)


def reference_extend(q, batch: PooledBatch, sm_scale, sliding_window=None, logit_cap=None):
    outs, start = [], 0
    for b, (prefix, extend) in enumerate(zip(batch.prefix_lens, batch.extend_lens, strict=True)):
        q_b = q[start : start + extend]
        start += extend
        positions = prefix + torch.arange(extend)
        outs.append(
            dense_attention(
                q_b,
                batch.dense_k[b],
                batch.dense_v[b],
                positions,
                sm_scale,
                sliding_window,
                logit_cap,
            )  # fmt: skip
        )
    return torch.cat(outs)


def run_extend(q, batch: PooledBatch, sm_scale, **options):
    return extend_attention(
        q, batch.k_buffer, batch.v_buffer, batch.req_to_token, batch.req_pool_indices,
        torch.tensor(batch.prefix_lens), torch.tensor(batch.extend_lens),
        sm_scale=sm_scale, **options,
    )  # fmt: skip


def run_decode(q, batch: PooledBatch, sm_scale, **options):
    return decode_attention(
        q, batch.k_buffer, batch.v_buffer, batch.req_to_token, batch.req_pool_indices,
        torch.tensor(batch.seq_lens), sm_scale=sm_scale, **options,
    )  # fmt: skip


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-2, "rtol": 1e-2}


def assert_matches(out: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), expected, **tolerance(dtype))


def make_q(num_tokens: int, num_q_heads: int, head_dim: int, dtype, seed=1, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(num_tokens, num_q_heads, head_dim, generator=gen) * scale).to(dtype)


EXTEND_BATCHES = {
    "one-token-no-prefix": ([0], [1]),
    "prefill-no-prefix": ([0], [9]),
    "one-token-with-prefix": ([6], [1]),
    "extend-with-prefix": ([11], [5]),
    "mixed": ([0, 4, 13, 0, 2], [6, 1, 3, 1, 0]),
}
HEADS = {"mha": (4, 4), "gqa4": (8, 2)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("heads", HEADS.values(), ids=HEADS.keys())
@pytest.mark.parametrize("lens", EXTEND_BATCHES.values(), ids=EXTEND_BATCHES.keys())
def test_extend_matches_dense_reference(lens, heads, head_dim, dtype):
    (prefix_lens, extend_lens), (num_q_heads, num_kv_heads) = lens, heads
    batch = make_batch(prefix_lens, extend_lens, num_kv_heads, head_dim, dtype)
    q = make_q(sum(extend_lens), num_q_heads, head_dim, dtype)
    sm_scale = 1 / math.sqrt(head_dim)
    out = run_extend(q, batch, sm_scale)
    assert out.shape == q.shape
    assert_matches(out, reference_extend(q, batch, sm_scale), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("sliding_window", [1, 3, 7])
def test_extend_sliding_window(sliding_window, dtype):
    batch = make_batch([0, 10, 5], [12, 4, 1], num_kv_heads=2, head_dim=64, dtype=dtype)
    q = make_q(17, 8, 64, dtype)
    out = run_extend(q, batch, 0.125, sliding_window=sliding_window)
    expected = reference_extend(q, batch, 0.125, sliding_window=sliding_window)
    assert_matches(out, expected, dtype)
    # The window is shorter than the sequences, so it must change the answer.
    assert not torch.allclose(expected, reference_extend(q, batch, 0.125), atol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_extend_logit_cap(dtype):
    batch = make_batch([3, 0], [4, 6], num_kv_heads=1, head_dim=64, dtype=dtype)
    q = make_q(10, 4, 64, dtype, scale=4.0)  # scores well past the cap
    out = run_extend(q, batch, 0.125, logit_cap=2.0, sliding_window=5)
    expected = reference_extend(q, batch, 0.125, sliding_window=5, logit_cap=2.0)
    assert_matches(out, expected, dtype)
    assert not torch.allclose(expected, reference_extend(q, batch, 0.125, sliding_window=5))


def test_extend_accepts_python_lists():
    batch = make_batch([2, 0], [3, 2], num_kv_heads=2, head_dim=64, dtype=torch.float32)
    q = make_q(5, 4, 64, torch.float32)
    out = extend_attention(
        q, batch.k_buffer, batch.v_buffer, batch.req_to_token,
        batch.req_pool_indices.tolist(), batch.prefix_lens, batch.extend_lens, sm_scale=0.1,
    )  # fmt: skip
    assert_matches(out, reference_extend(q, batch, 0.1), torch.float32)


@pytest.mark.parametrize("sliding_window", [None, 6])
def test_extend_split_into_chunks_and_groups(monkeypatch, sliding_window):
    """A tiny budget forces long requests into query chunks and the batch into many groups."""
    monkeypatch.setattr(attention_common, "MAX_GROUP_ELEMENTS", 200)
    batch = make_batch([0, 7, 1], [20, 9, 1], num_kv_heads=2, head_dim=64, dtype=torch.float32)
    q = make_q(30, 4, 64, torch.float32)
    out = run_extend(q, batch, 0.125, sliding_window=sliding_window)
    expected = reference_extend(q, batch, 0.125, sliding_window=sliding_window)
    assert_matches(out, expected, torch.float32)


def test_long_piece_is_split_into_chunks_within_budget(monkeypatch):
    monkeypatch.setattr(attention_common, "MAX_GROUP_ELEMENTS", 400)
    shape = attention_common.AttentionShape(num_q_heads=4, num_kv_heads=1, head_dim=8)
    piece = attention_common.make_piece(
        req_row=2, q_offset=3, num_queries=20, first_pos=7, sliding_window=None
    )
    chunks = attention_common.split_piece(piece, shape, None)
    assert len(chunks) > 1
    assert [c.q_offset - 3 for c in chunks] == [c.first_pos - 7 for c in chunks]
    assert sum(c.num_queries for c in chunks) == 20 and chunks[-1].key_end == piece.key_end
    assert all(c.num_queries * piece.num_keys * 4 <= 400 for c in chunks)


def test_groups_respect_budget_and_padding_bound(monkeypatch):
    monkeypatch.setattr(attention_common, "MAX_GROUP_ELEMENTS", 400)
    shape = attention_common.AttentionShape(num_q_heads=4, num_kv_heads=1, head_dim=8)
    pieces = [
        attention_common.make_piece(b, b, 1, n - 1, None) for b, n in enumerate([9, 1, 4, 2, 12, 3])
    ]
    groups = attention_common.group_pieces(pieces, shape)
    assert sorted(p for g in groups for p in g) == sorted(pieces)
    assert any(len(g) > 1 for g in groups)
    for group in groups:
        padded = shape.group_cost(len(group), 1, max(p.num_keys for p in group))
        exact = sum(shape.group_cost(1, 1, p.num_keys) for p in group)
        assert len(group) == 1 or (padded <= 400 and padded <= 2 * exact)


@settings(max_examples=20, deadline=None)
@given(
    lens=st.lists(st.tuples(st.integers(0, 12), st.integers(1, 8)), min_size=1, max_size=4),
    sliding_window=st.one_of(st.none(), st.integers(1, 10)),
    gqa=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 1000),
)
def test_extend_random_batches(lens, sliding_window, gqa, seed):
    prefix_lens, extend_lens = [p for p, _ in lens], [e for _, e in lens]
    batch = make_batch(prefix_lens, extend_lens, 2, 64, torch.float32, seed=seed)
    q = make_q(sum(extend_lens), 2 * gqa, 64, torch.float32, seed=seed + 1)
    out = run_extend(q, batch, 0.125, sliding_window=sliding_window)
    expected = reference_extend(q, batch, 0.125, sliding_window=sliding_window)
    assert_matches(out, expected, torch.float32)


def test_dense_reference_agrees_with_sdpa():
    """The float64 reference itself matches PyTorch SDPA with an explicit mask."""
    batch = make_batch([5], [4], num_kv_heads=2, head_dim=64, dtype=torch.float32)
    q = make_q(4, 8, 64, torch.float32)
    positions = 5 + torch.arange(4)
    mask = torch.arange(9)[None, :] <= positions[:, None]
    mask &= torch.arange(9)[None, :] > positions[:, None] - 3
    sdpa = F.scaled_dot_product_attention(
        q.transpose(0, 1), batch.dense_k[0].transpose(0, 1), batch.dense_v[0].transpose(0, 1),
        attn_mask=mask, scale=0.125, enable_gqa=True,
    ).transpose(0, 1)  # fmt: skip
    expected = dense_attention(q, batch.dense_k[0], batch.dense_v[0], positions, 0.125, 3, None)
    torch.testing.assert_close(sdpa.double(), expected, atol=1e-5, rtol=1e-5)


def test_extend_rejects_bad_arguments():
    batch = make_batch([0], [3], num_kv_heads=2, head_dim=64, dtype=torch.float32)
    with pytest.raises(ValueError, match="extend_lens sum to 3"):
        run_extend(make_q(4, 4, 64, torch.float32), batch, 0.1)
    with pytest.raises(ValueError, match="sliding_window"):
        run_extend(make_q(3, 4, 64, torch.float32), batch, 0.1, sliding_window=0)
    with pytest.raises(ValueError, match="kv heads"):
        run_extend(make_q(3, 3, 64, torch.float32), batch, 0.1)


DECODE_LENS = {"one-token": [1], "single": [9], "mixed": [1, 17, 4, 30, 2]}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("heads", HEADS.values(), ids=HEADS.keys())
@pytest.mark.parametrize("seq_lens", DECODE_LENS.values(), ids=DECODE_LENS.keys())
def test_decode_matches_dense_reference(seq_lens, heads, head_dim, dtype):
    num_q_heads, num_kv_heads = heads
    batch = make_batch(
        [n - 1 for n in seq_lens], [1] * len(seq_lens), num_kv_heads, head_dim, dtype
    )
    q = make_q(len(seq_lens), num_q_heads, head_dim, dtype)
    sm_scale = 1 / math.sqrt(head_dim)
    out = run_decode(q, batch, sm_scale)
    assert out.shape == q.shape
    assert_matches(out, reference_extend(q, batch, sm_scale), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("sliding_window", [1, 4])
@pytest.mark.parametrize("logit_cap", [None, 3.0])
def test_decode_window_and_cap(sliding_window, logit_cap, dtype):
    seq_lens = [2, 25, 9, 1]
    batch = make_batch([n - 1 for n in seq_lens], [1] * 4, num_kv_heads=2, head_dim=64, dtype=dtype)
    q = make_q(4, 8, 64, dtype, scale=4.0)
    options = {"sliding_window": sliding_window, "logit_cap": logit_cap}
    out = run_decode(q, batch, 0.125, **options)
    expected = reference_extend(q, batch, 0.125, **options)
    assert_matches(out, expected, dtype)
    assert not torch.allclose(expected, reference_extend(q, batch, 0.125), atol=1e-2)


def test_decode_equals_one_token_extend(monkeypatch):
    """Decode over many requests, forced into several padded groups, equals extend by 1."""
    monkeypatch.setattr(attention_common, "MAX_GROUP_ELEMENTS", 20000)
    seq_lens = [3, 40, 1, 17, 8, 33, 2, 12]
    batch = make_batch([n - 1 for n in seq_lens], [1] * 8, 2, 64, torch.float32, seed=3)
    q = make_q(8, 4, 64, torch.float32)
    decoded = run_decode(q, batch, 0.125, sliding_window=10)
    extended = run_extend(q, batch, 0.125, sliding_window=10)
    torch.testing.assert_close(decoded, extended, atol=1e-6, rtol=1e-6)
    assert_matches(decoded, reference_extend(q, batch, 0.125, sliding_window=10), torch.float32)


def test_decode_rejects_bad_arguments():
    batch = make_batch([2], [1], num_kv_heads=2, head_dim=64, dtype=torch.float32)
    q = make_q(1, 4, 64, torch.float32)
    args = (q, batch.k_buffer, batch.v_buffer, batch.req_to_token, batch.req_pool_indices)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        decode_attention(*args, [0], sm_scale=0.1)
    with pytest.raises(ValueError, match="seq_lens 2"):
        decode_attention(*args, [3, 3], sm_scale=0.1)
    with pytest.raises(ValueError, match="logit_cap"):
        decode_attention(*args, [3], sm_scale=0.1, logit_cap=0.0)
