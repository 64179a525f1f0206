"""Token-indexed KV layout and the padded, batched attention both reference ops share.

One layer's KV cache is a pool of slots; a request's tokens live in arbitrary slots, and
``req_to_token`` maps (request row, token position) to the slot holding that token::

    req_to_token [max_reqs, max_context_len] (int)        k_buffer, v_buffer
                      position: 0   1   2   3   4           [num_slots, Hkv, D]
                              +---+---+---+---+---+        +-------------------+
    req_pool_indices[0] = 2   | 7 | 2 | 9 | . | . |  row 2 | slot 0   [Hkv, D] |
                              +---+---+---+---+---+        | slot 1            |
    req_pool_indices[1] = 0   | 4 | 0 | . | . | . |  row 0 | slot 2 <----------+-- row 2, pos 1
                              +---+---+---+---+---+        | ...               |
                                                           +-------------------+
    '.' = past the request's length: stale or unset, never read (may not be a valid slot).

A request with ``prefix_len`` cached tokens and ``extend_len`` new ones owns positions
``0 .. prefix_len + extend_len - 1`` of its row; queries are flattened over the batch in
request order (``q[T, Hq, D]``), so request b's queries are rows
``sum(extend_lens[:b]) ..`` of ``q``.

Both ops reduce to a list of :class:`AttentionPiece` — runs of consecutive queries of one
request — that :func:`run_attention` groups into padded batches under a memory budget.
Decode is the special case of one query per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sglc.kernels.kv_quant import KVBuffer, gather_rows

# Float32 elements one padded group may materialise (scores plus gathered K and V), which
# bounds memory for long prompts and big decode batches. 2**23 floats = 32 MiB; much larger
# groups measured slower on CPU (fresh allocations, cache misses).
MAX_GROUP_ELEMENTS = 1 << 23

# A group is padded to its longest piece; accept at most this much padding overhead.
MAX_PADDING_OVERHEAD = 2.0

IndexLike = Tensor | Sequence[int]


class AttentionPiece(NamedTuple):
    """Consecutive queries of one request and the key positions they may see.

    Query i of the piece (0-based) is row ``q_offset + i`` of the flat ``q`` and has absolute
    position ``first_pos + i``; keys live at positions ``key_start .. key_end - 1`` of row
    ``req_row`` of ``req_to_token``.
    """

    req_row: int
    q_offset: int
    num_queries: int
    first_pos: int
    key_start: int

    @property
    def key_end(self) -> int:
        return self.first_pos + self.num_queries

    @property
    def num_keys(self) -> int:
        return self.key_end - self.key_start


class AttentionShape(NamedTuple):
    """Head counts and head size, used to size padded groups."""

    num_q_heads: int
    num_kv_heads: int
    head_dim: int

    def group_cost(self, num_pieces: int, max_queries: int, max_keys: int) -> int:
        """Float32 elements materialised for a padded group: scores + gathered K and V."""
        per_key = self.num_q_heads * max_queries + 2 * self.num_kv_heads * self.head_dim
        return num_pieces * max_keys * per_key


def to_int_list(values: IndexLike) -> list[int]:
    """Request metadata as Python ints (one device sync for a tensor)."""
    if isinstance(values, Tensor):
        return [int(v) for v in values.tolist()]
    return [int(v) for v in values]


def decode_rows_and_lens(req_pool_indices: IndexLike, seq_lens: IndexLike) -> tuple[list[int], list[int]]:
    """A decode batch's pool rows and sequence lengths as ints, checked (ValueError)."""
    rows, lens = to_int_list(req_pool_indices), to_int_list(seq_lens)
    if len(rows) != len(lens):
        raise ValueError(f"req_pool_indices has {len(rows)} entries, seq_lens {len(lens)}")
    if any(n < 1 for n in lens):
        raise ValueError(f"every seq_len must be >= 1, got {lens}")
    return rows, lens


def check_options(sliding_window: int | None, logit_cap: float | None) -> None:
    """Reject a window that would hide every key, or a non-positive logit cap."""
    if sliding_window is not None and sliding_window < 1:
        raise ValueError(f"sliding_window must be >= 1, got {sliding_window}")
    if logit_cap is not None and logit_cap <= 0:
        raise ValueError(f"logit_cap must be > 0, got {logit_cap}")


def check_shapes(q: Tensor, k_buffer: KVBuffer, v_buffer: KVBuffer) -> AttentionShape:
    """Validate q ``[T, Hq, D]`` against the pool and return the head shape."""
    if q.dim() != 3 or len(k_buffer.shape) != 3 or k_buffer.shape != v_buffer.shape:
        raise ValueError(
            f"expected q [T, Hq, D] and k/v buffers [slots, Hkv, D] of equal shape, got "
            f"{tuple(q.shape)}, {tuple(k_buffer.shape)}, {tuple(v_buffer.shape)}"
        )
    num_q_heads, head_dim = q.shape[1], q.shape[2]
    num_kv_heads = k_buffer.shape[1]
    if head_dim != k_buffer.shape[2] or num_q_heads % num_kv_heads != 0:
        raise ValueError(
            f"q heads {num_q_heads} x dim {head_dim} incompatible with "
            f"kv heads {num_kv_heads} x dim {k_buffer.shape[2]}"
        )
    return AttentionShape(num_q_heads, num_kv_heads, head_dim)


