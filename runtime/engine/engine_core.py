"""EngineCore: one step of serving — admit, schedule, plan logits, forward, sample, process
outputs. The work lives in the parts it calls: Scheduler, ModelRunner, `sampling`,
OutputProcessor and ConstraintStage.

Runs on the engine's loop thread only; nothing here is thread-safe.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from sglc.runtime.config import EngineConfig
from sglc.runtime.constrained.stage import ConstraintStage, LogitsPlan, Rewrite
from sglc.runtime.core import FinishReason, ForwardMode, Output, StreamDelta, TokenLogprob
from sglc.runtime.engine.stats import EngineStats, StepCounters
from sglc.runtime.model_runner import LogitsLayout, ModelRunner
from sglc.runtime.output import OutputProcessor
from sglc.runtime.req import Req, ScheduledBatch
from sglc.runtime.sampling import SamplingBatch, greedy_from_columns, sample
from sglc.runtime.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


class Sampled(NamedTuple):
    """One step's sampled tokens: request i got token_ids[i] (with logprobs[i])."""

    reqs: list[Req]
    token_ids: list[int]
    logprobs: list[TokenLogprob | None]


_NOTHING_SAMPLED = Sampled([], [], [])


@dataclass
class Sink:
    """Where a request's results go; called on the loop thread."""

    on_delta: Callable[[StreamDelta], None] | None
    on_output: Callable[[Output], None]


