"""What ends a request by its text, in the engine alone: min_tokens (against transformers'
min_new_tokens), stop regexes (against a brute-force search with `re`), the healed prefix
that stop strings skip, and streaming several prompts at once."""

from __future__ import annotations

import asyncio
import re

import pytest
import torch

from sglc.runtime.core import FinishReason

GREEDY = {"max_new_tokens": 24, "temperature": 0, "ignore_eos": True}
PROMPT = "The quick brown"


@pytest.fixture(scope="module")
def free(llama_engine):
    """The greedy output of PROMPT with nothing to stop it."""
    return llama_engine.generate(PROMPT, GREEDY)[0]


def first_match(pattern: str, text: str) -> tuple[int, int] | None:
    """The match that ends first, and of those the leftmost (what a stop regex cuts at)."""
    regex = re.compile(pattern)
    for end in range(1, len(text) + 1):
        for start in range(end):
            if regex.fullmatch(text, start, end):
                return start, end
    return None


def stream_text(engine, prompt, params) -> str:
    async def collect():
        return [d async for d in engine.generate_stream(prompt, params)]

    return "".join(d.text for d in asyncio.run(collect()))


# -- min_tokens ------------------------------------------------------------------------------
def test_min_tokens_matches_transformers_min_new_tokens(llama_engine, llama_dir):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(llama_dir).eval()
    prompt = [1, 47, 209]
    plain = llama_engine.generate([prompt], GREEDY)[0].token_ids
    stop_id = plain[2]  # a token greedy decoding picks early: it would end the output at once
    for min_tokens in (0, 3, 6):
        params = {**GREEDY, "max_new_tokens": 12, "stop_token_ids": [stop_id],
                  "min_tokens": min_tokens}
        out = llama_engine.generate([prompt], params)[0]
        with torch.no_grad():
            ref = hf.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                              min_new_tokens=min_tokens, eos_token_id=stop_id, pad_token_id=0)
        assert out.token_ids == ref[0, len(prompt):].tolist(), min_tokens
        assert stop_id not in out.token_ids[:min_tokens]
        assert out.finish_reason is FinishReason.STOP or len(out.token_ids) == 12


def test_min_tokens_holds_back_eos_too(llama_dir, tmp_path):
    import json
    import shutil

    import sglc

    prompt = [1, 47, 209]
    model = shutil.copytree(llama_dir, tmp_path / "m")
    with sglc.Engine(model, max_total_tokens=1024) as engine:
        eos = engine.generate([prompt], GREEDY)[0].token_ids[1]
    gen = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**gen, "eos_token_id": [eos]}))
    params = {"max_new_tokens": 12, "temperature": 0}
    with sglc.Engine(model, max_total_tokens=1024) as engine:
        assert engine.generate([prompt], params)[0].token_ids[-1] == eos  # ends at step 1
        out = engine.generate([prompt], {**params, "min_tokens": 5})[0]
        ignoring = engine.generate([prompt], {**params, "min_tokens": 5, "ignore_eos": True})[0]
    assert eos not in out.token_ids[:5] and len(out.token_ids) >= 5
    # with ignore_eos, EOS is an ordinary token: not held back
    assert ignoring.token_ids[1] == eos


def test_stop_strings_are_armed_at_min_tokens(llama_engine, free):
    stop = free.text[3]
    early = llama_engine.generate(PROMPT, {**GREEDY, "stop": [stop]})[0]
    late = llama_engine.generate(PROMPT, {**GREEDY, "stop": [stop], "min_tokens": 8})[0]
    assert len(early.token_ids) < 8 <= len(late.token_ids)
    for out in (early, late):  # each is the free text cut before an occurrence of the stop
        assert free.text.startswith(out.text) and free.text[len(out.text):].startswith(stop)
    assert len(late.text) > len(early.text)


# -- stop regexes ----------------------------------------------------------------------------
@pytest.mark.parametrize("pick", [
    lambda t: re.escape(t[2:4]),
    lambda t: f"{re.escape(t[5])}[^{re.escape(t[0])}]",
    lambda t: "[0-9]+|" + re.escape(t[-7:-4]),
])
def test_stop_regex_cuts_at_the_first_match_as_re_finds_it(llama_engine, free, pick):
    pattern = pick(free.text)
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop_regex": [pattern]})[0]
    start, _ = first_match(pattern, free.text)
    assert out.text == free.text[:start]
    assert out.finish_reason is FinishReason.STOP
    # streamed text never shows part of a match that later completes
    assert stream_text(llama_engine, PROMPT, {**GREEDY, "stop_regex": pattern}) == out.text


