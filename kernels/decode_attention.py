"""Decode attention reference: one new query per request over its cached context.

Each request is computed on its own: its visible keys are gathered from the pool (one
`index_select` of whole slot rows per K and V) and attended without padding or a mask, so
the fused SDPA kernel runs on exactly the keys it needs. On CPU this measured about 4x
faster than padding requests of different lengths into masked batches (a masked SDPA falls
back to materialising scores); the per-request Python loop costs little next to it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionShape,
    IndexLike,
    check_options,
    check_shapes,
    to_int_list,
)


class DecodePlan(NamedTuple):
    """A decode batch's layout, built once per forward pass and reused by every layer with
    the same sliding window: per request, the pool slots of the keys its query sees."""

    shape: AttentionShape
    sliding_window: int | None
    slots: tuple[Tensor, ...]  # request b: slots of key positions key_start .. seq_len-1


def plan_decode(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
) -> DecodePlan:
    """The layout `decode_attention` needs, built once for all layers of a forward pass."""
    rows, lens = to_int_list(req_pool_indices), to_int_list(seq_lens)
    if len(rows) != len(lens):
        raise ValueError(f"req_pool_indices has {len(rows)} entries, seq_lens {len(lens)}")
    if any(n < 1 for n in lens):
        raise ValueError(f"every seq_len must be >= 1, got {lens}")
    check_options(sliding_window, None)
    slots = tuple(
        req_to_token[row, 0 if sliding_window is None else max(0, n - sliding_window) : n]
        for row, n in zip(rows, lens, strict=True)
    )
    return DecodePlan(shape, sliding_window, slots)


def decode_attention(
    q: Tensor,
    k_buffer: Tensor,
    v_buffer: Tensor,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: DecodePlan | None = None,
) -> Tensor:
    """Attention of each request's newest token over its cached context.

    ``q[B, Hq, D]`` is request b's token at position ``seq_lens[b] - 1``; its own K/V must
    already be in the pool. It sees key positions ``0 .. seq_lens[b] - 1`` of row
    ``req_pool_indices[b]``, limited to the last ``sliding_window`` positions when a window
    is set. Scores are ``q.k * sm_scale``, then ``cap * tanh(s / cap)`` if ``logit_cap`` is
    set; softmax runs in float32. GQA: query head h reads kv head ``h // (Hq // Hkv)``.
    `plan` (from `plan_decode` on the same metadata and window) skips re-deriving the
    layout. Returns ``[B, Hq, D]`` in ``q.dtype``.
    """
    shape = check_shapes(q, k_buffer, v_buffer)
    if plan is None:
        plan = plan_decode(
            req_to_token, req_pool_indices, seq_lens, shape, sliding_window=sliding_window
        )
    if shape != plan.shape:
        raise ValueError(f"plan made for {plan.shape}, got q/k/v of {shape}")
    check_options(plan.sliding_window, logit_cap)
    if len(plan.slots) != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but the batch has a different size")
    out = torch.empty_like(q)
    group = shape.num_q_heads // shape.num_kv_heads
    for b, slots in enumerate(plan.slots):
        k = k_buffer.index_select(0, slots).transpose(0, 1).float()  # [Hkv, L, D]
        v = v_buffer.index_select(0, slots).transpose(0, 1).float()
        q_rows = q[b].view(shape.num_kv_heads, group, shape.head_dim).float()
        out[b] = _attend_one(q_rows, k, v, sm_scale, logit_cap).reshape_as(q[b])
    return out


def _attend_one(
    q: Tensor, k: Tensor, v: Tensor, sm_scale: float, logit_cap: float | None
) -> Tensor:
    """One request: q ``[Hkv, G, D]`` over k/v ``[Hkv, L, D]`` (all visible), float32."""
    if logit_cap is None:
        return F.scaled_dot_product_attention(q, k, v, scale=sm_scale)
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(sm_scale)
    scores = scores.div_(logit_cap).tanh_().mul_(logit_cap)
    return torch.matmul(torch.softmax(scores, dim=-1), v)
