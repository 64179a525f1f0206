"""Triton decode attention: split-KV over token-indexed KV, query heads grouped per kv head.

Same contract as :func:`sglc.kernels.decode_attention.decode_attention`.

One new query per request reads that request's whole visible context, so a batch of a few
long requests would leave most of the GPU idle with one program per (request, head). The
visible keys ``key_lo .. seq_len - 1`` are therefore cut into ``num_kv_splits`` equal
chunks (rounded up to ``BLOCK_N``) that run in parallel, then merged:

    stage 1, grid (B, Hkv, num_kv_splits)          stage 2, grid (B, Hq)
    program (b, g, s): the Hq/Hkv query heads      program (b, h): weights
    of kv head g as one [BLOCK_H, BLOCK_D] tile;   exp2(lse_s - max lse) over the splits,
    online softmax over split s's keys; writes     output = weighted mean of the
    partial output (normalised) and its lse.      normalised partial outputs.

Stage 1 reads each kv head's K/V once for all query heads that share it (GQA); from a
quantized pool (`kv_quant`) it reads the codes and dequantizes them in registers. A split with
no keys (a short request in a batch sized for a long one) writes lse = -inf and weighs 0.
The plan owns the float32 scratch for the partial outputs, reused by every layer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionShape,
    IndexLike,
    check_options,
    check_shapes,
    decode_rows_and_lens,
)
from sglc.kernels.kv_quant import KVBuffer
from sglc.kernels.triton_common import (
    KVOperand,
    attention_scores,
    check_kv_pair,
    check_launchable,
    check_plan_matches,
    dot_block,
    dot_precision,
    int32_tensor,
    is_interpreted,
    kv_operand,
    load_kv_rows,
    next_power_of_2,
    online_softmax_step,
    require_unit_last_stride,
    store_dtype,
)

GPU_BLOCK_N = 64
INTERPRETER_BLOCK_N = 16
# A split should cover at least this many keys: shorter ones cost more to merge than they save.
MIN_KEYS_PER_SPLIT = 256
MAX_KV_SPLITS = 16
# Stage-1 programs per streaming multiprocessor to aim for before adding splits.
PROGRAMS_PER_SM = 4


class TritonDecodePlan(NamedTuple):
    """A decode batch's layout as device tensors plus the split scratch, built once per pass."""

    shape: AttentionShape
    sliding_window: int | None
    num_kv_splits: int
    block_n: int
    requests: Tensor  # [B, 2] int32: req_to_token row, seq len
    partial_out: Tensor  # [B, Hq, num_kv_splits, D] float32 scratch
    partial_lse: Tensor  # [B, Hq, num_kv_splits] float32 scratch (log2 units)

    @property
    def batch_size(self) -> int:
        return int(self.requests.shape[0])


def triton_plan_decode(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
    num_kv_splits: int | None = None,
    block_n: int | None = None,
) -> TritonDecodePlan:
    """The metadata and scratch `triton_decode_attention` needs (one sync at most).

    ``num_kv_splits`` defaults to a pick from the longest visible context, the batch size
    and the GPU's multiprocessor count."""
    check_options(sliding_window, None)
    rows, lens = decode_rows_and_lens(req_pool_indices, seq_lens)
    device = req_to_token.device
    if num_kv_splits is None:
        visible = [min(n, sliding_window or n) for n in lens]
        num_kv_splits = _default_num_splits(max(visible, default=1), len(lens), shape, device)
    if num_kv_splits < 1:
        raise ValueError(f"num_kv_splits must be >= 1, got {num_kv_splits}")
    block_n = dot_block(block_n or (INTERPRETER_BLOCK_N if device.type == "cpu" else GPU_BLOCK_N))
    batch, heads, dim = len(lens), shape.num_q_heads, shape.head_dim
    return TritonDecodePlan(
        shape, sliding_window, num_kv_splits, block_n,
        int32_tensor([[r, n] for r, n in zip(rows, lens, strict=True)], device).view(-1, 2),
        torch.empty(batch, heads, num_kv_splits, dim, dtype=torch.float32, device=device),
        torch.empty(batch, heads, num_kv_splits, dtype=torch.float32, device=device),
    )  # fmt: skip


def _default_num_splits(
    max_keys: int, batch_size: int, shape: AttentionShape, device: torch.device
) -> int:
    """Enough splits to fill the GPU, none shorter than MIN_KEYS_PER_SPLIT keys."""
    num_sms = 1
    if device.type == "cuda":
        num_sms = torch.cuda.get_device_properties(device).multi_processor_count
    wanted = triton.cdiv(PROGRAMS_PER_SM * num_sms, max(1, batch_size * shape.num_kv_heads))
    by_length = triton.cdiv(max_keys, MIN_KEYS_PER_SPLIT)
    return max(1, min(wanted, by_length, MAX_KV_SPLITS))


