"""The Engine's public API on a tiny random model: sampling options, stops, streaming,
abort, chat, n > 1, logprobs."""

from __future__ import annotations

import asyncio
import json

import pytest

import sglc
from sglc.runtime.core import FinishReason

PROMPT = [1, 5, 7, 9, 11, 13, 15]


def test_same_seed_same_output_and_different_seeds_differ(llama_engine):
    params = {"max_new_tokens": 16, "temperature": 1.0, "seed": 42, "ignore_eos": True}
    a = llama_engine.generate(PROMPT, params)[0].token_ids
    b = llama_engine.generate([PROMPT, [1, 2, 3]], [params, {"max_new_tokens": 4}])[0].token_ids
    c = llama_engine.generate(PROMPT, {**params, "seed": 43})[0].token_ids
    assert a == b
    assert a != c


def test_n_samples_share_the_prompt_and_differ(llama_engine):
    prompt = PROMPT + list(range(40, 80))
    outs = llama_engine.generate(prompt, {"n": 4, "max_new_tokens": 12, "temperature": 1.0,
                                          "seed": 7, "ignore_eos": True})
    assert [o.index for o in outs] == [0, 1, 2, 3]
    assert len({o.rid for o in outs}) == 1
    assert len({tuple(o.token_ids) for o in outs}) > 1
    assert sum(o.usage.cached_tokens for o in outs) >= 3 * 32  # later samples hit the cache


def test_top_k_1_is_greedy(llama_engine):
    greedy = llama_engine.generate(PROMPT, {"max_new_tokens": 10, "temperature": 0,
                                            "ignore_eos": True})[0].token_ids
    topk1 = llama_engine.generate(PROMPT, {"max_new_tokens": 10, "temperature": 1.5, "top_k": 1,
                                           "ignore_eos": True})[0].token_ids
    assert greedy == topk1


def test_stop_token_ids_and_max_new_tokens(llama_engine):
    free = llama_engine.generate(PROMPT, {"max_new_tokens": 12, "temperature": 0,
                                          "ignore_eos": True})[0]
    stop_at = free.token_ids[5]
    first = free.token_ids.index(stop_at)
    out = llama_engine.generate(PROMPT, {"max_new_tokens": 12, "temperature": 0,
                                         "stop_token_ids": [stop_at], "ignore_eos": True})[0]
    assert out.token_ids == free.token_ids[: first + 1]
    assert out.finish_reason is FinishReason.STOP
    assert free.finish_reason is FinishReason.LENGTH and len(free.token_ids) == 12


def test_eos_from_generation_config_stops(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=2048) as engine:
        free = engine.generate(PROMPT, {"max_new_tokens": 30, "temperature": 0,
                                        "ignore_eos": True})[0].token_ids
        eos = free[3]
        reqs = engine._requests.groups([PROMPT], {"max_new_tokens": 30, "temperature": 0}, None)[0]
        assert reqs[0].eos_token_ids == frozenset({2})  # from generation_config.json
    # with the model's eos id set to a token it will produce, generation stops there
    gen = json.loads((llama_dir / "generation_config.json").read_text())
    try:
        (llama_dir / "generation_config.json").write_text(json.dumps({**gen, "eos_token_id": [eos]}))
        with sglc.Engine(llama_dir, max_total_tokens=2048) as engine:
            out = engine.generate(PROMPT, {"max_new_tokens": 30, "temperature": 0})[0]
    finally:
        (llama_dir / "generation_config.json").write_text(json.dumps(gen))
    assert out.token_ids == free[: free.index(eos) + 1]
    assert out.finish_reason is FinishReason.STOP


def test_stop_string_across_token_boundaries(llama_engine):
    tok = llama_engine.tokenizer
    free = llama_engine.generate("The quick brown", {"max_new_tokens": 20, "temperature": 0,
                                                     "ignore_eos": True})[0]
    assert len(free.text) > 6
    # a stop string that straddles tokens: the last char of token 1 + the first of token 2
    pieces = [tok.decode([t]) for t in free.token_ids]
    k = next(i for i in range(1, len(pieces)) if pieces[i - 1] and pieces[i])
    stop = pieces[k - 1][-1] + pieces[k][0]
    out = llama_engine.generate("The quick brown", {"max_new_tokens": 20, "temperature": 0,
                                                    "ignore_eos": True, "stop": [stop]})[0]
    assert stop not in out.text
    assert free.text.startswith(out.text)
    assert free.text[len(out.text):].startswith(stop)
    assert out.finish_reason is FinishReason.STOP


def test_logprobs_match_the_score_of_the_same_tokens(llama_engine):
    out = llama_engine.generate(PROMPT, {"max_new_tokens": 6, "temperature": 0, "logprobs": 3,
                                         "ignore_eos": True})[0]
    assert len(out.logprobs) == 6
    assert all(len(lp.top) == 3 for lp in out.logprobs)
    assert all(lp.top[0][0] == lp.token_id for lp in out.logprobs)  # greedy = top-1
    score = llama_engine.score(PROMPT, [out.token_ids])[0]
    assert [lp.logprob for lp in out.logprobs] == pytest.approx(score.token_logprobs, abs=1e-4)


