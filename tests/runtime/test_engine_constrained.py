"""Constrained decoding end to end through sglc.Engine on tiny random-weight models.

JSON schemas, regexes and choices (byte-level BPE and SentencePiece byte-fallback tokenizers),
jump-forward on/off parity, bad constraints, length limits, mixed batches, and index builds
running beside decoding (test_engine_constrained_builds.py has the index-build tests). The
tests at the end pin engine bugs these tests found (fixed).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from pathlib import Path

import jsonschema
import pytest
import torch
import transformers
from constrained_support import WAIT_S, assert_valid, engine_with_index, greedy
from model_fixtures import TINY

import sglc
from sglc.constraints.schema import regex_for_schema
from sglc.runtime.core import FinishReason, InvalidRequest, Output, SamplingParams

sys.path.insert(0, str(Path(__file__).parent / "constrained"))
from test_constrained_vocabulary import sentencepiece_tokenizer  # noqa: E402

PERSON = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 6},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"], "additionalProperties": False}
POINT = {"type": "object",
         "properties": {"x": {"type": "integer", "minimum": -9, "maximum": 9},
                        "y": {"type": "integer", "minimum": -9, "maximum": 9}},
         "required": ["x", "y"]}
# Bounded (maxLength, maxItems, integer ranges) so that random models finish; "number" is the
# one unbounded value (its lengths are geometric: mean ~25 tokens, 512 is far out of reach).
SCHEMAS = [
    PERSON,
    {"type": "object", "properties": {
        "user": {"type": "object", "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 999},
            "email": {"type": "string", "maxLength": 5}}, "required": ["id", "email"]},
        "active": {"type": "boolean"}}, "required": ["user", "active"]},
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 4},
                                      "city": {"enum": ["Paris", "Rome", "São Paulo"]}},
     "required": ["name", "city"], "additionalProperties": False},
    {"type": "object",  # all optional
     "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9},
                    "b": {"type": "boolean"}, "c": {"type": "string", "maxLength": 3}}},
    {"type": "object", "properties": {
        "a": {"type": "null"}, "b": {"type": "integer", "minimum": -50, "maximum": 50}},
     "required": ["b"]},
    {"type": "object", "properties": {
        "inner": PERSON,
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2}},
     "required": ["inner", "tags"]},
    {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5},
     "minItems": 1, "maxItems": 3},
    {"type": "array", "items": {"type": "boolean"}, "maxItems": 0},
    {"type": "array", "minItems": 1, "maxItems": 2, "items": {
        "type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "minItems": 2, "maxItems": 2}},
    {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0, "maximum": 99},
                                      {"type": "string", "maxLength": 3}], "items": False},
    {"enum": ["a\"b", "back\\slash", "é 世界", 1, 2.5, None, True, {"x": [1]}]},
    {"const": "line\nbreak\ttab\u0001"},
    {"const": {"k": "v", "n": [1, 2], "u": "ü🙂"}},
    {"type": "string", "minLength": 2, "maxLength": 4},
    {"type": "string", "pattern": "^[a-z]{2,3}-[0-9]{1,3}$"},
    {"type": "string", "format": "date"},
    {"type": "string", "format": "uuid"},
    {"type": "integer", "minimum": -3, "maximum": 120},
    {"type": "integer", "exclusiveMinimum": 9.5, "maximum": 20},
    {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "null"}]},
    {"anyOf": [PERSON, {"type": "array", "items": {"type": "string", "maxLength": 2},
                        "maxItems": 2}]},
    {"type": ["string", "null"], "maxLength": 2},
    {"type": ["integer", "boolean"], "minimum": 5, "maximum": 50},
    {"$defs": {"Pt": POINT}, "type": "object",
     "properties": {"from": {"$ref": "#/$defs/Pt"}, "to": {"$ref": "#/$defs/Pt"}},
     "required": ["from", "to"]},
    {"type": "object", "properties": {"label": {"const": "tab\there \"q\" \\ é"},
                                      "n": {"type": "integer", "minimum": 0, "maximum": 3}},
     "required": ["label", "n"]},
    {"type": "number"},
]
ASCII_DATE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")

# Forced strings here have one tokenization (no merges over their characters in the test
# tokenizer), so greedy decoding picks the same tokens as jump-forward's retokenization.
PARITY = [
    {"json_schema": {"type": "object", "required": ["x", "y"], "properties": {
        "x": {"type": "integer", "minimum": 0, "maximum": 7}, "y": {"type": "boolean"}}}},
    {"json_schema": {"type": "object", "required": ["id", "ok", "v"], "properties": {
        "id": {"type": "integer", "minimum": 0, "maximum": 3}, "ok": {"type": "boolean"},
        "v": {"enum": ["up", "down"]}}}},
    {"json_schema": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
        "type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"]}}},
    {"json_schema": {"type": "object", "required": ["p"], "properties": {"p": {
        "type": "object", "required": ["q", "r"], "properties": {
            "q": {"type": "integer", "minimum": 0, "maximum": 3}, "r": {"type": "boolean"}}}}}},
    {"regex": r"\[(x|y|z), (x|y|z)\]"},
    {"regex": r"k=[0-7];v=[0-7];"},
]

REGEXES = [
    r"[0-9]+(\.[0-9]+)?",  # outlines-core pitfall: a match ("1") may go on ("1.5")
    "(yes|yesterday)",  # the same pitfall with a literal
    "[a-c]{0,4}",  # accepts the empty text
    "(ab|cd)*e?",  # accepts the empty text
    "a{0}",  # accepts only the empty text
    r"\d{2,4}-[a-z]{1,5}",
    "héllo|世界|🙂{1,3}",
    r"[A-Z][a-z]{0,6}( [A-Z][a-z]{0,6}){0,2}",
    r"\(\d{3}\) \d{3}-\d{4}",
    "(the|then|there) (cat|mat)",
    " [a-z]{1,3}",  # a leading space (SentencePiece's ▁)
    "\n[a-c]{2}\n?",
    r"-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
]
CHOICES = ["yes", "yesterday", "no", " maybe so", "世界", "a.b|c*"]

BAD_CONSTRAINTS = [
    ({"regex": "a(b"}, "missing )"),
    ({"regex": r"x[^\s\S]"}, "matches no text"),
    ({"regex": "ab(?=c)"}, "lookaround"),
    # refused by both paths (multipleOf, minProperties and recursion take the grammar
    # path: test_engine_grammar.py); the regex path's message names the problem
    ({"json_schema": {"type": "object", "not": {}}}, "accepts no value"),
    ({"json_schema": {"type": "object", "properties": {"x": {"type": "foo"}}}}, "unsupported type"),
    ({"json_schema": {"$ref": "#/$defs/Missing"}}, "missing schema"),
    ({"json_schema": "{nope"}, "not JSON"),
]


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="module")
def jf_engine(llama_dir, index_dir):
    with engine_with_index(llama_dir, index_dir) as engine:
        yield engine


@pytest.fixture(scope="module")
def plain_engine(llama_dir, index_dir):
    with engine_with_index(llama_dir, index_dir, enable_jump_forward=False) as engine:
        yield engine


@pytest.fixture(scope="module")
def sp_dir(tmp_path_factory):
    """A tiny Llama whose tokenizer is SentencePiece-style (▁ for spaces, <0xNN> bytes)."""
    path = tmp_path_factory.mktemp("llama-sp")
    tok = sentencepiece_tokenizer()
    torch.manual_seed(1)
    config = transformers.LlamaConfig(**{**TINY, "vocab_size": len(tok)})
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # spread the logits out, as conftest.make_model_dir does
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sp_engine(sp_dir, index_dir):
    with engine_with_index(sp_dir, index_dir) as engine:
        yield engine


@pytest.fixture
def engines(request):
    """{"bpe": ..., "sp": ...} engine by name, built only when a test asks for it."""
    return lambda name: request.getfixturevalue({"bpe": "jf_engine", "sp": "sp_engine"}[name])


def _counters(engine: sglc.Engine) -> dict[str, int]:
    stats = engine.stats()
    return {k: stats[k] for k in ("num_extend_batches", "num_decode_batches",
                                  "num_forced_tokens", "num_decode_tokens")}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def _prompt(k: int, salt: int = 0) -> list[int]:
    return [1, 5 + k % 7, 9 + k % 13, 40 + (k + salt) % 50, 100 + k % 97]


def _text_tokens(engine: sglc.Engine, out: Output) -> list[int]:
    eos = engine.loaded.eos_token_ids
    return [t for t in out.token_ids if t not in eos]


# -- 1. validity: sampled JSON on random models ----------------------------------------------

@pytest.mark.parametrize("jump_forward", [True, False], ids=["jump-forward", "no-jump-forward"])
def test_sampled_json_is_always_valid(request, jump_forward):
    """500 sampled generations per engine over 26 schemas (each prompt its own schema and seed,
    all in one call): every one finishes, matches, parses and validates."""
    engine = request.getfixturevalue("jf_engine" if jump_forward else "plain_engine")
    n = 500
    schemas = [SCHEMAS[k % len(SCHEMAS)] for k in range(n)]
    params = [
        SamplingParams(max_new_tokens=512 if s.get("type") == "number" else 256,
                       temperature=1.0, seed=10_000 * jump_forward + k, json_schema=s)
        for k, s in enumerate(schemas)
    ]
    before = _counters(engine)
    outs = engine.generate([_prompt(k, jump_forward) for k in range(n)], params)
    counts = _delta(before, _counters(engine))
    assert len(outs) == n
    for out, schema, sp in zip(outs, schemas, params, strict=True):
        assert_valid(out)
        assert re.fullmatch(regex_for_schema(schema), out.text), out.text
        value = json.loads(out.text)
        jsonschema.validate(value, schema)
        assert len(out.token_ids) <= sp.max_new_tokens
        assert out.usage.completion_tokens == len(out.token_ids)
        assert out.usage.forced_tokens <= out.usage.completion_tokens
        assert out.usage.forward_passes >= out.usage.completion_tokens - out.usage.forced_tokens
        assert engine.tokenizer.decode(out.token_ids, skip_special_tokens=True) == out.text
        if schema.get("format") == "date":
            assert ASCII_DATE.fullmatch(value), value
    assert len({o.text for o in outs}) > n // 3  # sampled: the outputs vary
    assert any(not o.text.isascii() for o in outs)  # unicode inside strings
    forced = sum(o.usage.forced_tokens for o in outs)
    if jump_forward:
        assert counts["num_forced_tokens"] >= forced > 0  # later jumps may drop some
    else:
        assert counts["num_forced_tokens"] == forced == 0


def test_date_format_digits_are_ascii():
    """outlines-core's date regex has \\d{4}, which (Python's meaning) takes "٤" too."""
    regex = regex_for_schema({"type": "string", "format": "date"})
    assert re.fullmatch(regex, '"2024-02-29"')
    assert not re.fullmatch(regex, '"2\u066424-02-29"')


# -- 2. jump-forward changes nothing but the work ------------------------------------------------

def test_greedy_jump_forward_matches_plain_decoding(llama_dir, index_dir, jf_engine,
                                                    plain_engine):
    prompts = [[1, 7 + k, 30 + 3 * k, 11] for k in range(8)]
    params = [SamplingParams(max_new_tokens=128, temperature=0, **c)
              for c in PARITY for _ in prompts]
    prompts = prompts * len(PARITY)
    runs = {}
    for name, engine in (("on", jf_engine), ("off", plain_engine)):
        before = _counters(engine)
        runs[name] = (engine.generate(prompts, params), _delta(before, _counters(engine)))
    with engine_with_index(llama_dir, index_dir, disable_radix_cache=True) as engine:
        runs["no-cache"] = (engine.generate(prompts, params), _counters(engine))
    tok = jf_engine.tokenizer
    (on, on_counts), (off, off_counts) = runs["on"], runs["off"]
    for a, b, c in zip(on, off, runs["no-cache"][0], strict=True):
        assert_valid(a)
        # the premise: without jump-forward the model picks the canonical tokens anyway
        assert _text_tokens(plain_engine, b) == tok.encode(b.text, add_special_tokens=False)
        assert (a.text, a.token_ids) == (b.text, b.token_ids)
        assert (c.text, c.token_ids) == (b.text, b.token_ids)
    assert on_counts["num_forced_tokens"] > 0
    assert on_counts["num_decode_batches"] < off_counts["num_decode_batches"]
    assert on_counts["num_decode_tokens"] < off_counts["num_decode_tokens"]
    assert off_counts["num_forced_tokens"] == 0
    assert runs["no-cache"][1]["num_forced_tokens"] == 0  # jump-forward needs the prefix cache


def test_jump_forward_respects_max_new_tokens(jf_engine, plain_engine):
    """A forced string longer than the budget is cut: finish 'length', not valid."""
    target = "x" + "abcdefghijklmnopqrstuvwxyz"
    for engine in (jf_engine, plain_engine):
        (out,) = engine.generate([[1, 5, 9]], greedy(max_new_tokens=10), regex=target)
        assert out.finish_reason is FinishReason.LENGTH and out.is_valid is False
        assert len(out.token_ids) == 10 and out.error is None
        assert target.startswith(out.text) and len(out.text) >= 10


def test_jump_forward_with_pages_chunks_and_retractions(llama_dir, index_dir, jf_engine):
    """Jumps re-queue requests over their cached prefix: with 4-token pages, 8-token prefill
    chunks and a pool so small that requests are retracted, outputs stay the same."""
    n = 100
    prompts = [[1, 5, 9, 11 + k % 40] + list(range(60, 60 + k % 30)) for k in range(n)]
    params = [SamplingParams(max_new_tokens=256, temperature=1.0, seed=k,
                             json_schema=SCHEMAS[k % 25]) for k in range(n)]
    reference = jf_engine.generate(prompts, params)
    with engine_with_index(llama_dir, index_dir, page_size=4, chunked_prefill_size=8,
                 max_total_tokens=400, new_token_reserve_ratio=0.0) as engine:
        outs = engine.generate(prompts, params)
        stats = engine.stats()
    assert stats["num_retractions"] > 0 and stats["num_forced_tokens"] > 0
    for out in outs:
        assert_valid(out)
    # the same tokens (batch shapes differ, so allow a rare last-bit difference to flip one)
    same = sum(a.token_ids == b.token_ids for a, b in zip(outs, reference, strict=True))
    assert same >= n - 3


def test_n_samples_and_logprobs(jf_engine):
    schema = SCHEMAS[5]
    outs = jf_engine.generate([[1, 5, 9]], SamplingParams(
        n=6, temperature=1.0, seed=3, max_new_tokens=256, logprobs=1), json_schema=schema)
    assert sorted(o.index for o in outs) == list(range(6))
    assert len({o.text for o in outs}) > 1
    for out in outs:
        assert_valid(out)
        jsonschema.validate(json.loads(out.text), schema)
        assert len(out.logprobs) == len(out.token_ids)
        assert [lp.token_id for lp in out.logprobs] == out.token_ids
        # the forced tokens (the keys, at least) have logprob 0
        assert sum(lp.logprob == 0.0 for lp in out.logprobs) >= len('{"inner":{"name":"')


# -- 3. regexes and choices, both tokenizer families -------------------------------------------

@pytest.mark.parametrize("tokenizer", ["bpe", "sp"])
def test_regex_outputs_fullmatch(engines, tokenizer):
    engine = engines(tokenizer)
    seeds = range(8)
    params = [SamplingParams(max_new_tokens=512, temperature=1.0, seed=s, regex=r)
              for r in REGEXES for s in seeds]
    outs = engine.generate([_prompt(k) for k in range(len(params))], params)
    texts: dict[str, set[str]] = {r: set() for r in REGEXES}
    for sp, out in zip(params, outs, strict=True):
        assert_valid(out)
        assert re.fullmatch(sp.regex, out.text), (sp.regex, out.text)
        texts[sp.regex].add(out.text)
    assert texts["a{0}"] == {""}
    assert any("." in t for t in texts[REGEXES[0]])  # went on after "1", a complete match
    assert texts["(yes|yesterday)"] == {"yes", "yesterday"}
    assert all(t.startswith(" ") for t in texts[" [a-z]{1,3}"])


@pytest.mark.parametrize("tokenizer", ["bpe", "sp"])
def test_choices(engines, tokenizer):
    engine = engines(tokenizer)
    params = [SamplingParams(max_new_tokens=32, temperature=1.0, seed=s) for s in range(40)]
    outs = engine.generate([_prompt(k, 3) for k in range(40)], params, choices=CHOICES)
    for out in outs:
        assert_valid(out)
        assert out.text in CHOICES
    assert len({o.text for o in outs}) >= 2
    # the same through SamplingParams, greedy
    (out,) = engine.generate([[1, 5, 9]], {"temperature": 0, "choices": CHOICES})
    assert_valid(out)
    assert out.text in CHOICES


# -- 4. bad constraints ------------------------------------------------------------------------

@pytest.mark.parametrize(("constraint", "message"), BAD_CONSTRAINTS,
                         ids=[m for _, m in BAD_CONSTRAINTS])
def test_bad_constraint_is_an_invalid_request(jf_engine, constraint, message):
    before = _counters(jf_engine)
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        jf_engine.generate([[1, 5, 9], [1, 2, 3]], {"max_new_tokens": 8}, **constraint)
    got = []
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        jf_engine.submit([[1, 5, 9]], SamplingParams(max_new_tokens=8, **constraint),
                         on_output=got.append)
    assert _counters(jf_engine) == before  # nothing was scheduled
    assert got == []


def test_bad_constraint_leaves_requests_in_flight_alone(jf_engine):
    prompt = [1, 9, 8, 7, 6, 5]
    (alone,) = jf_engine.generate([prompt], greedy(max_new_tokens=48))
    done = threading.Event()
    got: list[Output] = []
    jf_engine.submit([prompt], greedy(max_new_tokens=48),
                     on_output=lambda o: (got.append(o), done.set()))
    for constraint, message in BAD_CONSTRAINTS:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            jf_engine.generate([[1, 5, 9]], {"max_new_tokens": 8}, **constraint)
    assert done.wait(WAIT_S)
    assert got[0].token_ids == alone.token_ids and got[0].finish_reason is FinishReason.LENGTH


def test_constraint_longer_than_max_new_tokens_fails_alone(jf_engine):
    free = [1, 9, 8, 7, 6, 5]
    person = [1, 4, 4, 4]
    params = [greedy(max_new_tokens=32), SamplingParams(max_new_tokens=5, regex="[a-z]{30}x"),
              SamplingParams(max_new_tokens=64, temperature=0, json_schema=PERSON)]
    outs = jf_engine.generate([free, [1, 5, 9], person], params)
    failed = outs[1]
    assert failed.error is not None and "max_new_tokens" in failed.error
    assert failed.token_ids == [] and failed.text == "" and failed.is_valid is False
    assert failed.finish_reason is FinishReason.ABORT
    assert outs[0].error is None and outs[0].is_valid is None
    assert outs[0].token_ids == jf_engine.generate([free], params[0])[0].token_ids
    alone = jf_engine.generate([person], params[2])[0]
    assert_valid(outs[2])
    assert (outs[2].text, outs[2].token_ids) == (alone.text, alone.token_ids)


# -- 5. running out of tokens mid-value --------------------------------------------------------

@pytest.mark.parametrize("jump_forward", [True, False], ids=["jump-forward", "no-jump-forward"])
def test_max_new_tokens_mid_value(request, jump_forward):
    engine = request.getfixturevalue("jf_engine" if jump_forward else "plain_engine")
    (out,) = engine.generate([[1, 5, 9]], greedy(max_new_tokens=12), regex="a{30}")
    assert (out.text, out.finish_reason, out.is_valid) == ("a" * 12, FinishReason.LENGTH, False)
    schema = {"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "minLength": 30, "maxLength": 40}}}
    outs = engine.generate([_prompt(k) for k in range(8)],
                           SamplingParams(max_new_tokens=16, temperature=1.0, seed=5),
                           json_schema=schema)
    for out in outs:
        assert out.finish_reason is FinishReason.LENGTH and out.is_valid is False
        assert len(out.token_ids) == 16 and out.error is None
        assert out.text.startswith('{"text":"')
        with pytest.raises(ValueError):
            json.loads(out.text)


# -- 6. constrained and free requests in one batch -----------------------------------------------

@pytest.mark.parametrize("jump_forward", [True, False], ids=["jump-forward", "no-jump-forward"])
def test_mixed_batch_leaves_free_requests_unchanged(request, jump_forward):
    engine = request.getfixturevalue("jf_engine" if jump_forward else "plain_engine")
    free_prompts = [[1, 20 + k, 30 + k, 40 + k] for k in range(4)]
    free_params = [greedy(max_new_tokens=20 + 4 * k) for k in range(4)]
    alone = [engine.generate([p], sp)[0] for p, sp in zip(free_prompts, free_params, strict=True)]
    prompts, params = [], []
    for k in range(4):
        prompts += [free_prompts[k], _prompt(k), _prompt(k, 7)]
        params += [free_params[k],
                   SamplingParams(max_new_tokens=256, temperature=1.0, seed=k,
                                  json_schema=SCHEMAS[k]),
                   SamplingParams(max_new_tokens=512, temperature=1.0, seed=k,
                                  regex=REGEXES[k])]
    outs = engine.generate(prompts, params)
    for k in range(4):
        free, schema_out, regex_out = outs[3 * k: 3 * k + 3]
        assert free.is_valid is None and free.token_ids == alone[k].token_ids
        assert free.text == alone[k].text
        assert_valid(schema_out)
        jsonschema.validate(json.loads(schema_out.text), SCHEMAS[k])
        assert_valid(regex_out)
        assert re.fullmatch(REGEXES[k], regex_out.text)


def test_async_and_streaming_constrained(jf_engine):
    params = SamplingParams(max_new_tokens=256, temperature=1.0, seed=11, json_schema=SCHEMAS[1])

    async def run():
        (whole,) = await jf_engine.generate_async([[1, 5, 9]], params)
        text, final = "", None
        async for delta in jf_engine.generate_stream([1, 5, 9], params):
            text += delta.text
            final = delta.finish_reason or final
        return whole, text, final

    whole, streamed, final = asyncio.run(run())
    assert_valid(whole)
    assert streamed == whole.text and final is FinishReason.STOP


# -- engine bugs found by these tests (fixed; kept as regression tests) -----------------------------------------

def test_stop_string_cut_text_is_not_valid(jf_engine):
    (out,) = jf_engine.generate([[1, 5, 9]], {"temperature": 0, "stop": ["z"]}, regex="xyz")
    assert out.text == "xy"
    assert out.is_valid is False


def test_streamed_token_ids_add_up_after_jump_forward(jf_engine):
    """'8' streams, then '4' makes "84xyz" forced: the tokenizer's canonical tokens are
    ['84','x','y','z'], so the jump drops the streamed '8'."""

    async def stream(k: int) -> tuple[list[int], str]:
        ids, text = [], ""
        params = SamplingParams(max_new_tokens=20, temperature=1.0, seed=k, regex="8[0-9]xyz")
        async for delta in jf_engine.generate_stream([1, 5, 9, k % 50, k], params):
            ids += delta.token_ids
            text += delta.text
        return ids, text

    mismatched = []
    for k in range(60):
        ids, text = asyncio.run(stream(k))
        (out,) = jf_engine.generate([[1, 5, 9, k % 50, k]], SamplingParams(
            max_new_tokens=20, temperature=1.0, seed=k, regex="8[0-9]xyz"))
        assert text == out.text
        if ids != out.token_ids:
            mismatched.append((k, ids, out.token_ids))
    assert mismatched == []


def test_n_samples_come_back_in_index_order(jf_engine):
    outs = jf_engine.generate([[1, 5, 9]], SamplingParams(
        n=6, temperature=1.0, seed=3, max_new_tokens=256), json_schema=SCHEMAS[5])
    assert [o.index for o in outs] == list(range(6))
