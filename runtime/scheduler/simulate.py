"""The engine's scheduler run without a model: a trace of requests in, per-step service out.

Every step, the requests of the trace that arrive join the scheduler, which picks a batch
over a real KV pool, slot allocator and prefix cache exactly as in the engine; the "forward
pass" appends one fixed token to each request that samples, and requests finish at their
`max_new_tokens`. Tests check fairness bounds on it and `benchmarks/fairness.py` compares the
policies with it, where a real model would only add noise to the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import FinishReason, ForwardMode, SamplingParams
from sglc.runtime.mem import ReqToTokenPool, SlotAllocator, make_prefix_cache
from sglc.runtime.req import Req, ScheduledBatch
from sglc.runtime.scheduler.kv_manager import KVManager
from sglc.runtime.scheduler.policy_base import client_of
from sglc.runtime.scheduler.scheduler import Scheduler

OUTPUT_TOKEN = 7  # what every simulated decode step produces


@dataclass(frozen=True)
class TraceRequest:
    arrival_step: int
    client: str
    prompt_ids: tuple[int, ...]
    max_new_tokens: int


@dataclass(frozen=True)
class StepRecord:
    """The state after one step: cumulative service per client, the clients that had
    requests waiting when the step was scheduled, and the batch's size."""

    step: int
    service: dict[str, float]
    backlogged: frozenset[str]
    mode: ForwardMode | None  # None: nothing ran
    num_tokens: int


@dataclass
class SimulationResult:
    steps: list[StepRecord] = field(default_factory=list)
    num_finished: int = 0
    num_prefill_tokens: int = 0  # tokens extend passes computed (cache hits excluded)
    num_decode_tokens: int = 0
    cache: dict[str, float] = field(default_factory=dict)
    latency_steps: dict[str, list[int]] = field(default_factory=dict)  # per client


def simulate(config: EngineConfig, trace: Sequence[TraceRequest], num_steps: int,
             *, max_context_len: int = 4096) -> SimulationResult:
    """Run `num_steps` scheduler steps over `trace` with `config`'s pool and policy
    (`max_total_tokens` must be set)."""
    if config.max_total_tokens is None:
        raise ValueError("simulate needs config.max_total_tokens")
    num_slots = config.max_total_tokens + config.page_size
    allocator = SlotAllocator(num_slots, config.page_size)
    cache = make_prefix_cache("none" if config.disable_radix_cache else "radix", allocator,
                              config.page_size)
    req_pool = ReqToTokenPool(config.max_running_requests + 1, max_context_len, "cpu")
    kv = KVManager(allocator, req_pool, cache, config.page_size, not config.disable_radix_cache)
    scheduler = Scheduler(config, kv)
    pending = sorted(trace, key=lambda r: r.arrival_step)
    arrived: dict[int, int] = {}  # id(req) -> arrival step
    result = SimulationResult()
    for step in range(num_steps):
        while pending and pending[0].arrival_step <= step:
            item = pending.pop(0)
            req = Req(f"sim-{len(arrived)}", 0, list(item.prompt_ids), SamplingParams(
                max_new_tokens=item.max_new_tokens, client=item.client, ignore_eos=True),
                frozenset())
            arrived[id(req)] = step
            scheduler.add(req)
        backlogged = frozenset(client_of(r) for r in scheduler.waiting)
        batch = scheduler.schedule()
        if batch is None:
            for req in scheduler.out_of_memory():
                req.finish_reason = FinishReason.LENGTH
                scheduler.finish(req)
        else:
            _run(scheduler, batch, result, step, arrived)
        result.steps.append(StepRecord(
            step, dict(scheduler.policy.service), backlogged,
            batch.mode if batch else None, batch.num_tokens if batch else 0))
    result.cache = cache.stats()
    return result


def _run(scheduler: Scheduler, batch: ScheduledBatch, result: SimulationResult, step: int,
         arrived: dict[int, int]) -> None:
    """What the engine core does with a batch, with a fixed token for the model's."""
    scheduler.after_forward(batch)
    if batch.mode is ForwardMode.DECODE:
        result.num_decode_tokens += batch.num_tokens
    else:
        result.num_prefill_tokens += batch.num_tokens
    for i, req in enumerate(batch.reqs):
        req.num_forward_passes += 1
        if not batch.completes_fill(i):
            continue
        if len(req.output_ids) < req.params.max_new_tokens:
            req.output_ids.append(OUTPUT_TOKEN)
        if len(req.output_ids) >= req.params.max_new_tokens:
            req.finish_reason = FinishReason.LENGTH
            scheduler.finish(req)
            result.num_finished += 1
            latency = step - arrived.pop(id(req))
            result.latency_steps.setdefault(client_of(req), []).append(latency)
