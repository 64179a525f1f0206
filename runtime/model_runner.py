"""ModelRunner: turn a ScheduledBatch into tensors, run the model, return the logits needed."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sglc.kernels import KernelOps
from sglc.runtime.core import ForwardMode
from sglc.runtime.lora.pool import LoraPool
from sglc.runtime.mem.kv_eviction import KeyScores
from sglc.runtime.mem.kv_pool import KVPool, ReqToTokenPool
from sglc.runtime.models.attention import ForwardBatch, PagedAttention, ScoreSink, SlidingSlots
from sglc.runtime.models.compiled_decode import CompiledDecode
from sglc.runtime.models.lora import NO_ADAPTER, LoraBatch, LoraSegments
from sglc.runtime.req import Req, ScheduledBatch
from sglc.runtime.sparsity.decode import LabelCache, SparseStep

_MAX_COLUMN_SETS = 4  # lm_head row subsets kept for column-restricted logits


@dataclass
class LogitsLayout:
    """Which rows of the returned logits belong to whom.

    `sample_rows[i]` is the row to sample request i of the batch from (None: no sample).
    `score_rows[i]` is (first row, token ids scored by rows first.. first+len-1) or None.
    """

    sample_rows: list[int | None]
    score_rows: list[tuple[int, list[int]] | None]


class ModelRunner:
    def __init__(
        self, model: nn.Module, ops: KernelOps, kv_pool: KVPool, req_pool: ReqToTokenPool,
        device: torch.device, lora_pool: LoraPool | None = None,
        evicts: bool = False, key_scores: KeyScores | None = None,
        labels: LabelCache | None = None,
    ) -> None:
        self.model = model
        self.ops = ops
        self.kv_pool = kv_pool
        self.req_pool = req_pool
        self.device = device
        self.lora_pool = lora_pool  # None: the engine serves no LoRA adapters
        self.evicts = evicts  # a kv_policy may compact rows: columns are not positions
        self.key_scores = key_scores  # H2O: where attention per key accumulates
        self.labels = labels  # Double Sparsity's label cache; None: not served
        # vocabulary column sets -> (their ids, those lm_head rows), least recently used first
        self._column_weights: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        # decode batches in one compiled call where the model allows (CPU backend; see
        # CompiledDecode); False: always the per-op path. Built at the first decode step.
        self.compiled_decode = True
        self._compiled: CompiledDecode | None = None
        self.compiled_decode_off_reason = ""

    @torch.inference_mode()
    def forward(
        self, batch: ScheduledBatch, logit_columns: np.ndarray | None = None, *,
        compact: bool = False,
    ) -> tuple[torch.Tensor, LogitsLayout]:
        """The batch's logits rows (see LogitsLayout). With `logit_columns`, only those
        vocabulary columns are computed and every other one is -inf: for batches whose
        requests are all constrained, the columns their masks allow. `compact` returns just
        those columns ([rows, len(logit_columns)]) instead of full-width rows."""
        if batch.mode is ForwardMode.DECODE and self._use_compiled() and (
                self.lora_pool is None or not any(r.params.lora for r in batch.reqs)):
            return self._forward_compiled(batch, logit_columns, compact)
        fb, layout = self.prepare(batch)
        if self.key_scores is not None:
            fb.score_sink = self._score_sink(fb)
        if self.labels is not None:
            ratios = ([r.params.attention_sparsity for r in batch.reqs]
                      if batch.mode is ForwardMode.DECODE else None)
            fb.sparsity = SparseStep(self.labels, self.ops, self.req_pool.req_to_token,
                                     fb.rows_list, fb.seq_lens_list, ratios)
        # the last layer computes only the rows whose logits are wanted (in decode: all)
        keep = None if batch.mode is ForwardMode.DECODE else fb.logits_indices
        lora = self._lora_batch(batch, layout) if self.lora_pool is not None else None
        hidden = self.run_model(fb, keep, lora)
        if logit_columns is None:
            return self.model.compute_logits(hidden), layout
        return self._column_logits(hidden, logit_columns, compact), layout

    def _forward_compiled(self, batch: ScheduledBatch, logit_columns: np.ndarray | None,
                          compact: bool) -> tuple[torch.Tensor, LogitsLayout]:
        """`forward` of a decode batch through the compiled step: its few inputs straight
        from the requests and the CPU `req_to_token` (no ForwardBatch)."""
        ids, positions, rows, cols = self._decode_arrays(batch)
        n = len(ids)
        out = self._compiled.run(
            *(torch.from_numpy(a) for a in (ids, positions)), self._decode_slots(rows, cols),
            self.req_pool.req_to_token, torch.from_numpy(rows), torch.from_numpy(cols + 1),
            logits=logit_columns is None)
        layout = LogitsLayout(list(range(n)), [None] * n)
        if logit_columns is None:
            return out, layout
        return self._column_logits(out, logit_columns, compact), layout

    def _use_compiled(self) -> bool:
        """Whether this decode batch runs as one compiled call (built on first use)."""
        if not self.compiled_decode or self.key_scores is not None or self.labels is not None \
                or type(self).run_model is not ModelRunner.run_model or self.req_pool.host is None:
            return False
        if self._compiled is None:
            self._compiled, why = CompiledDecode.build(self.model, self.kv_pool,
                                                       self.ops.decode_attention)
            if self._compiled is None:
                self.compiled_decode, self.compiled_decode_off_reason = False, why
                return False
        return self._compiled.usable

    def run_model(self, fb: ForwardBatch, keep: torch.Tensor | None,
                  lora: LoraBatch | None) -> torch.Tensor:
        """The model's final hidden states of rows `keep` (all if None) over the KV pool."""
        sliding = self.req_pool.req_to_sliding
        attn = PagedAttention(
            self.ops, self.kv_pool.k_buffers, self.kv_pool.v_buffers,
            self.req_pool.req_to_token, fb,
            None if sliding is None else SlidingSlots(self.kv_pool.sliding_layers, sliding),
        )
        return self.model(fb.input_ids, fb.positions, attn, keep, lora)

    def _score_sink(self, fb: ForwardBatch) -> ScoreSink:
        """H2O: each layer adds its attention probabilities per key to the score table."""
        table, req_to_token = self.key_scores.table, self.req_pool.req_to_token

        def sink(layer_id: int, q: torch.Tensor, k_buffer: torch.Tensor, sm_scale: float,
                 sliding_window: int | None) -> None:
            self.ops.accumulate_key_scores(
                q, k_buffer, req_to_token, fb.rows_list, fb.prefix_lens_list,
                fb.extend_lens_list, table, sm_scale=sm_scale, sliding_window=sliding_window)

        return sink

    def _columns(self, batch: ScheduledBatch) -> list[int]:
        """Each request's first new column of its row (its first new position unless a
        kv_policy compacted the row)."""
        if not self.evicts:
            return batch.extend_starts
        return [s - r.kv.num_evicted_tokens for s, r in zip(batch.extend_starts, batch.reqs,
                                                              strict=True)]

    def _lora_batch(self, batch: ScheduledBatch, layout: LogitsLayout) -> LoraBatch | None:
        """The batch's adapters, paged into the pool; None when every request uses the base
        model."""
        names = [r.params.lora for r in batch.reqs]
        if not any(names):
            return None
        slot_of = self.lora_pool.prepare(n for n in names if n is not None)
        slots = [NO_ADAPTER if n is None else slot_of[n] for n in names]
        rows = LoraSegments.of(slots, batch.extend_lens, self.device)
        kept = None
        if batch.mode is not ForwardMode.DECODE:  # the last layer keeps the logits rows
            num_kept = [(sample is not None) + (len(score[1]) if score else 0)
                        for sample, score in zip(layout.sample_rows, layout.score_rows,
                                                 strict=True)]
            kept = LoraSegments.of(slots, num_kept, self.device)
        return LoraBatch(self.ops, self.lora_pool.weights, rows, kept)

    def _column_logits(
        self, hidden: torch.Tensor, columns: np.ndarray, compact: bool = False
    ) -> torch.Tensor:
        weight = self.model.lm_head.weight
        key = hashlib.blake2b(columns.tobytes(), digest_size=16).digest()
        hit = self._column_weights.pop(key, None)
        if hit is None:
            index = torch.from_numpy(columns).to(weight.device)
            hit = (index, weight.index_select(0, index))
            while len(self._column_weights) >= _MAX_COLUMN_SETS:
                self._column_weights.pop(next(iter(self._column_weights)))
        self._column_weights[key] = hit  # most recently used last
        index, rows = hit
        if compact:
            return (hidden @ rows.T).float()
        logits = torch.full((hidden.shape[0], weight.shape[0]), -math.inf, device=hidden.device)
        logits[:, index] = (hidden @ rows.T).float()
        return logits

    def prepare(self, batch: ScheduledBatch) -> tuple[ForwardBatch, LogitsLayout]:
        if batch.mode is ForwardMode.DECODE:
            return self._prepare_decode(batch)
        return self._prepare_extend(batch)

    def _decode_arrays(self, batch: ScheduledBatch) -> tuple[np.ndarray, ...]:
        """A decode batch's input ids, positions, req_to_token rows and new columns (int64)."""
        reqs, n = batch.reqs, len(batch.reqs)
        ids = np.fromiter((r.output_ids[-1] if r.output_ids else r.prompt_ids[-1]
                           for r in reqs), np.int64, n)
        rows = np.fromiter((r.kv.row for r in reqs), np.int64, n)
        return (ids, np.array(batch.extend_starts, dtype=np.int64), rows,
                np.array(self._columns(batch), dtype=np.int64))

    def _decode_slots(self, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """The KV slots of (row, column) pairs of req_to_token (on CPU read through numpy)."""
        host = self.req_pool.host
        if host is not None:
            return torch.from_numpy(host[rows, cols])
        req_to_token = self.req_pool.req_to_token
        return req_to_token[torch.from_numpy(rows).to(req_to_token.device),
                            torch.from_numpy(cols).to(req_to_token.device)]

    def _prepare_decode(self, batch: ScheduledBatch) -> tuple[ForwardBatch, LogitsLayout]:
        dev = self.device
        ids, positions, rows, cols = self._decode_arrays(batch)
        n = len(ids)
        positions_t = torch.from_numpy(positions).to(dev)
        cols_t = torch.from_numpy(cols).to(dev) if self.evicts else positions_t
        fb = ForwardBatch(
            mode=ForwardMode.DECODE,
            input_ids=torch.from_numpy(ids).to(dev),
            positions=positions_t,
            out_cache_loc=self._decode_slots(rows, cols),
            req_pool_indices=torch.from_numpy(rows).to(dev),
            prefix_lens=cols_t,
            extend_lens=torch.ones(n, dtype=torch.int64, device=dev),
            seq_lens=cols_t + 1,
            logits_indices=torch.arange(n, device=dev),
            rows_list=rows.tolist(),
            prefix_lens_list=cols.tolist(),
            extend_lens_list=[1] * n,
        )
        return fb, LogitsLayout(list(range(n)), [None] * n)

    def _prepare_extend(self, batch: ScheduledBatch) -> tuple[ForwardBatch, LogitsLayout]:
        # plain ints per request, one tensor of each kind for the batch
        ids: list[int] = []
        positions: list[int] = []
        pos_rows: list[int] = []
        logits_idx: list[int] = []
        layout = LogitsLayout([], [])
        for i, req in enumerate(batch.reqs):
            start, num = batch.extend_starts[i], batch.extend_lens[i]
            offset = len(ids)
            ids += req.fill_slice(start, start + num)
            positions.extend(range(start, start + num))
            pos_rows.extend([req.kv.row] * num)
            layout.score_rows.append(self._score_rows(req, start, num, offset, logits_idx))
            wants_sample = batch.completes_fill(i) and len(req.output_ids) < req.params.max_new_tokens
            layout.sample_rows.append(len(logits_idx) if wants_sample else None)
            if wants_sample:
                logits_idx.append(offset + num - 1)
        dev = self.device
        row_list = [r.kv.row for r in batch.reqs]
        col_starts = self._columns(batch)
        starts = torch.tensor(col_starts, dtype=torch.int64, device=dev)
        lens = torch.tensor(batch.extend_lens, dtype=torch.int64, device=dev)
        positions_t = torch.tensor(positions, dtype=torch.int64, device=dev)
        cols_t = positions_t
        if self.evicts:
            cols_t = torch.tensor([col for start, n in zip(col_starts, batch.extend_lens,
                                                           strict=True)
                                   for col in range(start, start + n)],
                                  dtype=torch.int64, device=dev)
        fb = ForwardBatch(
            mode=ForwardMode.EXTEND,
            input_ids=torch.tensor(ids, dtype=torch.int64, device=dev),
            positions=positions_t,
            out_cache_loc=self.req_pool.req_to_token[
                torch.tensor(pos_rows, dtype=torch.int64, device=dev), cols_t],
            req_pool_indices=torch.tensor(row_list, dtype=torch.int64, device=dev),
            prefix_lens=starts,
            extend_lens=lens,
            seq_lens=starts + lens,
            logits_indices=torch.tensor(logits_idx, dtype=torch.int64, device=dev),
            rows_list=row_list,
            prefix_lens_list=list(col_starts),
            extend_lens_list=list(batch.extend_lens),
        )
        return fb, layout

    @staticmethod
    def _score_rows(
        req: Req, start: int, num: int, offset: int, logits_idx: list[int]
    ) -> tuple[int, list[int]] | None:
        """Rows predicting scored tokens t in [score_from, seq_len) computed in this chunk:
        token t is predicted by the logits at position t - 1."""
        if req.score_from is None:
            return None
        first_t = max(req.score_from, start + 1)
        last_t = min(req.num_tokens, start + num + 1)
        if first_t >= last_t:
            return None
        first_row = len(logits_idx)
        logits_idx.extend(offset + (t - 1 - start) for t in range(first_t, last_t))
        return first_row, req.fill_slice(first_t, last_t)

