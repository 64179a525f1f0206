"""Every public Engine method's bad input: an InvalidRequest naming the parameter, the bad
value and what is allowed, raised on the caller's thread; the engine serves on."""

from __future__ import annotations

import asyncio
import re

import pytest

from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.engine.build import engine_config

OK = {"max_new_tokens": 2, "temperature": 0, "ignore_eos": True}


def generate(prompts=None, params=OK, **kw):
    prompts = [[1, 2, 3]] if prompts is None else prompts
    return lambda engine: engine.generate(prompts, params, **kw)


def params(**fields):
    return generate(params={**OK, **fields})


def stream(prompts="hi", params=OK, **kw):
    async def consume(engine):
        async for _ in engine.generate_stream(prompts, params, **kw):
            pass
    return lambda engine: asyncio.run(consume(engine))


# (case id, the call, then what the message must name: the parameter, the bad value, the
# allowed values)
CASES = [
    ("prompts-float", generate(3.5), "prompts must be", "3.5", "a string, token ids"),
    ("prompts-bytes", generate(b"hi"), "prompts must be", "b'hi'", "decode them to a string"),
    ("prompts-empty-list", generate([]), "prompts must be", "[]", "a non-empty list"),
    ("prompt-none", generate([None]), "prompt must be", "None", "chat messages"),
    ("prompts-item", generate(["a", 5]), "prompts[1] must be", "5", "token ids (a list of ints)"),
    ("token-float", generate([1, 2.5]), "token ids must be integers", "2.5", "integers"),
    ("token-range", generate([[1, 99999]]), "token id 99999", "99999", "[0, 300)"),
    ("token-bool", generate([[1, True]]), "token id True", "True", "integers in [0, 300)"),
    ("prompt-empty", generate([""]), "empty prompt", "(prompt)", "at least one token"),
    ("prompt-long", generate([[1] * 600]), "prompt of 600 tokens", "600",
     "longer than this engine allows (511"),
    ("params-type", generate(params="greedy"), "sampling_params must be", "'greedy'",
     "a SamplingParams, a dict or None"),
    ("params-count", generate(["a", "b"], [OK]), "sampling params for 2 prompts", "got 1",
     "one per prompt"),
    ("unknown-key", params(tempreature=0.5), "unknown key(s) tempreature", "tempreature",
     "known keys are"),
    ("max_new_tokens-bool", params(max_new_tokens=True), "max_new_tokens must be", "True",
     "an integer >= 0"),
    ("top_k-bool", params(top_k=True), "top_k must be", "True", "None or an integer >= 1"),
    ("seed-bool", params(seed=True), "seed must be", "True", "in [-2**63, 2**63)"),
    ("seed-big", params(seed=2**64), "seed must be", str(2**64), "in [-2**63, 2**63)"),
    ("ignore_eos-str", params(ignore_eos="yes"), "ignore_eos must be", "'yes'", "True or False"),
    ("skip_special-str", params(skip_special_tokens="no"), "skip_special_tokens must be",
     "'no'", "True or False"),
    ("stop_ids-float", params(stop_token_ids=[1.7]), "stop_token_ids must be", "[1.7]",
     "integers >= 0"),
    ("stop_ids-int", params(stop_token_ids=5), "stop_token_ids must be", "5", "a list of token"),
    ("stop_ids-vocab", params(stop_token_ids=[5000]), "stop_token_ids has 5000", "5000",
     "[0, 300)"),
    ("stop-int", params(stop=5), "stop must be", "5", "a non-empty string or a list"),
    ("stop-empty", params(stop=["a", ""]), "stop must be", "['a', '']", "non-empty strings"),
    ("choices-int", params(choices=5), "choices must be", "5", "a non-empty list of non-empty"),
    ("choices-empty", params(choices=[]), "choices must be", "[]", "a non-empty list"),
    ("regex-int", generate(regex=5), "regex must be", "5", "None or a regex string"),
    ("regex-syntax", generate(regex="(ab"), "invalid constraint: regex '(ab'", "position 0",
     "balance the parentheses"),
    ("schema-set", params(json_schema={"a": {1}}), "json_schema must be JSON", "set",
     "a dict of JSON values"),
    ("temperature-str", params(temperature="hot"), "temperature must be", "'hot'", ">= 0"),
    ("top_p-nan", params(top_p=float("nan")), "top_p must be", "nan", "in (0, 1]"),
    ("logprobs-negative", params(logprobs=-1), "logprobs must be", "-1", "None or an integer"),
    ("n-zero", params(n=0), "n must be", "0", "an integer >= 1"),
    ("n-limit", params(n=100000), "n: 100000", "100000", "Engine(max_n=...)"),
    ("max_new_tokens-limit", params(max_new_tokens=2**30), "max_new_tokens: 1073741824",
     "1073741824", "Engine(max_new_tokens_limit=...)"),
    ("stop-limit", params(stop=["x"] * 65), "stop strings: 65", "65",
     "Engine(max_stop_strings=...)"),
    ("stop_ids-limit", params(stop_token_ids=[5] * 65), "stop_token_ids: 65", "65",
     "Engine(max_stop_token_ids=...)"),
    ("prompts-limit", generate([[1]] * 16385), "prompts in one call: 16385", "16385",
     "Engine(max_prompts_per_call=...)"),
    ("min_tokens-negative", params(min_tokens=-1), "min_tokens must be", "-1", ">= 0"),
    ("min_tokens-over", params(min_tokens=5, max_new_tokens=2), "min_tokens must be", "got 5",
     "<= max_new_tokens (2)"),
    ("min_tokens-constraint", generate(params={**OK, "min_tokens": 1}, regex="[0-9]+"),
     "min_tokens cannot be combined with regex", "min_tokens=1", "the constraint decides"),
    ("stop_regex-empty-match", params(stop_regex=["x*"]), "stop_regex 'x*'", "'x*'",
     "match at least one character"),
    ("stop_regex-lookaround", params(stop_regex="a(?=b)"), "stop_regex 'a(?=b)'",
     "position 1", "spell out the text"),
    ("stop_regex-int", params(stop_regex=3), "stop_regex must be", "3", "a non-empty string"),
    ("healed_prefix-int", params(healed_prefix=5), "healed_prefix must be", "5", "a string"),
    ("rids-str", generate(["a", "b", "c"], rids="abc"), "rids must be", "'abc'",
     "a list of request ids"),
    ("rids-int", generate(rids=[1]), "rids[0] must be", "1", "a non-empty string"),
    ("rids-dup", generate(["a", "b"], rids=["x", "x"]), "rids must be unique", "'x'",
     "within a call"),
    ("rids-count", generate(["a", "b"], rids=["x"]), "got 1 request ids for 2 prompts", "1",
     "one per prompt"),
    ("submit-on_output", lambda e: e.submit("hi", OK, on_output=None), "on_output must be",
     "None", "a callable"),
    ("submit-on_delta", lambda e: e.submit("hi", OK, on_output=print, on_delta=5),
     "on_delta must be", "5", "a callable"),
    ("stream-rid", stream(rid=5), "rid must be", "5", "a string"),
    ("stream-rid-and-rids", stream(rid="a", rids=["a"]), "rid (one prompt) or rids", "not both",
     "one per prompt"),
    ("stream-prompts", stream(3.5), "prompts must be", "3.5", "a string"),
    ("abort-rid", lambda e: e.abort(5), "rid must be", "5", "a request id (a string)"),
    ("score-str", lambda e: e.score("hi", "abc"), "continuations must be", "'abc'",
     "a non-empty list of strings or token-id lists"),
    ("score-item", lambda e: e.score("hi", [5]), "continuations[0] must be", "5",
     "a string or token ids"),
    ("score-empty-item", lambda e: e.score("hi", [""]), "continuations[0] is empty", "",
     "a non-empty continuation"),
    ("score-prompts", lambda e: e.score(["a", "b"], ["c"]), "score takes one prompt", "['a', 'b']",
     "a string or token ids"),
    ("prebuild-str", lambda e: e.prebuild_constraints("[0-9]"), "regexes must be", "'[0-9]'",
     "a list of regex strings"),
]


