"""Decode attention reference: one new query per request over its cached context."""

from __future__ import annotations

from torch import Tensor

from sglc.kernels.attention_common import IndexLike, make_piece, run_attention, to_int_list


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
) -> Tensor:
    """Attention of each request's newest token over its cached context.

    ``q[B, Hq, D]`` is request b's token at position ``seq_lens[b] - 1``; its own K/V must
    already be in the pool. It sees key positions ``0 .. seq_lens[b] - 1`` of row
    ``req_pool_indices[b]``, limited to the last ``sliding_window`` positions when a window
    is set. Scores, logit cap, float32 softmax and GQA as in ``extend_attention``; requests
    are gathered into padded batches. Returns ``[B, Hq, D]`` in ``q.dtype``.
    """
    rows, lens = to_int_list(req_pool_indices), to_int_list(seq_lens)
    if not len(rows) == len(lens) == q.shape[0]:
        raise ValueError(
            f"q has {q.shape[0]} rows, req_pool_indices {len(rows)}, seq_lens {len(lens)}"
        )
    if any(n < 1 for n in lens):
        raise ValueError(f"every seq_len must be >= 1, got {lens}")
    pieces = [
        make_piece(row, b, 1, seq_len - 1, sliding_window)
        for b, (row, seq_len) in enumerate(zip(rows, lens, strict=True))
    ]
    return run_attention(
        q,
        k_buffer,
        v_buffer,
        req_to_token,
        pieces,
        sm_scale=sm_scale,
        sliding_window=sliding_window,
        logit_cap=logit_cap,
    )
