"""`Engine(response_cache=PATH)`: repeated deterministic requests are answered from the cache
with the outputs the model gave, without reaching the scheduler; other requests never are;
the cache outlives the engine and is keyed by the model; bad files and options are clear
errors; programs' traces mark cached calls."""

from __future__ import annotations

import asyncio
import json

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.cli import main
from sglc.cli.common import engine_options
from sglc.runtime.core import InvalidRequest
from sglc.runtime.executor.trace import Trace
from sglc.runtime.response_cache import ResponseCacheError

PROMPTS = ["The quick brown", [1, 5, 7, 9, 11, 13], "def f(x):"]
GREEDY = {"max_new_tokens": 12, "temperature": 0, "logprobs": 2}


def engine(path, cache, **options) -> sglc.Engine:
    return sglc.Engine(path, max_total_tokens=2048, response_cache=str(cache), **options)


def same_answer(a, b) -> bool:
    return (a.text, a.token_ids, a.finish_reason, a.logprobs, a.is_valid,
            a.usage.prompt_tokens, a.usage.completion_tokens) == \
           (b.text, b.token_ids, b.finish_reason, b.logprobs, b.is_valid,
            b.usage.prompt_tokens, b.usage.completion_tokens)


def test_hits_equal_the_models_outputs_and_skip_the_scheduler(llama_dir, tmp_path) -> None:
    with engine(llama_dir, tmp_path / "c.sqlite") as e:
        first = e.generate(PROMPTS, GREEDY)
        before = e.stats()
        again = e.generate(PROMPTS, GREEDY)
        after = e.stats()
    assert all(not o.usage.cached_response and o.usage.forward_passes > 0 for o in first)
    assert all(o.usage.cached_response and o.usage.forward_passes == 0 for o in again)
    assert all(same_answer(a, b) for a, b in zip(first, again, strict=True))
    assert [o.rid for o in again] != [o.rid for o in first]  # answered as the new requests
    # nothing was scheduled for the second call
    for counter in ("num_extend_batches", "num_decode_batches", "num_prefill_tokens"):
        assert after[counter] == before[counter]
    assert after["response_cache"]["hits"] == 3 and after["response_cache"]["stores"] == 3


def test_seeded_sampling_hits_and_unseeded_never_does(llama_dir, tmp_path) -> None:
    seeded = {"max_new_tokens": 10, "temperature": 0.9, "seed": 7, "n": 2}
    unseeded = {"max_new_tokens": 10, "temperature": 0.9}
    with engine(llama_dir, tmp_path / "c.sqlite") as e:
        first = e.generate(PROMPTS[:2], seeded)
        again = e.generate(PROMPTS[:2], seeded)
        assert [o.index for o in again] == [0, 1, 0, 1]
        assert all(o.usage.cached_response for o in again)
        assert all(same_answer(a, b) for a, b in zip(first, again, strict=True))
        for _ in range(2):
            outs = e.generate(PROMPTS[:2], unseeded)
            assert not any(o.usage.cached_response for o in outs)
        # another parameter is another request
        other = e.generate(PROMPTS[:2], {**seeded, "seed": 8})
        assert not any(o.usage.cached_response for o in other)
        stats = e.stats()["response_cache"]
    assert stats["hits"] == 2 and stats["entries"] == 4


def test_constrained_and_streamed_hits(llama_dir, tmp_path) -> None:
    params = {"max_new_tokens": 8, "temperature": 0, "regex": "[a-z]{2,5}"}

    async def stream(e: sglc.Engine) -> list:
        return [d async for d in e.generate_stream("Name: ", params)]

    with engine(llama_dir, tmp_path / "c.sqlite") as e:
        first = e.generate(["Name: "], params)[0]
        deltas = asyncio.run(stream(e))
    assert first.is_valid
    assert "".join(d.text for d in deltas) == first.text
    assert deltas[-1].finish_reason == first.finish_reason


def test_the_cache_outlives_the_engine_and_is_keyed_by_the_model(llama_dir, tmp_path) -> None:
    cache = tmp_path / "c.sqlite"
    with engine(llama_dir, cache) as e:
        first = e.generate(PROMPTS, GREEDY)
    with engine(llama_dir, cache) as e:
        again = e.generate(PROMPTS, GREEDY)
    assert all(o.usage.cached_response for o in again)
    assert all(same_answer(a, b) for a, b in zip(first, again, strict=True))
    other = tmp_path / "other-model"
    make_model_dir(other, "llama", seed=1)  # same shapes, other weights
    with engine(other, cache) as e:
        theirs = e.generate(PROMPTS, GREEDY)
    assert not any(o.usage.cached_response for o in theirs)


def test_a_corrupted_cache_fails_the_engine_start(llama_dir, tmp_path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(ResponseCacheError, match="bad.sqlite is not a valid SQLite database"):
        engine(llama_dir, bad)
    with pytest.raises(InvalidRequest, match="unknown response_cache_policy 'lfu'"):
        engine(llama_dir, tmp_path / "c.sqlite", response_cache_policy="lfu")
    with pytest.raises(InvalidRequest, match="response_cache_max_bytes must be an integer"):
        engine(llama_dir, tmp_path / "c.sqlite", response_cache_max_bytes=0)


def test_a_programs_trace_marks_cached_calls(llama_dir, tmp_path) -> None:
    prog = sglc.compile('fn main() -> str:\n    "Say: " gen x(max_tokens=6)\n    return x\n')
    traces = [Trace(), Trace()]
    values = []
    for trace in traces:
        with sglc.Runtime(model_path=llama_dir, max_total_tokens=2048,
                          response_cache=str(tmp_path / "c.sqlite")) as rt:
            values.append(prog.main(runtime=rt, trace=trace))
    assert values[0] == values[1]
    assert [r["cached_response"] for t in traces for r in t.records] == [False, True]
    assert traces[1].to_json()["num_cached_responses"] == 1


def test_the_cli_flags(llama_dir, tmp_path, capsys) -> None:
    from sglc.cli import build_parser

    cache = tmp_path / "c.sqlite"
    args = build_parser().parse_args(
        ["generate", "--response-cache", str(cache), "--response-cache-policy", "lec",
         "--response-cache-max-bytes", "4096", "hi"])
    options = engine_options(args)
    assert (options["response_cache"], options["response_cache_policy"],
            options["response_cache_max_bytes"]) == (str(cache), "lec", 4096)
    for _ in range(2):
        assert main(["generate", "--model", str(llama_dir), "--max-new-tokens", "4",
                     "--max-total-tokens", "1024", "--response-cache", str(cache), "--json",
                     "The quick"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert rows[0]["text"] == rows[1]["text"]
    assert [r["usage"]["cached_response"] for r in rows] == [False, True]


def test_latency_cost_is_the_measured_time(llama_dir, tmp_path) -> None:
    import sqlite3
    import time

    cache = tmp_path / "c.sqlite"
    start = time.perf_counter()
    with engine(llama_dir, cache, response_cache_cost="latency") as e:
        e.generate(PROMPTS[:1], GREEDY)
    elapsed = time.perf_counter() - start
    with sqlite3.connect(cache) as db:
        (cost,) = db.execute("SELECT cost FROM entries").fetchone()
    assert 0 < cost < elapsed