@pytest.mark.parametrize(("call", "param", "value", "allowed"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_names_parameter_value_and_what_is_allowed(llama_engine, call, param, value,
                                                             allowed):
    with pytest.raises(InvalidRequest) as info:
        call(llama_engine)
    message = str(info.value)
    assert param in message and value in message and allowed in message, message
    (out,) = llama_engine.generate([[1, 2, 3]], OK)
    assert out.error is None and len(out.token_ids) == 2


@pytest.mark.parametrize(("option", "value"), [
    ("max_n", 0), ("max_new_tokens_limit", True), ("max_prompt_tokens", 0),
    ("max_prompts_per_call", "many"), ("max_stop_strings", -1), ("max_stop_token_ids", 1.5),
])
def test_limits_are_engine_options_checked_when_built(option, value):
    with pytest.raises(InvalidRequest, match=rf"{option} must be (None or )?an integer >= 1, "
                                             rf"got {re.escape(repr(value))}"):
        engine_config({option: value})


def test_limits_are_configurable(llama_dir):
    import sglc

    with sglc.Engine(llama_dir, max_total_tokens=1024, max_n=2, max_prompt_tokens=3,
                     max_stop_strings=1) as engine:
        assert len(engine.generate([[1, 2, 3]], {**OK, "n": 2})) == 2
        with pytest.raises(InvalidRequest, match=r"n: 3 is more than this engine allows "
                                                 r"\(max_n=2;"):
            engine.generate([[1, 2, 3]], {**OK, "n": 3})
        with pytest.raises(InvalidRequest, match=r"prompt of 4 tokens is longer than this "
                                                 r"engine allows \(max_prompt_tokens=3;"):
            engine.generate([[1, 2, 3, 4]], OK)
        with pytest.raises(InvalidRequest, match="stop_regex patterns: 2 is more"):
            engine.generate([[1, 2, 3]], {**OK, "stop_regex": ["a", "b"]})


def test_seeds_are_signed_64_bit_and_never_alias():
    assert SamplingParams(seed=-(2**63)).seed == -(2**63)
    assert SamplingParams(seed=2**63 - 1).seed == 2**63 - 1
    for bad in (2**63, -(2**63) - 1, 2**64):
        with pytest.raises(InvalidRequest, match=r"seed must be None or an integer in "
                                                 r"\[-2\*\*63, 2\*\*63\)"):
            SamplingParams(seed=bad)
    # sample i of n uses seed + i, wrapping within the range
    top = SamplingParams(seed=2**63 - 1, n=2)
    assert top.for_sample(1).seed == -(2**63)


def test_seeded_sampling_differs_between_seeds_that_used_to_alias(llama_engine):
    sampled = {"max_new_tokens": 8, "temperature": 1.0, "ignore_eos": True}
    outs = [llama_engine.generate([[1, 2, 3]], {**sampled, "seed": seed})[0].token_ids
            for seed in (0, -1, 2**63 - 1)]
    assert outs[0] != outs[1] and outs[0] != outs[2]


@pytest.mark.parametrize(("options", "message"), [
    ({"max_running_requests": "many"}, "max_running_requests must be an integer >= 1, got 'many'"),
    ({"chunked_prefill_size": -1}, "chunked_prefill_size must be None or an integer >= 0, got -1"),
    ({"new_token_reserve_ratio": 2}, "new_token_reserve_ratio must be in [0, 1], got 2"),
    ({"seed": "x"}, "seed must be an integer in [-2**63, 2**63), got 'x'"),
    ({"max_total_tokens": 3, "page_size": 2}, "max_total_tokens must be >= 4 (two pages"),
    ({"disable_radix_cache": "yes"}, "disable_radix_cache must be True or False, got 'yes'"),
    ({"max_tokens": 5}, "unknown Engine option(s): max_tokens (did you mean max_total_tokens?)"),
])
def test_engine_options_name_the_option_value_and_what_is_allowed(options, message):
    with pytest.raises(InvalidRequest) as info:
        engine_config(options)
    assert message in str(info.value)


def test_a_path_is_a_directory_option(tmp_path):
    assert engine_config({"index_cache_dir": tmp_path}).index_cache_dir == str(tmp_path)
