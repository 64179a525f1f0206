"""EngineCore: one step of serving — admit, schedule, plan logits, forward, sample, process
outputs. The work lives in the parts it calls: Scheduler, ModelRunner, `sampling`,
OutputProcessor and ConstraintStage; results go out through `Receivers`.

One bad request fails alone: an exception while admitting, sampling, detokenising,
constraining or reporting one request finishes that request (finish_reason "abort", the
error in `Output.error`) and the others go on. Where a stage works on the whole batch
(sampling), a failure is retried request by request to find the one that fails. On the
common path this costs nothing: Python's `try` is free until something raises.

Runs on the engine's loop thread only; nothing here is thread-safe.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

import torch

from sglc.runtime.config import EngineConfig
from sglc.runtime.constrained.stage import FULL_LOGITS, ConstraintStage, LogitsPlan, Rewrite
from sglc.runtime.core import FinishReason, ForwardMode, SamplingParams, TokenLogprob
from sglc.runtime.engine.delivery import Receivers, Sink, call, refused_output
from sglc.runtime.engine.stats import EngineStats, StepCounters
from sglc.runtime.model_runner import LogitsLayout, ModelRunner
from sglc.runtime.output import OutputProcessor
from sglc.runtime.req import Req, ReqState, ScheduledBatch
from sglc.runtime.sampling import SamplingBatch, greedy_from_columns, sample
from sglc.runtime.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


class Sampled(NamedTuple):
    """One step's sampled tokens: request i got token_ids[i] (with logprobs[i])."""

    reqs: list[Req]
    token_ids: list[int]
    logprobs: list[TokenLogprob | None]


_NOTHING_SAMPLED = Sampled([], [], [])