def make_piece(
    req_row: int, q_offset: int, num_queries: int, first_pos: int, sliding_window: int | None
) -> AttentionPiece:
    """A piece whose keys start where its first query's window starts (0 without a window)."""
    key_start = 0 if sliding_window is None else max(0, first_pos - sliding_window + 1)
    return AttentionPiece(req_row, q_offset, num_queries, first_pos, key_start)


def split_piece(
    piece: AttentionPiece, shape: AttentionShape, sliding_window: int | None
) -> list[AttentionPiece]:
    """Split a long piece into query chunks whose scores each fit the group budget.

    The gathered K/V of one piece cannot be split, so only the scores bound the chunk.
    """
    chunk = max(1, MAX_GROUP_ELEMENTS // (max(piece.num_keys, 1) * shape.num_q_heads))
    if piece.num_queries <= chunk:
        return [piece]
    return [
        make_piece(
            piece.req_row,
            piece.q_offset + start,
            min(chunk, piece.num_queries - start),
            piece.first_pos + start,
            sliding_window,
        )
        for start in range(0, piece.num_queries, chunk)
    ]


def group_pieces(
    pieces: Sequence[AttentionPiece], shape: AttentionShape
) -> list[list[AttentionPiece]]:
    """Greedy grouping of pieces (sorted by size) into padded batches.

    A piece joins the current group while the padded group stays within
    ``MAX_GROUP_ELEMENTS`` and within ``MAX_PADDING_OVERHEAD`` times the unpadded work.
    """
    groups: list[list[AttentionPiece]] = []
    current: list[AttentionPiece] = []
    max_q = max_k = exact = 0
    for piece in sorted(pieces, key=lambda p: (p.num_keys, p.num_queries)):
        cost = shape.group_cost(1, piece.num_queries, piece.num_keys)
        new_q, new_k = max(max_q, piece.num_queries), max(max_k, piece.num_keys)
        padded = shape.group_cost(len(current) + 1, new_q, new_k)
        fits = padded <= MAX_GROUP_ELEMENTS and padded <= MAX_PADDING_OVERHEAD * (exact + cost)
        if current and not fits:
            groups.append(current)
            current, new_q, new_k, exact = [], piece.num_queries, piece.num_keys, 0
        current.append(piece)
        max_q, max_k, exact = new_q, new_k, exact + cost
    if current:
        groups.append(current)
    return groups


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    visible: Tensor,
    sm_scale: float,
    logit_cap: float | None,
) -> Tensor:
    """Masked GQA attention over padded batches, all in float32.

    q ``[N, Sq, Hq, D]``, k/v ``[N, Hkv, Sk, D]``, visible bool ``[N, Sq, Sk]`` (every query row
    must see at least one key). Query head h reads kv head ``h // (Hq // Hkv)``.
    Returns ``[N, Sq, Hq, D]`` float32.
    """
    n, num_q, num_q_heads, head_dim = q.shape
    num_kv_heads, num_k = k.shape[1], k.shape[2]
    group = num_q_heads // num_kv_heads
    # The query heads sharing a kv head become rows of one matmul against that head's keys.
    q_rows = q.view(n, num_q, num_kv_heads, group, head_dim).permute(0, 2, 3, 1, 4)
    q_rows = q_rows.reshape(n, num_kv_heads, group * num_q, head_dim)
    if logit_cap is None:
        # Fused kernel; float32 inputs keep its softmax in float32.
        mask = visible[:, None, None].expand(n, 1, group, num_q, num_k)
        mask = mask.reshape(n, 1, group * num_q, num_k)
        out = F.scaled_dot_product_attention(q_rows, k, v, attn_mask=mask, scale=sm_scale)
    else:
        out = _capped_attention(q_rows, k, v, visible, sm_scale, logit_cap)
    out = out.view(n, num_kv_heads, group, num_q, head_dim).permute(0, 3, 1, 2, 4)
    return out.reshape(n, num_q, num_q_heads, head_dim)


