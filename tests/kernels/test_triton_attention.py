"""Triton extend and decode attention equal the PyTorch reference ops (interpreter on CPU).

Each case is one mixed batch: scattered pool slots, unordered request rows, poisoned unused
slots (see `make_batch`), empty and non-empty prefixes, lengths off the block size.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernel_attention import POISON, PooledBatch, make_batch, make_q

from sglc.kernels import AttentionShape, torch_ops
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention
from sglc.kernels.triton_decode_attention import triton_decode_attention, triton_plan_decode
from sglc.kernels.triton_extend_attention import (
    LaunchConfig,
    run_fitting,
    smaller_config,
    triton_extend_attention,
    triton_plan_extend,
)
from sglc.runtime.core import ForwardMode
from sglc.runtime.models.attention import ForwardBatch, PagedAttention


@dataclasses.dataclass(frozen=True)
class Case:
    """One batch configuration; lens are (prefix, extend) per request."""

    lens: tuple[tuple[int, int], ...]
    num_q_heads: int
    num_kv_heads: int
    head_dim: int
    dtype: torch.dtype = torch.float32
    sliding_window: int | None = None
    logit_cap: float | None = None

    @property
    def shape(self) -> AttentionShape:
        return AttentionShape(self.num_q_heads, self.num_kv_heads, self.head_dim)

    @property
    def options(self) -> dict:
        return {"sliding_window": self.sliding_window, "logit_cap": self.logit_cap}


MIXED = ((0, 1), (4, 1), (13, 3), (0, 17), (2, 0), (21, 6))
EXTEND_CASES = {
    "mha-d64": Case(MIXED, 4, 4, 64),
    "gqa4-d128-window-cap": Case(MIXED, 8, 2, 128, sliding_window=5, logit_cap=2.0),
    "gqa8-d64-bf16-window": Case(MIXED, 8, 1, 64, torch.bfloat16, sliding_window=7),
    "gqa4-d128-bf16-cap": Case(((3, 18), (0, 1)), 4, 1, 128, torch.bfloat16, logit_cap=3.0),
    "d48-padded-head": Case(((0, 5), (9, 17)), 2, 1, 48, sliding_window=20),
    "one-token": Case(((0, 1),), 2, 2, 16),
}
DECODE_SEQ_LENS = (1, 17, 40, 2, 33)
DECODE_CASES = {
    "mha-d64": Case(tuple((n - 1, 1) for n in DECODE_SEQ_LENS), 4, 4, 64),
    "gqa4-d128-window-cap": Case(
        tuple((n - 1, 1) for n in DECODE_SEQ_LENS), 8, 2, 128, sliding_window=6, logit_cap=2.0
    ),
    "gqa8-d64-bf16-cap": Case(((36, 1), (0, 1), (8, 1)), 8, 1, 64, torch.bfloat16, logit_cap=3.0),
    "gqa4-d32-bf16-window": Case(((29, 1), (4, 1)), 4, 1, 32, torch.bfloat16, sliding_window=9),
    "one-token": Case(((0, 1),), 2, 2, 16),
}


def build(case: Case, device: torch.device, seed: int = 0) -> tuple[PooledBatch, torch.Tensor]:
    """The case's pooled batch and queries on `device` (queries scaled so the cap bites)."""
    prefixes, extends = [p for p, _ in case.lens], [e for _, e in case.lens]
    batch = make_batch(prefixes, extends, case.num_kv_heads, case.head_dim, case.dtype, seed)
    moved = {
        f.name: getattr(batch, f.name).to(device)
        for f in dataclasses.fields(batch)
        if isinstance(getattr(batch, f.name), torch.Tensor)
    }
    batch = dataclasses.replace(batch, **moved)
    q = make_q(sum(extends), case.num_q_heads, case.head_dim, case.dtype, seed + 1, scale=3.0)
    return batch, q.to(device)


def assert_close_to_reference(out: torch.Tensor, expected: torch.Tensor) -> None:
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert torch.isfinite(out).all() and out.abs().max() < POISON / 10  # no poison slot read
    if out.dtype == torch.float32:
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)