def test_streaming_deltas_concatenate_to_the_output(llama_engine):
    params = {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}
    full = llama_engine.generate("héllo 世界", params)[0]

    async def collect():
        return [d async for d in llama_engine.generate_stream("héllo 世界", params)]

    deltas = asyncio.run(collect())
    assert "".join(d.text for d in deltas) == full.text
    assert sum((d.token_ids for d in deltas), []) == full.token_ids
    assert deltas[-1].finish_reason is FinishReason.LENGTH
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert len(deltas) > 2  # really incremental


def test_concurrent_coroutines_batch_together(llama_dir):
    params = {"max_new_tokens": 24, "temperature": 0, "ignore_eos": True}
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:

        async def one(p):
            return [d async for d in engine.generate_stream(p, params)]

        async def many():
            return await asyncio.gather(*(one([1, 10 + i, 20 + i]) for i in range(8)))

        results = asyncio.run(many())
        stats = engine.stats()
    assert all(sum((d.token_ids for d in r), []) for r in results)
    assert stats["num_decode_batches"] < 8 * 24  # decoded together, not one by one


def test_abort_frees_memory_and_others_finish(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:
        long = {"max_new_tokens": 400, "temperature": 0, "ignore_eos": True}
        short = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}

        async def scenario():
            stream = engine.generate_stream(PROMPT, long, rid="victim")
            first = await stream.__anext__()
            engine.abort("victim")
            rest = [d async for d in stream]
            other = await engine.generate_async([[1, 2, 3]], short)
            return first, rest, other

        first, rest, other = asyncio.run(scenario())
        stats = engine.stats()
    assert first.finish_reason is None
    assert rest[-1].finish_reason is FinishReason.ABORT
    assert len(sum((d.token_ids for d in rest), first.token_ids)) < 400
    assert other[0].finish_reason is FinishReason.LENGTH and len(other[0].token_ids) == 8
    assert stats["free_slots"] + stats["cache"]["cached_tokens"] == stats["total_slots"]


def test_chat_messages_use_the_chat_template(llama_engine):
    messages = [{"role": "user", "content": "hi"}]
    out = llama_engine.generate([messages], {"max_new_tokens": 4, "temperature": 0})[0]
    expected = llama_engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    if not isinstance(expected, list):
        expected = expected["input_ids"]
    assert out.usage.prompt_tokens == len(expected)
    ref = llama_engine.generate([expected], {"max_new_tokens": 4, "temperature": 0})[0]
    assert out.token_ids == ref.token_ids


def test_text_prompt_equals_its_token_ids(llama_engine):
    ids = llama_engine.tokenizer.encode("def f(x):")
    a = llama_engine.generate("def f(x):", {"max_new_tokens": 8, "temperature": 0})[0]
    b = llama_engine.generate([ids], {"max_new_tokens": 8, "temperature": 0})[0]
    assert a.token_ids == b.token_ids and a.text == b.text
    if 2 not in a.token_ids:  # no EOS: the text is the plain decode of the tokens
        assert a.text == llama_engine.tokenizer.decode(a.token_ids, skip_special_tokens=True)


def test_shutdown_finishes_in_flight_requests_and_refuses_new_ones(llama_dir):
    import threading

    engine = sglc.Engine(llama_dir, max_total_tokens=4096)
    result = {}
    thread = threading.Thread(target=lambda: result.update(out=engine.generate(
        PROMPT, {"max_new_tokens": 480, "temperature": 0, "ignore_eos": True})[0]))
    thread.start()
    while engine.stats()["num_decode_tokens"] == 0:
        pass
    engine.shutdown()
    thread.join(timeout=30)
    assert result["out"].finish_reason is FinishReason.ABORT
    assert "shut down" in result["out"].error
    with pytest.raises(sglc.EngineError, match="shut down"):
        engine.generate(PROMPT)


def test_submit_calls_back_per_request_as_each_finishes(llama_dir):
    import threading

    finished: list[tuple[str, int]] = []
    all_done = threading.Event()
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:

        def on_output(out):
            finished.append((out.rid, engine.core.counters.num_decode_tokens))
            if len(finished) == 2:
                all_done.set()

        engine.submit([PROMPT, [1, 2, 3]],
                      [{"max_new_tokens": 200, "temperature": 0, "ignore_eos": True},
                       {"max_new_tokens": 3, "temperature": 0, "ignore_eos": True}],
                      on_output=on_output, rids=["long", "short"])
        assert all_done.wait(60)
    assert [rid for rid, _ in finished] == ["short", "long"]
    assert finished[0][1] < finished[1][1]  # the short one was delivered mid-way


def test_generate_async_awaits_without_blocking(llama_engine):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        outs = await llama_engine.generate_async([PROMPT, [1, 4]], {"max_new_tokens": 30,
                                                                   "temperature": 0})
        task.cancel()
        return outs, ticks

    outs, ticks = asyncio.run(main())
    assert len(outs) == 2 and outs[0].usage.prompt_tokens == len(PROMPT)
    assert ticks > 1  # the event loop kept running while the engine generated
