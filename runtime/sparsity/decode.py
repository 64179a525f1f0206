"""The label cache beside the KV pool, and one forward pass's Double Sparsity decode.

The labels are kept per token, written when K is stored, rather than gathered from the KV
pool at each step: a gather of R of each token's D channels reads whole rows of the pool
(the channels are scattered across them), so it would cost what dense attention's reads
cost; a contiguous `[num_slots, Hkv, R]` buffer is what makes scoring the context cheap.
Every stored token gets its label, whatever its request asks for: a prefix cached by a
dense request may be read by a sparse one later.

    LabelCache.buffers[layer]   [num_slots, Hkv, R]   same slots as the KV pool
    LabelCache.channels[layer]  [Hkv, R] int64        each head's top-R calibrated channels

A decode batch splits into the requests that attend densely (no attention_sparsity, or a
context no longer than their selection) and those that attend to their selected tokens;
the dense ones go through the backend's decode attention as a batch of their own, so a
sparse request never changes their outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sglc.kernels import AttentionShape, KernelOps
from sglc.kernels.sparse_attention import sparse_decode_attention, store_labels
from sglc.runtime.sparsity.calibration import Calibration

NUM_RECENT_TOKENS = 4  # the most recent tokens are always among those selected


def num_channels(ratio: float, head_dim: int) -> int:
    """Label channels a channel ratio asks for: at least one."""
    return max(1, round(ratio * head_dim))


def num_selected(token_ratio: float, context_len: int, min_tokens: int) -> int:
    """Tokens a step attends to over `context_len` visible tokens (may exceed it)."""
    return max(min_tokens, math.ceil(token_ratio * context_len))


class LabelCache:
    """Each layer's labels (K at its top calibrated channels) for every slot of the pool."""

    def __init__(self, calibration: Calibration, label_ratio: float, num_slots: int,
                 dtype: torch.dtype, device: torch.device, min_tokens: int) -> None:
        model = calibration.model
        self.min_tokens = min_tokens
        self.head_dim = model.head_dim
        self.num_label_channels = num_channels(label_ratio, model.head_dim)
        width = self.num_label_channels
        self.channels = [torch.tensor([head[:width] for head in layer], dtype=torch.int64,
                                      device=device) for layer in calibration.channels]
        self.buffers = [torch.zeros((num_slots, model.num_kv_heads, width), dtype=dtype,
                                    device=device) for _ in range(model.num_layers)]

    def store(self, layer_id: int, slots: torch.Tensor, k: torch.Tensor) -> None:
        """Write the labels of new keys `k [T, Hkv, D]` stored in `slots`."""
        store_labels(self.buffers[layer_id], self.channels[layer_id], slots, k)

    @property
    def num_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.buffers)


@dataclass(frozen=True)
class _Split:
    """A decode batch's requests by how they attend under one sliding window."""

    dense: torch.Tensor  # batch indices
    dense_rows: list[int]
    dense_lens: list[int]
    dense_plan: object | None
    sparse: torch.Tensor
    sparse_rows: list[int]
    sparse_lens: list[int]
    selected: list[int]
    channels: list[int]


class SparseStep:
    """One forward pass's labels and (in decode) its sparse requests. `ratios[b]` is
    request b's (token_ratio, channel_ratio), None for dense; None as a whole outside
    decode."""

    def __init__(self, labels: LabelCache, ops: KernelOps, req_to_token: torch.Tensor,
                 rows: list[int], seq_lens: list[int],
                 ratios: list[tuple[float, float] | None] | None) -> None:
        self.labels = labels
        self.ops = ops
        self.req_to_token = req_to_token
        self.rows, self.seq_lens = rows, seq_lens
        self.ratios = ratios if ratios and any(r is not None for r in ratios) else None
        self._splits: dict[int | None, _Split | None] = {}

    def store(self, layer_id: int, slots: torch.Tensor, k: torch.Tensor) -> None:
        self.labels.store(layer_id, slots, k)

    def decode_attention(self, layer_id: int, q: torch.Tensor, k_buffer, v_buffer, *,
                         sm_scale: float, sliding_window: int | None) -> torch.Tensor | None:
        """The batch's decode attention with its sparse requests attending sparsely; None
        when every request attends densely this step (the caller's usual path)."""
        if self.ratios is None:
            return None
        split = self._split(q, k_buffer, sliding_window)
        if split is None:
            return None
        out = torch.empty_like(q)
        if split.dense_rows:
            dense = self.ops.decode_attention(
                q.index_select(0, split.dense), k_buffer, v_buffer, self.req_to_token,
                split.dense_rows, split.dense_lens, sm_scale=sm_scale,
                sliding_window=sliding_window, plan=split.dense_plan)
            out.index_copy_(0, split.dense, dense)
        sparse = sparse_decode_attention(
            q.index_select(0, split.sparse), k_buffer, v_buffer, self.labels.buffers[layer_id],
            self.labels.channels[layer_id], self.req_to_token, split.sparse_rows,
            split.sparse_lens, split.selected, split.channels, sm_scale=sm_scale,
            num_recent=NUM_RECENT_TOKENS, sliding_window=sliding_window)
        out.index_copy_(0, split.sparse, sparse)
        return out

    def _split(self, q: torch.Tensor, k_buffer, window: int | None) -> _Split | None:
        if window in self._splits:
            return self._splits[window]
        dense: list[int] = []
        sparse: list[int] = []
        selected, channels = [], []
        for b, (ratio, seq_len) in enumerate(zip(self.ratios, self.seq_lens, strict=True)):
            visible = seq_len if window is None else min(seq_len, window)
            count = None if ratio is None else num_selected(ratio[0], visible, self.labels.min_tokens)
            if count is None or count >= visible:
                dense.append(b)
                continue
            sparse.append(b)
            selected.append(count)
            channels.append(num_channels(ratio[1], self.labels.head_dim))
        split = None
        if sparse:
            dense_rows = [self.rows[b] for b in dense]
            dense_lens = [self.seq_lens[b] for b in dense]
            plan = None
            if dense:
                shape = AttentionShape(q.shape[1], k_buffer.shape[1], q.shape[2])
                plan = self.ops.plan_decode(self.req_to_token, dense_rows, dense_lens, shape,
                                            sliding_window=window)
            device = q.device
            split = _Split(torch.tensor(dense, dtype=torch.int64, device=device), dense_rows,
                           dense_lens, plan, torch.tensor(sparse, dtype=torch.int64,
                                                          device=device),
                           [self.rows[b] for b in sparse], [self.seq_lens[b] for b in sparse],
                           selected, channels)
        self._splits[window] = split
        return split