def triton_decode_attention(
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
    plan: TritonDecodePlan | None = None,
) -> Tensor:
    """Attention of each request's newest token over its cached context.

    Contract as `decode_attention`: ``q[B, Hq, D]`` is request b's token at position
    ``seq_lens[b] - 1``, its own K/V already in the pool; returns ``[B, Hq, D]`` in
    ``q.dtype``. `plan` (from `triton_plan_decode` on the same metadata and window) skips
    re-deriving the layout and reuses its scratch. The pool may be quantized (`kv_quant`).
    """
    shape = check_shapes(q, k_buffer, v_buffer)
    check_options(sliding_window, logit_cap)
    if plan is None:
        plan = triton_plan_decode(
            req_to_token, req_pool_indices, seq_lens, shape, sliding_window=sliding_window
        )
    _check_plan(plan, shape, sliding_window, q)
    q = q if q.stride(-1) == 1 else q.contiguous()
    k, v = kv_operand(k_buffer), kv_operand(v_buffer)
    check_kv_pair(k, v)
    require_unit_last_stride(req_to_token)
    check_launchable(_decode_split_kernel, q, k.data, v.data, req_to_token, plan.requests)
    out = torch.empty(q.shape, dtype=store_dtype(_decode_split_kernel, q.dtype), device=q.device)
    if plan.batch_size > 0:
        _launch_splits(q, k, v, req_to_token, plan, sm_scale, logit_cap)
        _launch_merge(out, plan)
    return out.to(q.dtype)


def _check_plan(
    plan: TritonDecodePlan, shape: AttentionShape, sliding_window: int | None, q: Tensor
) -> None:
    check_plan_matches(plan.shape, plan.sliding_window, shape, sliding_window)
    if plan.batch_size != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but the batch has {plan.batch_size} requests")


def _launch_splits(
    q: Tensor,
    k: KVOperand,
    v: KVOperand,
    req_to_token: Tensor,
    plan: TritonDecodePlan,
    sm_scale: float,
    logit_cap: float | None,
) -> None:
    shape, scratch = plan.shape, plan.partial_out
    kv_group = shape.num_q_heads // shape.num_kv_heads
    grid = (plan.batch_size, shape.num_kv_heads, plan.num_kv_splits)
    _decode_split_kernel[grid](
        q, k.data, k.scales, k.zeros, v.data, v.scales, v.zeros,
        req_to_token, plan.requests, scratch, plan.partial_lse,
        q.stride(0), q.stride(1), k.stride_slot, k.stride_head, k.stride_param,
        v.stride_slot, v.stride_head, v.stride_param, req_to_token.stride(0),
        scratch.stride(0), scratch.stride(1), scratch.stride(2),
        plan.partial_lse.stride(0), plan.partial_lse.stride(1),
        sm_scale, logit_cap or 1.0, plan.sliding_window or 0,
        shape.head_dim, kv_group, plan.num_kv_splits,
        BLOCK_H=dot_block(kv_group), BLOCK_N=plan.block_n, BLOCK_D=dot_block(shape.head_dim),
        HAS_WINDOW=plan.sliding_window is not None, HAS_CAP=logit_cap is not None,
        PRECISION=dot_precision(q.dtype), UPCAST=is_interpreted(_decode_split_kernel),
        KV_BITS=k.bits, KV_GROUP=k.group_size,
    )  # fmt: skip


def _launch_merge(out: Tensor, plan: TritonDecodePlan) -> None:
    scratch, lse = plan.partial_out, plan.partial_lse
    _decode_merge_kernel[(plan.batch_size, plan.shape.num_q_heads)](
        scratch, lse, out,
        scratch.stride(0), scratch.stride(1), scratch.stride(2),
        lse.stride(0), lse.stride(1), out.stride(0), out.stride(1),
        plan.shape.head_dim, plan.num_kv_splits,
        BLOCK_S=next_power_of_2(plan.num_kv_splits),
        BLOCK_D=next_power_of_2(plan.shape.head_dim),
    )  # fmt: skip


