"""Fair scheduling on the scheduler itself (a model-free simulation over the real scheduler,
KV pool and prefix cache): the VTC bound of the paper between backlogged clients, the counter
lift, client weights; DLPM's fairness and locality; policies by name."""

from __future__ import annotations

import random

import pytest

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import InvalidRequest
from sglc.runtime.scheduler.policy import make_policy
from sglc.runtime.scheduler.simulate import SimulationResult, TraceRequest, simulate

POOL = 512  # KV tokens: the most a batch holds (M)
MAX_PROMPT = 64
W_IN, W_OUT = 1.0, 2.0
# the bound of Sheng et al. (OSDI'24): 2 * max(w_in * longest prompt, w_out * M)
U = max(W_IN * MAX_PROMPT, W_OUT * POOL)


def config(policy: str, **options) -> EngineConfig:
    return EngineConfig(policy=policy, max_total_tokens=POOL, max_running_requests=16,
                        fair_token_weights=(W_IN, W_OUT), track_client_service=True, **options)


def flood(client: str, num: int, seed: int, *, start: int = 0, every: int = 0,
          prompt: tuple[int, int] = (8, MAX_PROMPT), output: tuple[int, int] = (4, 32),
          prefix: tuple[int, ...] = ()) -> list[TraceRequest]:
    """`num` requests of random sizes, arriving from `start` on, one per `every` steps."""
    rng = random.Random(seed)
    return [TraceRequest(start + i * every, client,
                         prefix + tuple(rng.randrange(3, 300) for _ in range(rng.randint(*prompt))),
                         rng.randint(*output)) for i in range(num)]


def max_gap(result: SimulationResult, a: str, b: str, weights=(1.0, 1.0)) -> float:
    """The largest |service of a - service of b| (each over its weight) over any interval in
    which both clients had requests waiting at every step."""
    worst, run = 0.0, []
    for rec in result.steps + [None]:
        if rec is not None and {a, b} <= rec.backlogged:
            run.append(rec.service.get(a, 0) / weights[0] - rec.service.get(b, 0) / weights[1])
            continue
        if run:  # intervals start after a step: include the state before the first one
            worst = max(worst, max(run) - min(run))
        run = []
    return worst


def both_backlogged_steps(result: SimulationResult, a: str, b: str) -> int:
    return sum({a, b} <= rec.backlogged for rec in result.steps)


def test_vtc_bound_holds_between_backlogged_clients():
    # a: long prompts and short outputs, flooding; b: short prompts, long outputs
    trace = flood("a", 120, 1, prompt=(40, MAX_PROMPT), output=(2, 8)) + \
        flood("b", 60, 2, prompt=(4, 12), output=(20, 32))
    result = simulate(config("vtc"), trace, 600)
    assert both_backlogged_steps(result, "a", "b") > 100  # the bound is about these steps
    assert max_gap(result, "a", "b") <= 2 * U
    assert result.num_finished > 60


def test_fcfs_breaks_the_bound_on_the_same_kind_of_trace():
    # the flood arrives first: FCFS serves it alone while b waits
    trace = flood("a", 200, 1, prompt=(40, MAX_PROMPT), output=(16, 32)) + \
        flood("b", 40, 2, start=1, prompt=(4, 12), output=(20, 32))
    gaps = {p: max_gap(simulate(config(p), trace, 500), "a", "b") for p in ("fcfs", "vtc")}
    assert gaps["fcfs"] > 2 * U >= gaps["vtc"]


def test_vtc_lifts_a_returning_clients_counter():
    # b comes late: without the lift its counter (0) would let it take everything
    trace = flood("a", 200, 1) + flood("b", 60, 2, start=300)
    result = simulate(config("vtc"), trace, 500)
    after = [r for r in result.steps if r.step >= 300]
    a_before, a_after = after[0].service["a"], after[-1].service["a"]
    b_after = after[-1].service["b"]
    assert a_after - a_before > 0.25 * b_after  # a keeps being served once b is back
    assert max_gap(result, "a", "b") <= 2 * U


def test_vtc_shares_by_client_weight():
    trace = flood("a", 300, 1) + flood("b", 300, 2)
    options = {"client_weights": {"a": 2.0, "b": 1.0}}
    result = simulate(config("vtc", **options), trace, 600)
    assert max_gap(result, "a", "b", weights=(2.0, 1.0)) <= 2 * U
    last = result.steps[-1].service
    assert 1.6 < last["a"] / last["b"] < 2.4


def documents_trace(seed: int = 0) -> list[TraceRequest]:
    """Two clients asking questions about their own documents (6 each, 120 tokens: shared
    prefixes that do not all fit in the cache at once), a with 2.5 times more questions."""
    rng = random.Random(seed)
    trace = []
    for client, num in (("a", 300), ("b", 120)):
        docs = [tuple(rng.randrange(3, 300) for _ in range(120)) for _ in range(6)]
        trace += [TraceRequest(0, client, rng.choice(docs) + tuple(
            rng.randrange(3, 300) for _ in range(rng.randint(4, 8))), rng.randint(4, 12))
            for _ in range(num)]
    return trace


def test_dlpm_is_fair_within_its_quantum_and_keeps_cache_hits():
    quantum, pool = 1024.0, 1024
    results = {p: simulate(EngineConfig(policy=p, max_total_tokens=pool, max_running_requests=32,
                                        dlpm_quantum=quantum, track_client_service=True),
                           documents_trace(), 800,
                           max_context_len=512)
               for p in ("lpm", "vtc", "dlpm")}
    u = max(W_IN * 128, W_OUT * pool)
    # fairness: the deficit round robin bounds the gap by the quantum and a request
    gaps = {p: max_gap(r, "a", "b") for p, r in results.items()}
    assert gaps["vtc"] <= 2 * u and gaps["dlpm"] <= 2 * (quantum + u) < gaps["lpm"]
    # locality: VTC's interleaving of the clients' documents evicts them; DLPM keeps more
    # cache hits and so computes less prefill
    hits = {p: r.cache["hit_rate"] for p, r in results.items()}
    assert hits["dlpm"] > hits["vtc"] + 0.05
    assert results["dlpm"].num_prefill_tokens < 0.9 * results["vtc"].num_prefill_tokens


def test_policies_by_name_and_bad_settings():
    assert {type(make_policy(n)).__name__ for n in ("fcfs", "lpm", "vtc", "dlpm")} == {
        "FCFSPolicy", "LPMPolicy", "VTCPolicy", "DLPMPolicy"}
    with pytest.raises(ValueError, match="choose one of fcfs, lpm, vtc, dlpm"):
        make_policy("fair")
    with pytest.raises(InvalidRequest, match="client_weights must be > 0"):
        EngineConfig(client_weights={"a": 0})
    with pytest.raises(InvalidRequest, match="fair_token_weights"):
        EngineConfig(fair_token_weights=(0, 0))
