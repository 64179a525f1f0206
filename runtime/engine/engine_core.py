"""EngineCore: one step of serving — schedule, run the model, sample, process outputs.

Runs on the engine's loop thread only; nothing here is thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

import numpy as np
import torch

from sglc.runtime.config import EngineConfig
from sglc.runtime.constrained.stage import ConstraintStage
from sglc.runtime.core import FinishReason, ForwardMode, Output, StreamDelta
from sglc.runtime.model_runner import LogitsLayout, ModelRunner
from sglc.runtime.output import OutputProcessor
from sglc.runtime.req import Req, ScheduledBatch
from sglc.runtime.sampling import SamplingBatch, sample
from sglc.runtime.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

# Compute only the allowed logit columns when they are at most this share of the vocabulary.
COLUMN_LOGITS_MAX_FRACTION = 0.5


@dataclass
class Sink:
    """Where a request's results go; called on the loop thread."""

    on_delta: Callable[[StreamDelta], None] | None
    on_output: Callable[[Output], None]


@dataclass
class Counters:
    num_extend_batches: int = 0
    num_decode_batches: int = 0
    num_prefill_tokens: int = 0  # tokens computed by extend passes
    num_decode_tokens: int = 0
    num_failed_batches: int = 0
    num_forced_tokens: int = 0  # appended by jump-forward without a decode step
    num_column_logits_batches: int = 0  # logits computed only for the columns masks allow
    # of those, all-greedy batches sampled from the compact [rows, columns] logits
    num_compact_logits_batches: int = 0


