"""Engine(dp_size=2): two replica processes behind the router give dp_size=1's greedy
outputs (generate, streaming, scoring, constrained); a replica that dies fails its requests
with an error naming it (they are not retried) and the other replica keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import sglc

PREFIX = list(range(10, 60))
PARAMS = {"max_new_tokens": 10, "temperature": 0, "ignore_eos": True}
OPTIONS = {"kernel_backend": "torch", "max_total_tokens": 2048}


def prompts() -> list[list[int]]:
    return [[1] + PREFIX[: 20 + 10 * (k % 3)] + [100 + k, 7] for k in range(9)]


@pytest.fixture(scope="module")
def dp_engine(llama_dir):
    with sglc.Engine(llama_dir, dp_size=2, dp_balance_threshold=2, **OPTIONS) as engine:
        yield engine


@pytest.fixture(scope="module")
def single(llama_dir):
    with sglc.Engine(llama_dir, **OPTIONS) as engine:
        yield engine


def test_dp2_outputs_equal_dp1(dp_engine, single):
    expected = single.generate(prompts(), PARAMS)
    got = dp_engine.generate(prompts(), PARAMS)
    assert [o.token_ids for o in got] == [o.token_ids for o in expected]
    assert [o.text for o in got] == [o.text for o in expected]
    stats = dp_engine.stats()
    assert len(stats["replicas"]) == 2
    assert sum(stats["routes"].values()) >= len(prompts())
    assert stats["num_running"] == stats["num_waiting"] == 0


def test_dp2_streams_scores_and_constraints(dp_engine, single):
    async def stream(engine) -> str:
        return "".join([d.text async for d in engine.generate_stream("The quick", PARAMS)])

    assert asyncio.run(stream(dp_engine)) == asyncio.run(stream(single))
    got = dp_engine.score([1, 5, 9], [[10, 11], [12]])
    want = single.score([1, 5, 9], [[10, 11], [12]])
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-5)
    choice = {"max_new_tokens": 8, "temperature": 0, "choices": ["yes", "no"]}
    assert dp_engine.generate("Answer:", choice)[0].text == single.generate("Answer:", choice)[0].text


def test_a_dead_replica_fails_its_requests_and_the_other_serves(dp_engine):
    """Last in the module: it kills one of the shared engine's replicas."""
    victim = dp_engine.core.replicas[0]
    results = []
    dp_engine.submit([[1, 2, 3, k] for k in range(6)],
                     {"max_new_tokens": 400, "ignore_eos": True}, on_output=results.append)
    time.sleep(0.5)
    os.kill(victim.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while len(results) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(results) == 6  # nothing hangs
    failed = [o for o in results if o.error]
    assert failed and all("data-parallel replica 0" in o.error and "exited" in o.error
                          and "not retried" in o.error for o in failed)
    after = dp_engine.generate([[1, 2, 3]], {"max_new_tokens": 3})
    assert after[0].error is None and len(after[0].token_ids) == 3
    assert any("replica 0" in line for line in dp_engine.stats()["exited_replicas"])