def extend_args(batch: PooledBatch, q: torch.Tensor) -> tuple:
    return (
        q, batch.k_buffer, batch.v_buffer, batch.req_to_token, batch.req_pool_indices,
        torch.tensor(batch.prefix_lens), torch.tensor(batch.extend_lens),
    )  # fmt: skip


def decode_args(batch: PooledBatch, q: torch.Tensor) -> tuple:
    return (
        q, batch.k_buffer, batch.v_buffer, batch.req_to_token, batch.req_pool_indices,
        batch.seq_lens,
    )  # fmt: skip


def cpu_reference(op, args: tuple, **kwargs) -> torch.Tensor:
    """The torch reference op on CPU copies of `args`, moved back to their device."""
    device = args[0].device
    cpu_args = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
    return op(*cpu_args, **kwargs).to(device)


@pytest.mark.parametrize("case", EXTEND_CASES.values(), ids=EXTEND_CASES.keys())
def test_extend_matches_torch_reference(case, device):
    batch, q = build(case, device)
    args = extend_args(batch, q)
    out = triton_extend_attention(*args, sm_scale=1 / math.sqrt(case.head_dim), **case.options)
    expected = cpu_reference(
        extend_attention, args, sm_scale=1 / math.sqrt(case.head_dim), **case.options
    )
    assert_close_to_reference(out, expected)


@pytest.mark.parametrize("case", DECODE_CASES.values(), ids=DECODE_CASES.keys())
@pytest.mark.parametrize("num_kv_splits", [1, 3])
def test_decode_matches_torch_reference(case, num_kv_splits, device):
    batch, q = build(case, device)
    args = decode_args(batch, q)
    plan = triton_plan_decode(
        batch.req_to_token, batch.req_pool_indices, batch.seq_lens, case.shape,
        sliding_window=case.sliding_window, num_kv_splits=num_kv_splits,
    )  # fmt: skip
    out = triton_decode_attention(*args, sm_scale=0.125, plan=plan, **case.options)
    expected = cpu_reference(decode_attention, args, sm_scale=0.125, **case.options)
    assert_close_to_reference(out, expected)


@settings(max_examples=8, deadline=None)
@given(
    lens=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 20)), min_size=1, max_size=4),
    sliding_window=st.one_of(st.none(), st.integers(1, 24)),
    logit_cap=st.one_of(st.none(), st.floats(0.5, 8.0)),
    group=st.sampled_from([1, 2, 4]),
    num_kv_splits=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_random_batches(lens, sliding_window, logit_cap, group, num_kv_splits, seed, device):
    """Extend and decode over random batches; decode treats each request's last token."""
    case = Case(tuple(lens), 2 * group, 2, 32, sliding_window=sliding_window, logit_cap=logit_cap)
    batch, q = build(case, device, seed)
    args = extend_args(batch, q)
    out = triton_extend_attention(*args, sm_scale=0.3, **case.options)
    assert_close_to_reference(
        out, cpu_reference(extend_attention, args, sm_scale=0.3, **case.options)
    )
    last_rows = torch.tensor(batch.extend_lens).cumsum(0) - 1
    args = decode_args(batch, q[last_rows.to(device)])
    plan = triton_plan_decode(
        batch.req_to_token, batch.req_pool_indices, batch.seq_lens, case.shape,
        sliding_window=sliding_window, num_kv_splits=num_kv_splits,
    )  # fmt: skip
    out = triton_decode_attention(*args, sm_scale=0.3, plan=plan, **case.options)
    assert_close_to_reference(
        out, cpu_reference(decode_attention, args, sm_scale=0.3, **case.options)
    )


def test_decode_with_many_splits_and_default_plan(device):
    """More splits than some requests have key blocks: empty splits must weigh nothing."""
    case = DECODE_CASES["gqa4-d128-window-cap"]
    batch, q = build(dataclasses.replace(case, head_dim=64), device, seed=5)
    args = decode_args(batch, q)
    expected = cpu_reference(decode_attention, args, sm_scale=0.125)
    plan = triton_plan_decode(
        batch.req_to_token, batch.req_pool_indices, batch.seq_lens,
        AttentionShape(8, 2, 64), num_kv_splits=8,
    )  # fmt: skip
    assert_close_to_reference(triton_decode_attention(*args, sm_scale=0.125, plan=plan), expected)
    assert_close_to_reference(triton_decode_attention(*args, sm_scale=0.125), expected)


