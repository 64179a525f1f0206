"""Decode attention reference: one new query per request over its cached context."""

from __future__ import annotations

from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionPlan,
    AttentionShape,
    IndexLike,
    check_shapes,
    decode_rows_and_lens,
    make_piece,
    plan_attention,
    run_attention,
)
from sglc.kernels.kv_quant import KVBuffer


def plan_decode(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
) -> AttentionPlan:
    """The layout `decode_attention` needs, built once for all layers of a forward pass."""
    rows, lens = decode_rows_and_lens(req_pool_indices, seq_lens)
    pieces = [
        make_piece(row, b, 1, seq_len - 1, sliding_window)
        for b, (row, seq_len) in enumerate(zip(rows, lens, strict=True))
    ]
    return plan_attention(pieces, shape, req_to_token, sliding_window)


def decode_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: AttentionPlan | None = None,
) -> Tensor:
    """Attention of each request's newest token over its cached context.

    ``q[B, Hq, D]`` is request b's token at position ``seq_lens[b] - 1``; its own K/V must
    already be in the pool. It sees key positions ``0 .. seq_lens[b] - 1`` of row
    ``req_pool_indices[b]``, limited to the last ``sliding_window`` positions when a window
    is set. Scores, logit cap, float32 softmax and GQA as in ``extend_attention``; requests
    are gathered into padded batches. `plan` (from `plan_decode` on the same metadata and
    window) skips re-deriving the layout. Returns ``[B, Hq, D]`` in ``q.dtype``.
    """
    if plan is None:
        plan = plan_decode(
            req_to_token, req_pool_indices, seq_lens, check_shapes(q, k_buffer, v_buffer),
            sliding_window=sliding_window,
        )
    if sum(g.out_rows.numel() for g in plan.groups) != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but the batch has a different size")
    return run_attention(q, k_buffer, v_buffer, plan, sm_scale=sm_scale, logit_cap=logit_cap)