__all__ = ["EngineCore", "Sampled", "Sink"]


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
        self.receivers = Receivers()
        self._has_failed_in_step = False  # a request of this step's batch failed alone
        # requests whose output is shorter than their min_tokens: EOS and stop tokens banned
        self._under_min_tokens: set[Req] = set()

    # -- requests ---------------------------------------------------------------------------
    def add(self, reqs: list[Req], sink: Sink) -> None:
        """Queue one prompt's samples (one request id); a constrained group first waits for
        its automaton. A request id already in flight is refused (its results would mix)."""
        rid = reqs[0].rid
        if not self.receivers.open(rid, sink, len(reqs)):
            error = f"request id {rid!r} is already in flight: give each request its own id"
            for req in reqs:
                call(sink.on_output, refused_output(req, error), "on_output")
            return
        try:
            for req in reqs:
                self.outputs.start(req)
            if reqs[0].params.min_tokens:
                self._under_min_tokens.update(reqs)
            if reqs[0].constraint is not None:
                self.constraints.add(reqs)
            else:
                for req in reqs:
                    self.scheduler.add(req)
        except Exception as exc:  # noqa: BLE001 - this request fails alone
            for req in reqs:
                self._fail(req, "admitting it", exc)

    def abort(self, rid: str, error: str | None = None) -> None:
        """Finish the request's unfinished samples with finish_reason 'abort' (and `error`)."""
        reqs = [r for r in self._all_reqs() if r.rid == rid and r.state is not ReqState.FINISHED]
        for req in reqs:
            if not req.is_finished:
                req.finish_reason, req.error = FinishReason.ABORT, error
        self.constraints.discard_finished()
        for req in reqs:
            self._finish(req)

    def abort_all(self, error: str) -> None:
        """Abort every request in flight."""
        for rid in dict.fromkeys(r.rid for r in self._all_reqs()):
            self.abort(rid, error)

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
        self._has_failed_in_step = False
        self._admit_built()
        batch = self.scheduler.schedule()
        if batch is None:
            self._finish_out_of_memory()
            return
        started = time.perf_counter()
        plan = self._plan(batch)
        try:  # a failing batch fails alone; the engine keeps serving
            logits, layout = self.runner.forward(batch, plan.columns, compact=plan.compact)
        except Exception as exc:  # noqa: BLE001
            self._fail_batch(batch, exc)
            return
        self.scheduler.after_forward(batch)
        self._count(batch, started)
        self._record_scores(batch, logits, layout)
        sampled = self._sample(batch, logits, layout, plan)
        self._process_outputs(batch, layout, sampled)

    def _plan(self, batch: ScheduledBatch) -> LogitsPlan:
        """The constraint stage's logits plan; full logits if planning failed (the masks,
        which every constrained request needs, then find the request that fails)."""
        try:
            return self.constraints.plan(batch)
        except Exception:  # noqa: BLE001
            log.exception("planning the logits failed; computing full logits")
            return FULL_LOGITS

    def _admit_built(self) -> None:
        """Requests whose automaton is built join the scheduler, with the forced start of
        their output (it joins the prefill); failed builds finish theirs."""
        if self.constraints.is_idle:
            return
        built = self.constraints.take_built(wait_for_one=self.scheduler.is_idle)
        for req, rewrite in built:
            try:
                self._apply(req, rewrite)
                if not req.is_finished:
                    self.scheduler.add(req)
            except Exception as exc:  # noqa: BLE001
                self._fail(req, "starting its constraint", exc)
        for req, _ in built:
            if req.is_finished:
                self._finish(req)

    def _finish_out_of_memory(self) -> None:
        for req in self.scheduler.out_of_memory():
            req.finish_reason = FinishReason.LENGTH
            self._finish(req)

    def _fail_batch(self, batch: ScheduledBatch, exc: Exception) -> None:
        log.exception("forward pass failed")
        self.counters.num_failed_batches += 1
        # NOTE: an extend batch's requests are in no queue now; finish them directly
        for req in batch.reqs:
            req.finish_reason = FinishReason.ABORT
            req.error = f"engine error: {type(exc).__name__}: {exc}"
            self._finish(req)

    def _fail(self, req: Req, stage: str, exc: Exception) -> None:
        """Finish one request whose processing raised; the others go on."""
        log.error("request %s failed while %s", req.rid, stage, exc_info=exc)
        self.counters.num_failed_requests += 1
        self._has_failed_in_step = True
        req.finish_reason = FinishReason.ABORT
        req.error = f"engine error while {stage}: {type(exc).__name__}: {exc}"
        self._finish(req)

    def _count(self, batch: ScheduledBatch, started: float) -> None:
        for req in batch.reqs:
            req.num_forward_passes += 1
            if req.times.scheduled is None:
                req.times.scheduled = started
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
            try:
                first, tokens = rows
                logp = torch.log_softmax(logits[first : first + len(tokens)], dim=-1)
                ids = torch.tensor(tokens, device=logp.device)
                self.outputs.record_scores(req, logp.gather(1, ids[:, None])[:, 0].tolist())
            except Exception as exc:  # noqa: BLE001
                self._fail(req, "scoring", exc)

    def _sample(self, batch: ScheduledBatch, logits: torch.Tensor, layout: LogitsLayout,
                plan: LogitsPlan) -> Sampled:
        """One token for each request whose fill completed. If sampling the batch fails,
        each request is sampled alone: the ones that fail then fail alone."""
        picked = [(req, row) for req, row in zip(batch.reqs, layout.sample_rows, strict=True)
                  if row is not None]
        if self._has_failed_in_step:  # scoring failed some: they sample nothing
            picked = [(req, row) for req, row in picked if req.state is not ReqState.FINISHED]
        if not picked:
            return _NOTHING_SAMPLED
        try:
            return self._sample_rows(logits, picked, plan)
        except Exception:  # noqa: BLE001
            log.exception("sampling a batch failed; sampling its requests one by one")
        sampled = Sampled([], [], [])
        for one in picked:
            try:
                got = self._sample_rows(logits, [one], plan)
            except Exception as exc:  # noqa: BLE001
                self._fail(one[0], "sampling", exc)
                continue
            for part, value in zip(sampled, got, strict=True):
                part.extend(value)
        return sampled

    def _sample_rows(self, logits: torch.Tensor, picked: list[tuple[Req, int]],
                     plan: LogitsPlan) -> Sampled:
        """Sample the picked (request, logits row) pairs under their constraints' masks;
        from the compact logits by a greedy pick when the plan made them compact."""
        reqs = [r for r, _ in picked]
        rows = [row for _, row in picked]
        # a copy unless a decode batch with no masks takes every row as it is (the masks
        # write into the rows)
        if rows != list(range(logits.shape[0])) or any(r.constraint is not None for r in reqs):
            logits = logits[torch.tensor(rows, device=logits.device)]
        self.constraints.mask(logits, reqs, plan)
        if plan.compact:
            return Sampled(reqs, greedy_from_columns(logits, plan.columns), [None] * len(reqs))
        if not self._under_min_tokens and all(_plain_greedy(r.params) for r in reqs):
            # what `sample` picks for these (no penalty, no logprobs): the first maximum
            return Sampled(reqs, logits.argmax(dim=-1).tolist(), [None] * len(reqs))
        params = SamplingBatch.prepare([r.params for r in reqs], [r.prompt_ids for r in reqs],
                                       [r.output_ids for r in reqs], logits.device,
                                       self._banned(reqs) if self._under_min_tokens else ())
        return Sampled(reqs, *sample(logits, params, self.generator))

    def _banned(self, reqs: list[Req]) -> list[tuple[int, list[int]]]:
        """(row, ids) of the requests still under their min_tokens: EOS (unless ignored)
        and their stop tokens may not be sampled yet."""
        banned = []
        for row, req in enumerate(reqs):
            if req not in self._under_min_tokens:
                continue
            if len(req.output_ids) >= req.params.min_tokens:
                self._under_min_tokens.discard(req)
                continue
            eos = () if req.params.ignore_eos else req.eos_token_ids
            ids = sorted({*eos, *req.params.stop_token_ids})
            if ids:
                banned.append((row, ids))
        return banned

    def _process_outputs(self, batch: ScheduledBatch, layout: LogitsLayout,
                         sampled: Sampled) -> None:
        """Append the sampled tokens (stops, lengths, constraints, jumps), then report:
        finished requests finish, the others stream a delta."""
        for i, req in enumerate(batch.reqs):
            if layout.sample_rows[i] is None and batch.completes_fill(i):
                req.finish_reason = req.finish_reason or FinishReason.LENGTH  # nothing to generate
        for req, token, logprob in zip(*sampled, strict=True):
            try:
                self.outputs.append_token(req, token, logprob)
            except Exception as exc:  # noqa: BLE001
                self._fail(req, "detokenizing", exc)
                continue
            if req.constraint is not None:
                try:
                    self._apply(req, self.constraints.after_token(req, token))
                except Exception as exc:  # noqa: BLE001
                    self._fail(req, "advancing its constraint", exc)
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

    def _send_delta(self, req: Req, is_final: bool = False) -> None:
        """Stream what is new; a callback that raises fails its request (all its samples),
        except in the final delta, when the request has finished anyway."""
        receiver = self.receivers.by_rid.get(req.rid)
        if receiver is None or receiver.sink.on_delta is None:
            return
        try:
            delta = self.outputs.delta(req)
        except Exception as exc:  # noqa: BLE001
            if not is_final:
                self._fail(req, "streaming its output", exc)
            return
        if delta is None:
            return
        try:
            receiver.sink.on_delta(delta)
        except Exception as exc:  # noqa: BLE001 - the caller's code: its request fails alone
            log.exception("on_delta callback raised")
            if not is_final:
                self.counters.num_failed_requests += 1
                self.abort(req.rid, f"the on_delta callback raised {type(exc).__name__}: {exc}")

    def _finish(self, req: Req) -> None:
        """Release a finished request and report its Output (once: a request failed
        mid-step may come here again from the batch it was in)."""
        if req.state is ReqState.FINISHED:
            return
        self._under_min_tokens.discard(req)
        try:
            self.scheduler.finish(req)
        except Exception:  # noqa: BLE001 - an engine bug; the request still gets its answer
            log.exception("releasing request %s failed", req.rid)
            req.state = ReqState.FINISHED
        try:
            self.outputs.finish_text(req)
        except Exception as exc:  # noqa: BLE001
            log.error("request %s: detokenizing its end failed", req.rid, exc_info=exc)
            self.counters.num_failed_requests += 1
            req.finish_reason = FinishReason.ABORT
            req.error = req.error or f"engine error while detokenizing: {type(exc).__name__}: {exc}"
        self._send_delta(req, is_final=True)
        try:
            output = self.outputs.output(req)
        except Exception as exc:  # noqa: BLE001
            log.error("request %s: building its output failed", req.rid, exc_info=exc)
            self.counters.num_failed_requests += 1
            output = refused_output(
                req, req.error or f"engine error while building its output: "
                                  f"{type(exc).__name__}: {exc}")
        self.receivers.send_output(output)


def _plain_greedy(params: SamplingParams) -> bool:
    """Greedy with no penalty and no logprobs: the token is the argmax of the raw logits."""
    return params.is_greedy and params.logprobs is None and not params.has_penalties