def test_plans_are_reused_across_layers(device):
    """One plan per forward pass serves every layer (fresh K/V and q per layer)."""
    case = EXTEND_CASES["gqa4-d128-window-cap"]
    batch, q = build(dataclasses.replace(case, head_dim=32), device)
    shape = AttentionShape(8, 2, 32)
    extend_plan = triton_plan_extend(
        batch.req_to_token, batch.req_pool_indices, batch.prefix_lens, batch.extend_lens, shape,
        sliding_window=5,
    )  # fmt: skip
    decode_plan = triton_plan_decode(
        batch.req_to_token, batch.req_pool_indices, batch.seq_lens, shape, sliding_window=5,
        num_kv_splits=2,
    )  # fmt: skip
    for layer in range(2):
        gen = torch.Generator().manual_seed(layer)
        k_buf, v_buf = (torch.randn(batch.k_buffer.shape, generator=gen) for _ in range(2))
        layer_batch = dataclasses.replace(
            batch, k_buffer=k_buf.to(device), v_buffer=v_buf.to(device)
        )
        q = torch.randn(q.shape, generator=gen).to(device)
        args = extend_args(layer_batch, q)
        out = triton_extend_attention(*args, sm_scale=0.2, sliding_window=5, plan=extend_plan)
        assert_close_to_reference(
            out, cpu_reference(extend_attention, args, sm_scale=0.2, sliding_window=5)
        )
        q_decode = q[: len(batch.seq_lens)]
        args = decode_args(layer_batch, q_decode)
        out = triton_decode_attention(*args, sm_scale=0.2, sliding_window=5, plan=decode_plan)
        assert_close_to_reference(
            out, cpu_reference(decode_attention, args, sm_scale=0.2, sliding_window=5)
        )


def test_extend_plan_tiles_cover_every_query():
    """Tiles cover each request's new tokens once, longest context first, and skip empty ones."""
    req_to_token = torch.zeros(4, 64, dtype=torch.int32)
    plan = triton_plan_extend(
        req_to_token, [3, 0, 2], [5, 40, 0], [33, 0, 16], AttentionShape(2, 1, 16), block_m=16
    )
    assert plan.num_tokens == 49 and plan.max_extend_len == 33
    assert plan.tiles.tolist() == [[0, 32], [0, 16], [0, 0], [2, 0]]
    assert plan.requests.tolist() == [[3, 0, 5, 33], [0, 33, 40, 0], [2, 33, 0, 16]]


def test_launch_steps_down_until_shared_memory_fits():
    """A launch shape too big for the card's shared memory steps down (stages, then key
    block) keeping BLOCK_M, and later launches start from the shape that fitted."""
    import triton.runtime.errors

    start = LaunchConfig(128, 128, 8, 3)
    shapes = []
    config: LaunchConfig | None = start
    while config is not None:
        shapes.append(config)
        config = smaller_config(config)
    assert [(c.block_n, c.num_stages) for c in shapes] == [
        (128, 3), (128, 2), (64, 2), (32, 2), (16, 2), (16, 1)]  # fmt: skip
    assert {c.block_m for c in shapes} == {128}

    launched = []

    def launch(config: LaunchConfig) -> None:
        launched.append(config)
        if config.block_n * config.num_stages > 64:  # pretend: too much shared memory
            raise triton.runtime.errors.OutOfResources(1, 0, "shared memory")

    key = (torch.float32, 12345)  # a key no other test uses
    run_fitting(start, key, launch)
    assert launched[-1] == LaunchConfig(128, 32, 8, 2) and len(launched) == 4
    launched.clear()
    run_fitting(start, key, launch)
    assert launched == [LaunchConfig(128, 32, 8, 2)]

    def never_fits(config: LaunchConfig) -> None:
        raise triton.runtime.errors.OutOfResources(1, 0, "shared memory")

    with pytest.raises(triton.runtime.errors.OutOfResources):
        run_fitting(start, (torch.float16, 54321), never_fits)


