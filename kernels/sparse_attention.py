"""Double Sparsity decode attention (Yang et al., "Post-Training Sparse Attention with Double
Sparsity"), PyTorch reference.

Each KV head has a few *outlier channels* (found offline by `sglc calibrate`) whose products
q_c * k_c carry most of q . k. A *label cache* keeps every token's K restricted to those
channels, contiguous, beside the KV pool::

    channels [Hkv, R] int64       kv head h's label channels, most important first
    labels   [num_slots, Hkv, R]  labels[s, h, i] = K[s, h, channels[h, i]]

A decode query of request b first scores its context from the labels alone (its first
``num_channels[b]`` label channels): ``approx[h, j] = max over the query heads g of kv head h
of q[g, channels[h]] . labels[slot_j, h]``. Per kv head it keeps the ``num_selected[b]``
best-scored tokens (always including the ``num_recent`` most recent), then runs exact
attention (float32 softmax, ``sm_scale``) over those tokens' full K and V. Reading R of D
channels for every token plus D channels for the selected ones is what makes it cheaper
than dense attention over long contexts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sglc.kernels.kv_quant import KVBuffer, QuantizedKV, gather_rows


def store_labels(labels: Tensor, channels: Tensor, loc: Tensor, k: Tensor) -> None:
    """Write the label channels of new keys ``k [T, Hkv, D]`` into slots `loc` of `labels`."""
    index = channels.unsqueeze(0).expand(k.shape[0], -1, -1)
    labels.index_copy_(0, loc, torch.gather(k, 2, index).to(labels.dtype))


def sparse_decode_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    labels: Tensor,
    channels: Tensor,
    req_to_token: Tensor,
    req_pool_indices: list[int],
    seq_lens: list[int],
    num_selected: list[int],
    num_channels: list[int],
    *,
    sm_scale: float,
    num_recent: int,
    sliding_window: int | None = None,
) -> Tensor:
    """Attention of each request's newest token (``q[B, Hq, D]``, at position
    ``seq_lens[b] - 1`` of row ``req_pool_indices[b]``, its K/V and label already stored)
    over the ``num_selected[b]`` tokens of its context (the last ``sliding_window`` positions
    when set) that its first ``num_channels[b]`` label channels score best, the most recent
    ``num_recent`` always among them. A request whose context has at most ``num_selected[b]``
    tokens attends to all of them. Returns ``[B, Hq, D]`` in ``q.dtype``."""
    out = torch.empty_like(q)
    num_kv_heads, head_dim = k_buffer.shape[1], k_buffer.shape[2]
    group = q.shape[1] // num_kv_heads
    heads = torch.arange(num_kv_heads, device=q.device)[:, None]
    for b, (row, seq_len) in enumerate(zip(req_pool_indices, seq_lens, strict=True)):
        start = 0 if sliding_window is None else max(0, seq_len - sliding_window)
        slots = req_to_token[row, start:seq_len]
        query = q[b].float().view(num_kv_heads, group, head_dim)
        if num_selected[b] < slots.numel():
            chosen = _select(query, labels, channels, slots, num_selected[b], num_channels[b],
                             num_recent)  # [Hkv, k] slots
        else:
            chosen = slots.expand(num_kv_heads, -1)
        keys, values = _gather(k_buffer, chosen, heads), _gather(v_buffer, chosen, heads)
        scores = torch.matmul(query, keys.transpose(1, 2)).mul_(sm_scale)  # [Hkv, G, k]
        probs = torch.softmax(scores, dim=-1)
        out[b] = torch.matmul(probs, values).view(-1, head_dim).to(q.dtype)
    return out


def _select(query: Tensor, labels: Tensor, channels: Tensor, slots: Tensor, num_selected: int,
            num_channels: int, num_recent: int) -> Tensor:
    """The `num_selected` slots per kv head with the best approximate scores ``[Hkv, k]``."""
    index = channels[:, None, :num_channels].expand(-1, query.shape[1], -1)
    query_labels = torch.gather(query, 2, index)  # [Hkv, G, c]
    token_labels = labels.index_select(0, slots)[:, :, :num_channels].float()  # [n, Hkv, c]
    approx = torch.einsum("hgc,nhc->hgn", query_labels, token_labels).amax(dim=1)  # [Hkv, n]
    recent = min(num_recent, num_selected)
    if recent:
        approx[:, approx.shape[1] - recent:] = float("inf")
    best = approx.topk(num_selected, dim=1, sorted=False).indices
    return slots[best]


def _gather(buffer: KVBuffer, chosen: Tensor, heads: Tensor) -> Tensor:
    """``buffer[chosen[h, j], h]`` as float32 ``[Hkv, k, D]``: each kv head's own tokens."""
    if isinstance(buffer, QuantizedKV):  # dequantizes whole rows, then keeps each head's own
        rows = gather_rows(buffer, chosen)  # [Hkv, k, Hkv, D]
        return rows[heads.squeeze(1), :, heads.squeeze(1)]
    num_kv_heads, head_dim = buffer.shape[1], buffer.shape[2]
    # one index_select over (slot, head) rows: much faster on CPU than advanced indexing
    flat = (chosen * num_kv_heads + heads).view(-1)
    rows = buffer.reshape(-1, head_dim).index_select(0, flat)
    return rows.view(num_kv_heads, -1, head_dim).float()
