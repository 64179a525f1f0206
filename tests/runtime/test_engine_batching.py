"""Same outputs whatever the engine does with memory: radix cache on/off, chunked prefill,
retraction under a tiny pool, paging, policies, and concurrent shared-prefix requests."""

from __future__ import annotations

import random
import threading

import pytest

import sglc

SHARED = list(range(10, 90))  # an 80-token shared head


def workload(seed: int = 0, num: int = 12) -> list[list[int]]:
    rng = random.Random(seed)
    prompts = []
    for i in range(num):
        tail = [rng.randrange(3, 299) for _ in range(rng.randrange(1, 40))]
        prompts.append(([1] + SHARED if i % 2 else [1]) + tail)
    return prompts


PARAMS = {"max_new_tokens": 20, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def reference(llama_dir):
    with sglc.Engine(llama_dir, disable_radix_cache=True, chunked_prefill_size=0,
                     max_total_tokens=8192) as engine:
        return [o.token_ids for o in engine.generate(workload(), PARAMS)]


@pytest.mark.parametrize(
    "options",
    [
        {"policy": "lpm"},
        {"policy": "fcfs"},
        {"chunked_prefill_size": 16},
        {"page_size": 4},
        {"page_size": 4, "chunked_prefill_size": 24, "policy": "fcfs"},
        {"disable_radix_cache": True, "chunked_prefill_size": 7},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_outputs_identical_across_memory_options(llama_dir, reference, options):
    with sglc.Engine(llama_dir, max_total_tokens=8192, **options) as engine:
        outs = engine.generate(workload(), PARAMS)
        stats = engine.stats()
    assert [o.token_ids for o in outs] == reference
    if not options.get("disable_radix_cache"):
        assert stats["cache"]["matched_tokens"] > 0  # the shared head was reused
    assert stats["num_running"] == stats["num_waiting"] == 0


def test_retraction_under_a_tiny_pool_keeps_outputs(llama_dir, reference):
    # 12 requests of up to ~140 tokens each in a pool of 400 slots: decode must retract
    with sglc.Engine(llama_dir, max_total_tokens=400, new_token_reserve_ratio=0.0) as engine:
        outs = engine.generate(workload(), PARAMS)
        stats = engine.stats()
    assert stats["num_retractions"] > 0
    assert [o.token_ids for o in outs] == reference
    # nothing leaked: every slot is free or held by the (unlocked) prefix cache
    assert stats["free_slots"] + stats["cache"]["cached_tokens"] == stats["total_slots"]


def test_cached_tokens_reported_in_usage(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:
        first = engine.generate([[1] + SHARED + [5]], PARAMS)[0]
        second = engine.generate([[1] + SHARED + [6]], PARAMS)[0]
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= len(SHARED)
    assert second.usage.prompt_tokens == len(SHARED) + 2


def test_forward_passes_reported_in_usage(llama_dir):
    """A pass per completion token, plus one per extra prefill chunk."""
    prompt = [1] + SHARED * 3 + [5]
    chunk = 8
    with sglc.Engine(llama_dir, max_total_tokens=4096, chunked_prefill_size=chunk) as engine:
        out = engine.generate([prompt], PARAMS)[0]
    chunks = -(-len(prompt) // chunk)
    assert out.usage.forward_passes == chunks - 1 + out.usage.completion_tokens
    assert out.usage.forced_tokens == 0


def test_concurrent_threads_share_prefix_and_batch(llama_dir, reference):
    prompts = workload()
    results: dict[int, list[int]] = {}
    with sglc.Engine(llama_dir, max_total_tokens=8192) as engine:

        def worker(i: int) -> None:
            results[i] = engine.generate(prompts[i], PARAMS)[0].token_ids

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = engine.stats()
    assert [results[i] for i in range(len(prompts))] == reference
    # batched: fewer decode passes than requests x tokens
    assert stats["num_decode_batches"] < len(prompts) * PARAMS["max_new_tokens"]


def test_in_batch_shared_head_is_computed_once(llama_dir):
    prompts = [[1] + SHARED + [200 + i] for i in range(8)]
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:
        engine.generate(prompts, {"max_new_tokens": 1, "temperature": 0})
        stats = engine.stats()
    # the 81-token head is prefilled by one request; the other seven reuse it
    assert stats["num_prefill_tokens"] < 81 + 8 * 10


def test_cache_statistics_count_only_real_hits(llama_dir):
    prompts = [[1, 7 + i, 30 + i, 60 + i] for i in range(4)]  # nothing shared but token 1
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:
        engine.generate(prompts, {"max_new_tokens": 4, "temperature": 0})
        stats = engine.stats()["cache"]
    assert stats["matched_tokens"] <= 4  # at most the shared first token per request