class EngineCore:
    def __init__(
        self,
        config: EngineConfig,
        scheduler: Scheduler,
        runner: ModelRunner,
        outputs: OutputProcessor,
        constraints: ConstraintStage,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.runner = runner
        self.outputs = outputs
        self.constraints = constraints
        # request groups waiting for their constraint's automaton (built in the background)
        self.building: list[tuple[list[Req], Sink, Future]] = []
        self.sinks: dict[str, Sink] = {}
        self.counters = Counters()
        self.generator = torch.Generator(device=runner.device).manual_seed(config.seed)

    # -- requests ---------------------------------------------------------------------------
    def add(self, reqs: list[Req], sink: Sink) -> None:
        self.sinks[reqs[0].rid] = sink
        for req in reqs:
            self.outputs.start(req)
        if reqs[0].constraint is not None:
            self.building.append((reqs, sink, self.constraints.start(reqs[0].constraint.regex)))
            return
        for req in reqs:
            self.scheduler.add(req)

    def abort(self, rid: str, error: str | None = None) -> None:
        reqs = [r for r in self.all_reqs() if r.rid == rid and not r.is_finished]
        for req in reqs:
            req.finish_reason, req.error = FinishReason.ABORT, error
        # a group aborted while its automaton builds is forgotten (the build may finish later)
        self.building = [b for b in self.building if not all(r.is_finished for r in b[0])]
        for req in reqs:
            self._finish(req)

    def all_reqs(self) -> list[Req]:
        return self.scheduler.all_reqs() + [r for reqs, _, _ in self.building for r in reqs]

    @property
    def is_idle(self) -> bool:
        return self.scheduler.is_idle and not self.building

    def _admit_built(self) -> None:
        """Requests whose automaton is ready join the scheduler; a failed build fails them."""
        if not self.building:
            return
        if self.scheduler.is_idle:  # nothing else to do: wait a little for a build
            wait([f for _, _, f in self.building], timeout=0.05, return_when=FIRST_COMPLETED)
        still = []
        for reqs, sink, future in self.building:
            if not future.done():
                still.append((reqs, sink, future))
                continue
            reqs = [r for r in reqs if not r.is_finished]  # aborted while building
            try:
                for req in reqs:
                    self.constraints.attach(req.constraint, future.result(),
                                            req.params.max_new_tokens)
            except Exception as exc:  # the request fails alone, before any decoding
                for req in reqs:
                    req.finish_reason, req.error = FinishReason.ABORT, f"constraint: {exc}"
                    self._finish(req)
                continue
            for req in reqs:
                self._jump_forward(req)  # a forced start (`{"name":"`) joins the prefill
                if req.is_finished:
                    self._finish(req)
                else:
                    self.scheduler.add(req)
        self.building = still

    # -- the loop body ------------------------------------------------------------------------
    def step(self) -> None:
        self._admit_built()
        batch = self.scheduler.schedule()
        if batch is None:
            for req in self.scheduler.out_of_memory():
                req.finish_reason = FinishReason.LENGTH
                self._finish(req)
            return
        try:
            columns = self._logit_columns(batch)
            # greedy without penalties (which index full-width rows by token id); columns
            # already imply no logprobs
            compact = columns is not None and all(
                r.params.is_greedy and not r.params.has_penalties for r in batch.reqs)
            self.counters.num_compact_logits_batches += compact
            logits, layout = self.runner.forward(batch, columns, compact=compact)
        except Exception as exc:  # a failing batch fails alone; the engine keeps serving
            log.exception("forward pass failed")
            self.counters.num_failed_batches += 1
            # NOTE: an extend batch's requests are in no queue now; finish them directly
            for req in batch.reqs:
                req.finish_reason = FinishReason.ABORT
                req.error = f"engine error: {type(exc).__name__}: {exc}"
                self._finish(req)
            return
        self.scheduler.after_forward(batch)
        self._count(batch)
        self._record_scores(batch, logits, layout)
        self._sample(batch, logits, layout, columns, compact)
        self._emit(batch)

    def _logit_columns(self, batch: ScheduledBatch) -> np.ndarray | None:
        """The vocabulary columns worth computing when every request in the batch is
        constrained (the union of what their masks allow next), else None (all columns).

        Every other column would be masked to -inf before sampling, so the sampled tokens are
        the same; it saves most of the lm_head where masks are narrow (digits, a choice) or
        where the logits are wider than the tokenizer's vocabulary."""
        constraints = [r.constraint for r in batch.reqs]
        if not all(c is not None and c.matcher is not None and not c.matcher.is_finished()
                   and r.score_from is None and r.params.logprobs is None
                   for r, c in zip(batch.reqs, constraints, strict=True)):
            return None
        columns = self.constraints.allowed_union(constraints)
        if len(columns) > COLUMN_LOGITS_MAX_FRACTION * self.constraints.vocab.width:
            return None
        self.counters.num_column_logits_batches += 1
        return columns

    def _count(self, batch: ScheduledBatch) -> None:
        for req in batch.reqs:
            req.num_forward_passes += 1
        c = self.counters
        if batch.mode is ForwardMode.DECODE:
            c.num_decode_batches += 1
            c.num_decode_tokens += batch.num_tokens
        else:
            c.num_extend_batches += 1
            c.num_prefill_tokens += batch.num_tokens

    def _record_scores(self, batch: ScheduledBatch, logits: torch.Tensor, layout: LogitsLayout):
        for req, rows in zip(batch.reqs, layout.score_rows, strict=True):
            if rows is None:
                continue
            first, tokens = rows
            logp = torch.log_softmax(logits[first : first + len(tokens)], dim=-1)
            ids = torch.tensor(tokens, device=logp.device)
            self.outputs.record_scores(req, logp.gather(1, ids[:, None])[:, 0].tolist())

    def _sample(self, batch: ScheduledBatch, logits: torch.Tensor, layout: LogitsLayout,
                columns: np.ndarray | None = None, compact: bool = False) -> None:
        """Sample each request whose fill completed; `columns`: the only vocabulary columns
        the forward pass computed (the others are -inf), so masks need only those;
        `compact`: the logits hold only those columns (all rows greedy, see `_pick_compact`)."""
        picked = [(req, row) for req, row in zip(batch.reqs, layout.sample_rows, strict=True)
                  if row is not None]
        for i, req in enumerate(batch.reqs):
            if layout.sample_rows[i] is None and batch.completes_fill(i):
                req.finish_reason = req.finish_reason or FinishReason.LENGTH  # nothing to generate
        if not picked:
            return
        reqs = [r for r, _ in picked]
        rows = torch.tensor([row for _, row in picked], device=logits.device)
        logits = logits[rows]
        if compact:
            token_ids, logprobs = self._pick_compact(reqs, logits, columns), [None] * len(reqs)
        else:
            sb = SamplingBatch.prepare([r.params for r in reqs], [r.prompt_ids for r in reqs],
                                       [r.output_ids for r in reqs], logits.device)
            self.constraints.apply_masks(
                logits, [r.constraint for r in reqs], self.runner.ops.apply_token_bitmask, columns
            )
            token_ids, logprobs = sample(logits, sb, self.generator)
        for req, token, lp in zip(reqs, token_ids, logprobs, strict=True):
            self.outputs.append_token(req, token, lp)
            if req.constraint is not None:
                self._advance_constraint(req, token)

    def _pick_compact(
        self, reqs: list[Req], logits: torch.Tensor, columns: np.ndarray
    ) -> list[int]:
        """Greedy tokens from logits that hold only the vocabulary `columns` (ascending): the
        masked argmax, mapped back to token ids. It skips the full-width -inf logits, their
        scatter and a full-width argmax; the token is the one full-width greedy sampling
        picks, as argmax takes the first maximum in both."""
        self.constraints.mask_compact(logits, [r.constraint for r in reqs], columns)
        return columns[logits.argmax(dim=-1).cpu().numpy()].tolist()

    def _advance_constraint(self, req: Req, token: int) -> None:
        """Feed the sampled token to the request's automaton; stop when it has matched and
        nothing may follow; jump forward over a forced string."""
        constraint = req.constraint
        if req.is_finished and (token in req.eos_token_ids or token in req.params.stop_token_ids):
            return  # a stop token (allowed by the mask only where the text matches)
        constraint.matcher.advance(token)
        if constraint.matcher.is_finished() and req.finish_reason is not FinishReason.ABORT:
            req.finish_reason = FinishReason.STOP  # also when this was the last allowed token
        if not req.is_finished:
            self._jump_forward(req)

    def _jump_forward(self, req: Req) -> None:
        """Append the string the request's automaton forces now, if any (after dropping the
        last tokens where the tokenizer spells the boundary differently)."""
        constraint = req.constraint
        step = self.constraints.jump(constraint)
        if step is None:
            return
        room = self.outputs.room(req, len(req.output_ids) - step.num_tokens_to_drop)
        new = step.new_token_ids[: max(room, 0)]
        # The forced tokens run in the next batch with the other running requests; KV of
        # dropped tokens is freed, unless the prefix cache owns it: then the request waits
        # for an extend from the cache (its KV goes there first, under the old tokens).
        keep = req.num_tokens - step.num_tokens_to_drop
        if not self.scheduler.kv.truncate(req, keep):
            self.scheduler.requeue(req)
        constraint.matcher.rollback(step.num_tokens_to_drop)
        constraint.matcher.advance_many(new)
        constraint.record_jump(len(req.output_ids) - step.num_tokens_to_drop, len(new))
        self.outputs.rewrite_tail(req, step.num_tokens_to_drop, new)
        self.counters.num_forced_tokens += len(new)
        if constraint.matcher.is_finished():
            req.finish_reason = FinishReason.STOP

    def _emit(self, batch: ScheduledBatch) -> None:
        for req in batch.reqs:
            if req.is_finished:
                self._finish(req)
                continue
            sink = self.sinks.get(req.rid)
            if sink is not None and sink.on_delta is not None:
                delta = self.outputs.delta(req)
                if delta is not None:
                    sink.on_delta(delta)

    def _finish(self, req: Req) -> None:
        self.scheduler.finish(req)
        self.outputs.finish_text(req)
        sink = self.sinks.get(req.rid)
        if sink is None:
            return
        if sink.on_delta is not None:
            delta = self.outputs.delta(req)
            if delta is not None:
                sink.on_delta(delta)
        sink.on_output(self.outputs.output(req))
        if not any(r.rid == req.rid for r in self.all_reqs()):
            del self.sinks[req.rid]
