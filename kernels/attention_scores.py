"""Accumulated attention per key, the statistic H2O evicts by (Zhang et al., NeurIPS'23).

For each request, the softmax attention probabilities its new queries give each of its keys,
summed over the queries and over all query heads, are added to that key's entry of
``scores [max_reqs, max_context_len]`` (float32), a table laid out like ``req_to_token``::

    scores[row, j] += sum over new queries i and heads h of softmax_j(q_ih . k_jh * sm_scale)

Keys, masks and metadata are those of `extend_attention` (decode is the case of one query
per request): query i of request b sits at column ``prefix_lens[b] + i`` of row
``req_pool_indices[b]`` and sees columns ``j <= prefix_lens[b] + i`` (and, with a window,
``j > prefix_lens[b] + i - sliding_window``). Flash-style kernels never materialise the
probabilities, so this reference recomputes them; it runs beside the attention op of any
backend, for the requests whose KV is evicted by accumulated attention only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sglc.kernels.kv_quant import KVBuffer, gather_rows


def accumulate_key_scores(
    q: Tensor,
    k_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: list[int],
    prefix_lens: list[int],
    extend_lens: list[int],
    scores: Tensor,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
) -> None:
    """Add each request's attention probabilities per key into `scores` (in place)."""
    num_q_heads, num_kv_heads = q.shape[1], k_buffer.shape[1]
    group = num_q_heads // num_kv_heads
    offset = 0
    for row, prefix, extend in zip(req_pool_indices, prefix_lens, extend_lens, strict=True):
        if extend == 0:
            continue
        seq_len = prefix + extend
        keys = gather_rows(k_buffer, req_to_token[row, :seq_len])  # [L, Hkv, D] float32
        if group > 1:
            keys = keys.repeat_interleave(group, dim=1)
        queries = q[offset : offset + extend].float()  # [n, Hq, D]
        logits = torch.einsum("nhd,lhd->hnl", queries, keys) * sm_scale
        query_cols = torch.arange(prefix, seq_len, device=q.device)[:, None]
        key_cols = torch.arange(seq_len, device=q.device)[None, :]
        visible = key_cols <= query_cols
        if sliding_window is not None:
            visible &= key_cols > query_cols - sliding_window
        probs = torch.softmax(logits.masked_fill(~visible, float("-inf")), dim=-1)
        scores[row, :seq_len] += probs.sum(dim=(0, 1))
        offset += extend