def test_stop_regex_and_stop_strings_together_the_earliest_wins(llama_engine, free):
    late, early = free.text[6:8], free.text[2:4]
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop": [late],
                                         "stop_regex": [re.escape(early)]})[0]
    assert out.text == free.text[:min(free.text.find(late), free.text.find(early))]


def test_a_stop_regex_that_never_matches_changes_nothing(llama_engine, free):
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop_regex": ["zzz+q"]})[0]
    assert out.text == free.text and out.finish_reason is FinishReason.LENGTH


# -- the healed prefix -----------------------------------------------------------------------
def test_a_stop_equal_to_the_healed_prefix_is_not_matched_inside_it(llama_engine, free):
    head = free.text[0]
    cut = llama_engine.generate(PROMPT, {**GREEDY, "stop": [head]})[0]
    assert cut.text == ""  # the bug healing had: the prefix itself matched the stop
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop": [head], "healed_prefix": head})[0]
    k = free.text.find(head, 1)
    assert out.text == (free.text[:k] if k != -1 else free.text)


def test_a_stop_containing_the_healed_prefix_does_not_straddle_it(llama_engine, free):
    head, stop = free.text[0], free.text[:3]
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop": [stop], "healed_prefix": head})[0]
    k = free.text.find(stop, 1)
    assert out.text == (free.text[:k] if k != -1 else free.text)
    regex = llama_engine.generate(PROMPT, {**GREEDY, "stop_regex": [re.escape(stop)],
                                           "healed_prefix": head})[0]
    assert regex.text == out.text


def test_an_output_that_does_not_start_with_the_prefix_is_matched_whole(llama_engine, free):
    other = "\u2603" if free.text[0] != "\u2603" else "\u2604"
    head = free.text[0]
    out = llama_engine.generate(PROMPT, {**GREEDY, "stop": [head], "healed_prefix": other})[0]
    assert out.text == ""


def test_streaming_with_a_healed_prefix_concatenates_to_the_output(llama_engine, free):
    head = free.text[0]
    params = {**GREEDY, "stop": [head], "healed_prefix": head}
    assert stream_text(llama_engine, PROMPT, params) == \
        llama_engine.generate(PROMPT, params)[0].text


# -- streaming several prompts ---------------------------------------------------------------
def test_generate_stream_streams_several_prompts_at_once(llama_engine):
    prompts = ["The quick brown", [1, 5, 9], "héllo"]
    params = [GREEDY, {**GREEDY, "n": 2, "temperature": 1.0, "seed": 3}, GREEDY]
    outs = llama_engine.generate(prompts, params)

    async def collect():
        return [d async for d in llama_engine.generate_stream(prompts, params,
                                                              rids=["s-a", "s-b", "s-c"])]

    deltas = asyncio.run(collect())
    for out in outs:
        mine = [d for d in deltas if (d.prompt_index, d.index) == (out.prompt_index, out.index)]
        assert "".join(d.text for d in mine) == out.text
        assert sum((d.token_ids for d in mine), []) == out.token_ids
        assert mine[-1].finish_reason is out.finish_reason
        assert {d.rid for d in mine} == {["s-a", "s-b", "s-c"][out.prompt_index]}
    assert [o.prompt_index for o in outs] == [0, 1, 1, 2]


def test_leaving_a_stream_of_several_prompts_aborts_them_all(llama_engine):
    long = {"max_new_tokens": 400, "temperature": 0, "ignore_eos": True}

    async def first_delta():
        async for delta in llama_engine.generate_stream([[1, 5, 9], [1, 6, 9]], long,
                                                        rids=["leave-a", "leave-b"]):
            return delta

    assert asyncio.run(first_delta()).rid in {"leave-a", "leave-b"}
    # both ids are free again once their aborts land
    for _ in range(100):
        stats = llama_engine.stats()
        if stats["num_running"] == stats["num_waiting"] == 0:
            break
    assert llama_engine.generate([[1, 5, 9], [1, 6, 9]], GREEDY, rids=["leave-a", "leave-b"])