def test_empty_batches_return_empty_outputs(device):
    batch, _ = build(Case(((3, 0),), 2, 1, 16), device)
    q = torch.empty(0, 2, 16, device=device)
    assert triton_extend_attention(*extend_args(batch, q), sm_scale=1.0).shape == (0, 2, 16)
    args = (q, batch.k_buffer, batch.v_buffer, batch.req_to_token, [], [])
    assert triton_decode_attention(*args, sm_scale=1.0).shape == (0, 2, 16)


def test_rejects_bad_arguments(device):
    batch, q = build(Case(((2, 3),), 4, 2, 16), device)
    args = extend_args(batch, q)
    with pytest.raises(ValueError, match="extend_lens sum to 3"):
        triton_extend_attention(*extend_args(batch, q[:2]), sm_scale=0.1)
    with pytest.raises(ValueError, match="sliding_window"):
        triton_extend_attention(*args, sm_scale=0.1, sliding_window=0)
    with pytest.raises(ValueError, match="logit_cap"):
        triton_extend_attention(*args, sm_scale=0.1, logit_cap=-1.0)
    plan = triton_plan_extend(batch.req_to_token, [0], [2], [3], AttentionShape(4, 1, 16))
    with pytest.raises(ValueError, match="plan made for"):
        triton_extend_attention(*args, sm_scale=0.1, plan=plan)
    with pytest.raises(ValueError, match="plan made for sliding_window"):
        triton_decode_attention(
            *decode_args(batch, q[:1]), sm_scale=0.1, sliding_window=4,
            plan=triton_plan_decode(batch.req_to_token, [0], [5], AttentionShape(4, 2, 16)),
        )  # fmt: skip
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        triton_plan_decode(batch.req_to_token, [0], [0], AttentionShape(4, 2, 16))
    with pytest.raises(ValueError, match="num_kv_splits"):
        triton_plan_decode(batch.req_to_token, [0], [5], AttentionShape(4, 2, 16), num_kv_splits=0)


def make_forward_batch(mode: ForwardMode, prefixes, extends, rows, slots, device) -> ForwardBatch:
    def ints(values):
        return torch.tensor(values, dtype=torch.int64, device=device)

    seq_lens = [p + e for p, e in zip(prefixes, extends, strict=True)]
    positions = [p + i for p, e in zip(prefixes, extends, strict=True) for i in range(e)]
    return ForwardBatch(
        mode=mode, input_ids=ints([0] * len(positions)), positions=ints(positions),
        out_cache_loc=ints(slots), req_pool_indices=ints(rows), prefix_lens=ints(prefixes),
        extend_lens=ints(extends), seq_lens=ints(seq_lens), logits_indices=ints([]),
        rows_list=list(rows), prefix_lens_list=list(prefixes), extend_lens_list=list(extends),
    )  # fmt: skip


def test_paged_attention_with_triton_ops_matches_torch_ops(triton_ops, device):
    """The Triton ops drop into the model's PagedAttention: prefill, then one decode step."""
    torch.manual_seed(0)
    num_slots, hq, hkv, d = 64, 4, 2, 32
    req_to_token = torch.randperm(num_slots)[:40].view(2, 20).to(device)
    rows, extends = [1, 0], [9, 4]
    op_tables = {"torch": torch_ops(), "triton": triton_ops}
    pools = {
        name: [torch.zeros(num_slots, hkv, d, device=device) for _ in range(4)]
        for name in op_tables
    }
    for mode, prefixes, new in ((ForwardMode.EXTEND, [0, 0], extends),
                                (ForwardMode.DECODE, extends, [1, 1])):  # fmt: skip
        slots = [
            int(req_to_token[r, p + i])
            for r, p, e in zip(rows, prefixes, new, strict=True)
            for i in range(e)
        ]
        batch = make_forward_batch(mode, prefixes, new, rows, slots, device)
        q, k, v = (torch.randn(len(slots), h, d).to(device) for h in (hq, hkv, hkv))
        outs = {}
        for name, ops in op_tables.items():
            attn = PagedAttention(ops, pools[name][:2], pools[name][2:], req_to_token, batch)
            outs[name] = [
                attn.attend(layer, q, k, v, sm_scale=0.3, sliding_window=window)
                for layer, window in ((0, None), (1, 3))
            ]
        for got, want in zip(outs["triton"], outs["torch"], strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