def _capped_attention(
    q_rows: Tensor, k: Tensor, v: Tensor, visible: Tensor, sm_scale: float, logit_cap: float
) -> Tensor:
    """Explicit attention with ``cap * tanh(s / cap)`` applied to scaled scores before masking."""
    n, num_kv_heads, rows, _ = q_rows.shape
    num_q, num_k = visible.shape[1], visible.shape[2]
    scores = torch.matmul(q_rows, k.transpose(-1, -2)).mul_(sm_scale)
    scores = scores.div_(logit_cap).tanh_().mul_(logit_cap)
    scores = scores.view(n, num_kv_heads, rows // num_q, num_q, num_k)
    scores.masked_fill_(~visible[:, None, None], float("-inf"))
    probs = torch.softmax(scores, dim=-1).view(n, num_kv_heads, rows, num_k)
    return torch.matmul(probs, v)


def _gather_heads(buffer: KVBuffer, slots: Tensor) -> Tensor:
    """Pool rows for ``slots [N, Sk]`` as float32 ``[N, Hkv, Sk, D]`` (a strided view).

    Whole slot rows (all heads of a token) are gathered in one index_select: fewer, larger
    copies than one row per head, and SDPA reads the transposed view as it is. A quantized
    pool's rows are dequantized here, as they are gathered."""
    return gather_rows(buffer, slots).transpose(1, 2)


class GroupPlan(NamedTuple):
    """Everything about one padded group that does not depend on the layer."""

    q_rows: Tensor  # [N, Sq] rows of q (padded rows repeat a real one)
    real: Tensor  # flat indices into [N * Sq] of the real query rows
    out_rows: Tensor  # rows of the output the real query rows answer
    slots: Tensor  # [N, Sk] pool slots of the keys (padding clamped to a real slot)
    visible: Tensor  # [N, Sq, Sk] bool


class AttentionPlan(NamedTuple):
    """A batch's attention layout, built once per forward pass and reused by every layer
    with the same sliding window (the metadata is the same for all of them)."""

    shape: AttentionShape
    sliding_window: int | None
    groups: tuple[GroupPlan, ...]


def plan_attention(
    pieces: Sequence[AttentionPiece],
    shape: AttentionShape,
    req_to_token: Tensor,
    sliding_window: int | None,
) -> AttentionPlan:
    """Group the pieces into padded batches and precompute their indices and masks."""
    check_options(sliding_window, None)
    groups = tuple(
        _plan_group(group, req_to_token, sliding_window) for group in group_pieces(pieces, shape)
    )
    return AttentionPlan(shape, sliding_window, groups)


def _plan_group(
    pieces: Sequence[AttentionPiece], req_to_token: Tensor, sliding_window: int | None
) -> GroupPlan:
    device = req_to_token.device
    meta = torch.tensor(
        [[p.req_row, p.q_offset, p.num_queries, p.first_pos, p.key_start] for p in pieces],
        dtype=torch.int64,
    ).to(device)
    req_row, q_offset, num_queries, first_pos, key_start = meta.unbind(1)
    max_q = max(p.num_queries for p in pieces)
    max_k = max(p.num_keys for p in pieces)

    # Padded query rows repeat the piece's last query so that no row sees zero keys.
    q_index = torch.arange(max_q, device=device)[None, :]
    is_real_query = q_index < num_queries[:, None]
    q_index = torch.minimum(q_index, num_queries[:, None] - 1)
    q_rows = q_offset[:, None] + q_index
    q_pos = first_pos[:, None] + q_index

    # Padded keys sit past the last query's position, so the causal test hides them;
    # their slot lookup is clamped to a real position.
    k_pos = key_start[:, None] + torch.arange(max_k, device=device)[None, :]
    last_pos = (first_pos + num_queries - 1)[:, None]
    slots = req_to_token[req_row[:, None], torch.minimum(k_pos, last_pos)]

    visible = k_pos[:, None, :] <= q_pos[:, :, None]
    if sliding_window is not None:
        visible &= k_pos[:, None, :] > q_pos[:, :, None] - sliding_window
    real = is_real_query.flatten().nonzero().flatten()
    return GroupPlan(q_rows, real, q_rows.flatten()[real], slots, visible)


def _run_group(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    group: GroupPlan,
    sm_scale: float,
    logit_cap: float | None,
) -> Tensor:
    """Float32 outputs for the group's real query rows (in `group.out_rows` order)."""
    out = attend(
        q[group.q_rows].float(),
        _gather_heads(k_buffer, group.slots),
        _gather_heads(v_buffer, group.slots),
        group.visible,
        sm_scale,
        logit_cap,
    )
    return out.flatten(0, 1)[group.real]


def run_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    plan: AttentionPlan,
    *,
    sm_scale: float,
    logit_cap: float | None,
) -> Tensor:
    """Answer every query row covered by the plan; returns ``[T, Hq, D]`` in ``q.dtype``.

    The plan's pieces must cover each row of ``q`` exactly once.
    """
    shape = check_shapes(q, k_buffer, v_buffer)
    if shape != plan.shape:
        raise ValueError(f"plan made for {plan.shape}, got q/k/v of {shape}")
    check_options(plan.sliding_window, logit_cap)
    out = torch.empty_like(q)
    for group in plan.groups:
        values = _run_group(q, k_buffer, v_buffer, group, sm_scale, logit_cap)
        out.index_copy_(0, group.out_rows, values.to(q.dtype))
    return out