@dataclass
class _Receiver:
    sink: Sink
    num_unfinished: int  # samples of the request id still to report an Output


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
        self.counters = StepCounters()
        self.generator = torch.Generator(device=runner.device).manual_seed(config.seed)
        self._receivers: dict[str, _Receiver] = {}

    # -- requests ---------------------------------------------------------------------------
    def add(self, reqs: list[Req], sink: Sink) -> None:
        """Queue one prompt's samples (one request id); a constrained group first waits for
        its automaton."""
        receiver = self._receivers.get(reqs[0].rid)
        if receiver is None:
            self._receivers[reqs[0].rid] = _Receiver(sink, len(reqs))
        else:  # the id is reused while in flight: the newest sink gets every result
            receiver.sink, receiver.num_unfinished = sink, receiver.num_unfinished + len(reqs)
        for req in reqs:
            self.outputs.start(req)
        if reqs[0].constraint is not None:
            self.constraints.add(reqs)
            return
        for req in reqs:
            self.scheduler.add(req)

    def abort(self, rid: str, error: str | None = None) -> None:
        """Finish the request's unfinished samples with finish_reason 'abort' (and `error`)."""
        reqs = [r for r in self._all_reqs() if r.rid == rid and not r.is_finished]
        for req in reqs:
            req.finish_reason, req.error = FinishReason.ABORT, error
        self.constraints.discard_finished()
        for req in reqs:
            self._finish(req)

    def abort_all(self, error: str) -> None:
        """Abort every request in flight."""
        for req in self._all_reqs():
            self.abort(req.rid, error)

    def prebuild(self, regexes: Sequence[str]) -> None:
        """Start building these regexes' token automata in the background."""
        self.constraints.prebuild(regexes)

    def close(self) -> None:
        """Abort what is in flight (nobody waits forever on a dropped request); stop the
        automaton builds."""
        self.abort_all("the engine was shut down")
        self.constraints.close()

    @property
    def is_idle(self) -> bool:
        return self.scheduler.is_idle and self.constraints.is_idle

    def stats(self) -> EngineStats:
        sched, kv = self.scheduler, self.scheduler.kv
        return EngineStats(
            **dataclasses.asdict(self.counters), **dataclasses.asdict(self.constraints.counters),
            num_running=len(sched.running), num_waiting=len(sched.waiting),
            num_retractions=sched.num_retractions, free_slots=kv.num_free_slots,
            total_slots=kv.num_usable_slots, cache=kv.cache.stats(),
            client_service=dict(sched.policy.service), num_evicted_tokens=kv.num_evicted_tokens,
        )

    def _all_reqs(self) -> list[Req]:
        return self.scheduler.all_reqs() + self.constraints.building_reqs()

    # -- the loop body ------------------------------------------------------------------------
    def step(self) -> None:
        """One iteration of the engine loop."""
        self._admit_built()
        batch = self.scheduler.schedule()
        if batch is None:
            self._finish_out_of_memory()
            return
        try:  # a failing batch fails alone; the engine keeps serving
            plan = self.constraints.plan(batch)
            logits, layout = self.runner.forward(batch, plan.columns, compact=plan.compact)
        except Exception as exc:
            self._fail(batch, exc)
            return
        self.scheduler.after_forward(batch)
        self._count(batch)
        self._record_scores(batch, logits, layout)
        sampled = self._sample(batch, logits, layout, plan)
        self._process_outputs(batch, layout, sampled)

    def _admit_built(self) -> None:
        """Requests whose automaton is built join the scheduler, with the forced start of
        their output (it joins the prefill); failed builds finish theirs."""
        if self.constraints.is_idle:
            return
        built = self.constraints.take_built(wait_for_one=self.scheduler.is_idle)
        for req, rewrite in built:
            self._apply(req, rewrite)
            if not req.is_finished:
                self.scheduler.add(req)
        for req, _ in built:
            if req.is_finished:
                self._finish(req)

    def _finish_out_of_memory(self) -> None:
        for req in self.scheduler.out_of_memory():
            req.finish_reason = FinishReason.LENGTH
            self._finish(req)

    def _fail(self, batch: ScheduledBatch, exc: Exception) -> None:
        log.exception("forward pass failed")
        self.counters.num_failed_batches += 1
        # NOTE: an extend batch's requests are in no queue now; finish them directly
        for req in batch.reqs:
            req.finish_reason = FinishReason.ABORT
            req.error = f"engine error: {type(exc).__name__}: {exc}"
            self._finish(req)

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

    def _record_scores(self, batch: ScheduledBatch, logits: torch.Tensor,
                       layout: LogitsLayout) -> None:
        for req, rows in zip(batch.reqs, layout.score_rows, strict=True):
            if rows is None:
                continue
            first, tokens = rows
            logp = torch.log_softmax(logits[first : first + len(tokens)], dim=-1)
            ids = torch.tensor(tokens, device=logp.device)
            self.outputs.record_scores(req, logp.gather(1, ids[:, None])[:, 0].tolist())

    def _sample(self, batch: ScheduledBatch, logits: torch.Tensor, layout: LogitsLayout,
                plan: LogitsPlan) -> Sampled:
        """One token for each request whose fill completed, under its constraint's mask;
        from the compact logits by a greedy pick when the plan made them compact."""
        picked = [(req, row) for req, row in zip(batch.reqs, layout.sample_rows, strict=True)
                  if row is not None]
        if not picked:
            return _NOTHING_SAMPLED
        reqs = [r for r, _ in picked]
        logits = logits[torch.tensor([row for _, row in picked], device=logits.device)]
        self.constraints.mask(logits, reqs, plan)
        if plan.compact:
            return Sampled(reqs, greedy_from_columns(logits, plan.columns), [None] * len(reqs))
        params = SamplingBatch.prepare([r.params for r in reqs], [r.prompt_ids for r in reqs],
                                       [r.output_ids for r in reqs], logits.device)
        return Sampled(reqs, *sample(logits, params, self.generator))

    def _process_outputs(self, batch: ScheduledBatch, layout: LogitsLayout,
                         sampled: Sampled) -> None:
        """Append the sampled tokens (stops, lengths, constraints, jumps), then report:
        finished requests finish, the others stream a delta."""
        for i, req in enumerate(batch.reqs):
            if layout.sample_rows[i] is None and batch.completes_fill(i):
                req.finish_reason = req.finish_reason or FinishReason.LENGTH  # nothing to generate
        for req, token, logprob in zip(*sampled, strict=True):
            self.outputs.append_token(req, token, logprob)
            if req.constraint is not None:
                self._apply(req, self.constraints.after_token(req, token))
        for req in batch.reqs:
            if req.is_finished:
                self._finish(req)
            else:
                self._send_delta(req)

    def _apply(self, req: Req, rewrite: Rewrite | None) -> None:
        """Do what the request's constraint asked (see Rewrite)."""
        if rewrite is None:
            return
        if rewrite.is_jump:
            # KV of dropped tokens is freed; where the prefix cache owns it, the request
            # waits for an extend from the cache instead
            self.scheduler.truncate(req, req.num_tokens - rewrite.num_drop)
            self.outputs.rewrite_tail(req, rewrite.num_drop, list(rewrite.tokens))
        if rewrite.is_done and req.finish_reason is not FinishReason.ABORT:
            req.finish_reason = FinishReason.STOP

    def _send_delta(self, req: Req) -> None:
        receiver = self._receivers.get(req.rid)
        if receiver is not None and receiver.sink.on_delta is not None:
            delta = self.outputs.delta(req)
            if delta is not None:
                receiver.sink.on_delta(delta)

    def _finish(self, req: Req) -> None:
        self.scheduler.finish(req)
        self.outputs.finish_text(req)
        receiver = self._receivers.get(req.rid)
        if receiver is None:
            return
        self._send_delta(req)
        receiver.sink.on_output(self.outputs.output(req))
        receiver.num_unfinished -= 1
        if receiver.num_unfinished == 0:
            del self._receivers[req.rid]
