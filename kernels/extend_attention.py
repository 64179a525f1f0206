"""Extend (prefill) attention reference: new tokens over a cached prefix, causal among themselves."""

from __future__ import annotations

from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionPiece,
    AttentionPlan,
    AttentionShape,
    IndexLike,
    check_shapes,
    make_piece,
    plan_attention,
    run_attention,
    split_piece,
    to_int_list,
)
from sglc.kernels.kv_quant import KVBuffer


def plan_extend(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
) -> AttentionPlan:
    """The layout `extend_attention` needs, built once for all layers of a forward pass."""
    rows, prefixes, extends = (to_int_list(x) for x in (req_pool_indices, prefix_lens, extend_lens))
    if not len(rows) == len(prefixes) == len(extends):
        raise ValueError("req_pool_indices, prefix_lens and extend_lens differ in length")
    pieces = _extend_pieces(rows, prefixes, extends, shape, sliding_window)
    return plan_attention(pieces, shape, req_to_token, sliding_window)


def extend_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: AttentionPlan | None = None,
) -> Tensor:
    """Attention of each request's new tokens over its whole cached context.

    ``q[T, Hq, D]`` holds the new tokens of every request in request order
    (``T == sum(extend_lens)``). Their K/V must already be in the pool at
    ``req_to_token[req_pool_indices[b], prefix_lens[b] : prefix_lens[b] + extend_lens[b]]``.
    Query i of request b sits at position ``p = prefix_lens[b] + i`` and sees key positions
    ``j <= p`` and, with a window, ``j > p - sliding_window`` (the window counts the token
    itself). Scores are ``q.k * sm_scale``, then ``cap * tanh(s / cap)`` if ``logit_cap`` is
    set, then masked; softmax runs in float32. GQA: query head h reads kv head
    ``h // (Hq // Hkv)``. Metadata may be int tensors or Python sequences of length B.
    `plan` (from `plan_extend` on the same metadata and window) skips re-deriving the
    layout. Returns ``[T, Hq, D]`` in ``q.dtype``.
    """
    if plan is None:
        plan = plan_extend(
            req_to_token, req_pool_indices, prefix_lens, extend_lens,
            check_shapes(q, k_buffer, v_buffer), sliding_window=sliding_window,
        )
    num_rows = sum(g.out_rows.numel() for g in plan.groups)
    if num_rows != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but extend_lens sum to {num_rows}")
    return run_attention(q, k_buffer, v_buffer, plan, sm_scale=sm_scale, logit_cap=logit_cap)


def _extend_pieces(
    rows: list[int],
    prefixes: list[int],
    extends: list[int],
    shape: AttentionShape,
    sliding_window: int | None,
) -> list[AttentionPiece]:
    """One piece per request with new tokens, long ones split into budget-sized chunks."""
    pieces: list[AttentionPiece] = []
    q_offset = 0
    for row, prefix, extend in zip(rows, prefixes, extends, strict=True):
        if extend > 0:
            piece = make_piece(row, q_offset, extend, prefix, sliding_window)
            pieces.extend(split_piece(piece, shape, sliding_window))
        q_offset += extend
    return pieces