@triton.jit
def _decode_split_kernel(
    q, k_data, k_scales, k_zeros, v_data, v_scales, v_zeros,
    req_to_token, requests, partial_out, partial_lse,
    stride_q_req, stride_q_head, stride_k_slot, stride_k_head, stride_k_param,
    stride_v_slot, stride_v_head, stride_v_param, stride_r2t_row,
    stride_po_req, stride_po_head, stride_po_split,
    stride_lse_req, stride_lse_head,
    sm_scale, logit_cap, sliding_window,
    head_dim, kv_group, num_kv_splits,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_WINDOW: tl.constexpr, HAS_CAP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    KV_BITS: tl.constexpr, KV_GROUP: tl.constexpr,
):  # fmt: skip
    req = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    req_row = tl.load(requests + 2 * req).to(tl.int64)
    seq_len = tl.load(requests + 2 * req + 1)
    key_lo = 0
    if HAS_WINDOW:
        key_lo = tl.maximum(seq_len - sliding_window, 0)
    split_len = tl.cdiv(tl.cdiv(seq_len - key_lo, num_kv_splits), BLOCK_N) * BLOCK_N
    split_lo = key_lo + split * split_len
    split_hi = tl.minimum(split_lo + split_len, seq_len)

    heads = kv_head * kv_group + tl.arange(0, BLOCK_H)
    is_head = tl.arange(0, BLOCK_H) < kv_group
    dims = tl.arange(0, BLOCK_D)
    is_dim = dims < head_dim
    q_mask = is_head[:, None] & is_dim[None, :]
    q_ptrs = q + req.to(tl.int64) * stride_q_req + heads[:, None] * stride_q_head + dims[None, :]
    q_tile = tl.load(q_ptrs, mask=q_mask, other=0.0)

    m_i = tl.full([BLOCK_H], -1.0e30, tl.float32)
    l_i = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
    for start in range(split_lo, split_hi, BLOCK_N):
        k_pos = start + tl.arange(0, BLOCK_N)
        is_key = k_pos < split_hi
        slots = tl.load(req_to_token + req_row * stride_r2t_row + k_pos, mask=is_key, other=0)
        slots = slots.to(tl.int64)
        kv_mask = is_key[:, None] & is_dim[None, :]
        k = load_kv_rows(k_data, k_scales, k_zeros, slots, kv_head, dims, kv_mask,
                         stride_k_slot, stride_k_head, stride_k_param, KV_BITS, KV_GROUP)
        s = attention_scores(q_tile, k, sm_scale, logit_cap, HAS_CAP, PRECISION, UPCAST)
        s = tl.where(is_key[None, :], s, float("-inf"))
        v = load_kv_rows(v_data, v_scales, v_zeros, slots, kv_head, dims, kv_mask,
                         stride_v_slot, stride_v_head, stride_v_param, KV_BITS, KV_GROUP)
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, v, PRECISION, UPCAST)

    has_keys = l_i > 0
    safe_l = tl.where(has_keys, l_i, 1.0)
    lse = tl.where(has_keys, m_i + tl.log2(safe_l), float("-inf"))
    po_ptrs = (
        partial_out + req * stride_po_req + heads[:, None] * stride_po_head
        + split * stride_po_split + dims[None, :]
    )  # fmt: skip
    tl.store(po_ptrs, acc / safe_l[:, None], mask=q_mask)
    lse_ptrs = partial_lse + req * stride_lse_req + heads * stride_lse_head + split
    tl.store(lse_ptrs, lse, mask=is_head)


@triton.jit
def _decode_merge_kernel(
    partial_out, partial_lse, out,
    stride_po_req, stride_po_head, stride_po_split,
    stride_lse_req, stride_lse_head, stride_o_req, stride_o_head,
    head_dim, num_kv_splits,
    BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    req = tl.program_id(0)
    head = tl.program_id(1)
    splits = tl.arange(0, BLOCK_S)
    is_split = splits < num_kv_splits
    dims = tl.arange(0, BLOCK_D)
    is_dim = dims < head_dim
    lse = tl.load(
        partial_lse + req * stride_lse_req + head * stride_lse_head + splits,
        mask=is_split, other=float("-inf"),
    )  # fmt: skip
    # The split holding the query's own key always has a finite lse, so max_lse is finite.
    weights = tl.exp2(lse - tl.max(lse, 0))
    part_ptrs = (
        partial_out + req * stride_po_req + head * stride_po_head
        + splits[:, None] * stride_po_split + dims[None, :]
    )  # fmt: skip
    parts = tl.load(part_ptrs, mask=is_split[:, None] & is_dim[None, :], other=0.0)
    result = tl.sum(weights[:, None] * parts, 0) / tl.sum(weights, 0)
    o_ptrs = out + req.to(tl.int64) * stride_o_req + head * stride_o_head + dims
    tl.store(o_ptrs, result.to(out.dtype.element_ty), mask=is_dim)
