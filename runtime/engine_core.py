"""EngineCore: one step of serving — schedule, run the model, sample, process outputs.

Runs on the engine's loop thread only; nothing here is thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import FinishReason, ForwardMode, Output, Req, ScheduledBatch, StreamDelta
from sglc.runtime.model_runner import LogitsLayout, ModelRunner
from sglc.runtime.output import OutputProcessor
from sglc.runtime.sampling import SamplingBatch, sample
from sglc.runtime.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


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


class EngineCore:
    def __init__(
        self,
        config: EngineConfig,
        scheduler: Scheduler,
        runner: ModelRunner,
        outputs: OutputProcessor,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.runner = runner
        self.outputs = outputs
        self.sinks: dict[str, Sink] = {}
        self.counters = Counters()
        self.generator = torch.Generator(device=runner.device).manual_seed(config.seed)

    # -- requests ---------------------------------------------------------------------------
    def add(self, reqs: list[Req], sink: Sink) -> None:
        self.sinks[reqs[0].rid] = sink
        for req in reqs:
            self.outputs.start(req)
            self.scheduler.add(req)

    def abort(self, rid: str, error: str | None = None) -> None:
        for req in [r for r in self.scheduler.all_reqs() if r.rid == rid]:
            req.finish_reason, req.error = FinishReason.ABORT, error
            self._finish(req)

    @property
    def is_idle(self) -> bool:
        return self.scheduler.is_idle

    # -- the loop body ------------------------------------------------------------------------
    def step(self) -> None:
        batch = self.scheduler.schedule()
        if batch is None:
            for req in self.scheduler.out_of_memory():
                req.finish_reason = FinishReason.LENGTH
                self._finish(req)
            return
        try:
            logits, layout = self.runner.forward(batch)
        except Exception as exc:  # a failing batch fails alone; the engine keeps serving
            log.exception("forward pass failed")
            self.counters.num_failed_batches += 1
            for req in batch.reqs:
                self.abort(req.rid, f"engine error: {type(exc).__name__}: {exc}")
            return
        self.scheduler.after_forward(batch)
        self._count(batch)
        self._record_scores(batch, logits, layout)
        self._sample(batch, logits, layout)
        self._emit(batch)

    def _count(self, batch: ScheduledBatch) -> None:
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
            req.token_logprobs += logp.gather(1, ids[:, None])[:, 0].tolist()

    def _sample(self, batch: ScheduledBatch, logits: torch.Tensor, layout: LogitsLayout) -> None:
        picked = [(req, row) for req, row in zip(batch.reqs, layout.sample_rows, strict=True)
                  if row is not None]
        for i, req in enumerate(batch.reqs):
            if layout.sample_rows[i] is None and batch.completes_fill(i):
                req.finish_reason = req.finish_reason or FinishReason.LENGTH  # nothing to generate
        if not picked:
            return
        reqs = [r for r, _ in picked]
        rows = torch.tensor([row for _, row in picked], device=logits.device)
        sb = SamplingBatch.prepare(
            [r.params for r in reqs], [r.prompt_ids for r in reqs], [r.output_ids for r in reqs],
            logits.device,
        )
        out = sample(logits[rows], sb, self.generator)
        for req, token, lp in zip(reqs, out.token_ids, out.logprobs, strict=True):
            self.outputs.append_token(req, token, lp)

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
        if not any(r.rid == req.rid for r in self.scheduler.all_reqs()):
            del self.sinks[req.rid]
