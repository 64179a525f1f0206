"""Attention backends the model layers call: paged (serving) and dense causal (training, tests).

A layer computes its new q, k, v for the flattened tokens of a batch and hands them to
`attn.attend(...)`; the backend decides where K/V live and which keys each query sees.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from sglc.kernels import AttentionShape, KernelOps
from sglc.runtime.core import ForwardMode

if TYPE_CHECKING:
    from sglc.runtime.sparsity.decode import SparseStep


class BaseAttention(ABC):
    """Contract: `attend` gets q `[T, Hq, D]`, k/v `[T, Hkv, D]` of the batch's new tokens
    (RoPE applied) for layer `layer_id`, and returns the attention output `[T, Hq, D]`
    in q's dtype. Each query sees only keys of its own sequence, causally, within
    `sliding_window` tokens (counting itself) when that is set.

    MixAttention: k and v are None in a layer that reads an earlier layer's K/V
    (`ModelConfig.kv_sources`); the backend then attends over the K/V its source layer
    handed it in this forward pass (and, when serving, cached before it)."""

    @abstractmethod
    def attend(
        self,
        layer_id: int,
        q: torch.Tensor,
        k: torch.Tensor | None,
        v: torch.Tensor | None,
        *,
        sm_scale: float,
        sliding_window: int | None,
    ) -> torch.Tensor: ...


class DenseCausalAttention(BaseAttention):
    """`batch_size` sequences of `seq_len` tokens each, flattened row-major, no KV cache.
    Differentiable; used for training and as a reference. `kv_sources`: the model's
    MixAttention KV sharing (`ModelConfig.kv_sources`), None when every layer owns its K/V."""

    def __init__(self, batch_size: int, seq_len: int,
                 kv_sources: tuple[int | None, ...] | None = None) -> None:
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.kv_sources = kv_sources
        self._shared_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def attend(self, layer_id, q, k, v, *, sm_scale, sliding_window):  # noqa: D102
        if k is None:
            k, v = self._shared_kv[self.kv_sources[layer_id]]
        elif self.kv_sources is not None:
            self._shared_kv[layer_id] = (k, v)
        b, t = self.batch_size, self.seq_len
        qh, kh, vh = (x.view(b, t, x.shape[1], x.shape[2]).transpose(1, 2) for x in (q, k, v))
        pos = torch.arange(t, device=q.device)
        mask = pos[None, :] <= pos[:, None]
        if sliding_window is not None:
            mask &= pos[None, :] > pos[:, None] - sliding_window
        if q.device.type == "cpu" and t <= _MATMUL_ATTENTION_MAX_LEN:
            out = _matmul_attention(qh, kh, vh, mask, sm_scale)
        else:
            out = F.scaled_dot_product_attention(
                qh, kh, vh, attn_mask=mask, scale=sm_scale, enable_gqa=qh.shape[1] != kh.shape[1]
            )
        return out.transpose(1, 2).reshape(b * t, q.shape[1], q.shape[2])


# Training batches are short sequences; on CPU, SDPA's flash backward for them is slower
# than plain matmuls over the [T, T] scores, which are small there.
_MATMUL_ATTENTION_MAX_LEN = 256


def _matmul_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, sm_scale: float
) -> torch.Tensor:
    """Attention as matmuls (softmax in float32), GQA by repeating K/V heads; differentiable."""
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) * sm_scale
    probs = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)
    return probs.to(v.dtype) @ v


# (layer_id, q, k_buffer, sm_scale, sliding_window) -> None: see ForwardBatch.score_sink
ScoreSink = Callable[[int, torch.Tensor, torch.Tensor, float, "int | None"], None]


@dataclass
class ForwardBatch:
    """Tensors describing one forward pass over the KV pool.

    Tokens of the batch are flattened in request order. For request b, the new tokens
    occupy columns prefix_lens[b] .. seq_lens[b]-1 of its `req_to_token` row and their KV
    goes to `out_cache_loc` (slots, same order as the tokens). Columns are the tokens'
    positions unless a KV eviction policy compacted the row (`positions` are then larger).
    """

    mode: ForwardMode
    input_ids: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64
    out_cache_loc: torch.Tensor  # [T] int64 slots for the new tokens' KV
    req_pool_indices: torch.Tensor  # [B] int64 rows of req_to_token
    prefix_lens: torch.Tensor  # [B] int64 tokens already in the pool
    extend_lens: torch.Tensor  # [B] int64 new tokens (1 each in decode)
    seq_lens: torch.Tensor  # [B] int64 prefix + new
    logits_indices: torch.Tensor  # [N] int64 positions in the flattened batch to compute logits for
    # the same metadata as Python lists: attention planning reads these, no device sync
    rows_list: list[int] = field(default_factory=list)
    prefix_lens_list: list[int] = field(default_factory=list)
    extend_lens_list: list[int] = field(default_factory=list)
    # H2O: called by each layer with (layer_id, q, k_buffer, sm_scale, sliding_window) after
    # the new K/V are stored, to accumulate attention per key; None otherwise
    score_sink: ScoreSink | None = None
    # Double Sparsity: stores each new token's label and runs the sparse requests' decode
    # attention (sglc.runtime.sparsity); None when the engine keeps no label cache
    sparsity: SparseStep | None = None

    @property
    def seq_lens_list(self) -> list[int]:
        return [p + e for p, e in zip(self.prefix_lens_list, self.extend_lens_list, strict=True)]

    @property
    def batch_size(self) -> int:
        return int(self.req_pool_indices.shape[0])


class SlidingSlots(NamedTuple):
    """The KV pool's sliding slot space as attention sees it: which layers' buffers are
    indexed by it, and its request-to-slot table (`ReqToTokenPool.req_to_sliding`)."""

    layers: frozenset[int]
    req_to_token: torch.Tensor


class PagedAttention(BaseAttention):
    """Serving attention: store the new K/V into the pool, then attend through req_to_token.

    The attention layout of the batch is planned once per sliding-window value (and slot
    space) and reused by every layer of the forward pass. `sliding`: the layers whose
    buffers live in the sliding slot space (stored and read through its table), if any."""

    def __init__(
        self,
        ops: KernelOps,
        k_buffers: list[torch.Tensor],
        v_buffers: list[torch.Tensor],
        req_to_token: torch.Tensor,
        batch: ForwardBatch,
        sliding: SlidingSlots | None = None,
    ) -> None:
        self.ops = ops
        self.k_buffers = k_buffers
        self.v_buffers = v_buffers
        self.req_to_token = req_to_token
        self.batch = batch
        self.sliding = sliding
        self._sliding_loc: torch.Tensor | None = None  # the new tokens' sliding slots
        self._plans: dict[tuple[int | None, bool], object | None] = {}
        self._rows = batch.rows_list
        self._seq_lens = batch.seq_lens_list
        self._prefix_lens = batch.prefix_lens_list
        self._extend_lens = batch.extend_lens_list

    def _plan(self, q: torch.Tensor, k_buf: torch.Tensor, window: int | None,
              table: torch.Tensor):
        key = (window, table is not self.req_to_token)
        if key not in self._plans:
            shape = AttentionShape(q.shape[1], k_buf.shape[1], q.shape[2])
            if self.batch.mode is ForwardMode.DECODE:
                plan = self.ops.plan_decode(
                    table, self._rows, self._seq_lens, shape, sliding_window=window
                )
            else:
                plan = self.ops.plan_extend(
                    table, self._rows, self._prefix_lens, self._extend_lens, shape,
                    sliding_window=window,
                )
            self._plans[key] = plan
        return self._plans[key]

    def _slots(self, layer_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's request-to-slot table and the new tokens' slots in it."""
        b, sliding = self.batch, self.sliding
        if sliding is None or layer_id not in sliding.layers:
            return self.req_to_token, b.out_cache_loc
        if self._sliding_loc is None:
            # columns are positions: a pool with a sliding space runs no kv_policy
            rows = b.req_pool_indices if b.mode is ForwardMode.DECODE else \
                b.req_pool_indices.repeat_interleave(b.extend_lens,
                                                     output_size=b.positions.shape[0])
            self._sliding_loc = sliding.req_to_token[rows, b.positions]
        return sliding.req_to_token, self._sliding_loc

    def attend(self, layer_id, q, k, v, *, sm_scale, sliding_window):  # noqa: D102
        b = self.batch
        # NOTE: a layer sharing K/V (k is None) finds its source's buffers at its own index
        k_buf, v_buf = self.k_buffers[layer_id], self.v_buffers[layer_id]
        table, out_loc = self._slots(layer_id)
        if k is not None:
            self.ops.store_kv(k_buf, v_buf, out_loc, k, v)
        if b.sparsity is not None:
            b.sparsity.store(layer_id, b.out_cache_loc, k)
            if b.mode is ForwardMode.DECODE:
                out = b.sparsity.decode_attention(layer_id, q, k_buf, v_buf, sm_scale=sm_scale,
                                                  sliding_window=sliding_window)
                if out is not None:
                    return out
        plan = self._plan(q, k_buf, sliding_window, table)
        if b.score_sink is not None:
            b.score_sink(layer_id, q, k_buf, sm_scale, sliding_window)
        if b.mode is ForwardMode.DECODE:
            return self.ops.decode_attention(
                q, k_buf, v_buf, table, self._rows, self._seq_lens,
                sm_scale=sm_scale, sliding_window=sliding_window, plan=plan,
            )
        return self.ops.extend_attention(
            q, k_buf, v_buf, table, self._rows, self._prefix_lens,
            self._extend_lens, sm_scale=sm_scale, sliding_window=sliding_window, plan=plan,
        )
