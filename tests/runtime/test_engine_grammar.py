"""Grammar constraints end to end through sglc.Engine on a tiny random-weight Llama.

Ground truth is Lark's own parser on the same grammar text (tests/runtime/grammars.py):
every sample that finishes parses. The test draws 24 samples per grammar (the 2-core CI box);
benchmarks/grammar_decode.py --samples 200 runs the issue's 200 per grammar and reports how
many hit max_new_tokens. Mixed batches (grammar, regex, JSON schema, recursive schema, free)
give each request what it gets alone, and JSON schemas the regex path refuses decode through
the grammar path (jsonschema validates them).
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from constrained_support import engine_with_index
from grammars import GRAMMARS, JSON, REGULAR, SQL, TOY_LANGUAGE, parses

from sglc.constraints.grammar import route_grammar
from sglc.runtime.core import FinishReason, InvalidRequest, SamplingParams

NUM_SAMPLES = 24
TREE = {"$defs": {"node": {
    "type": "object",
    "properties": {"v": {"type": "integer", "minimum": 0, "maximum": 9},
                   "kids": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/node"}}},
    "required": ["v", "kids"], "additionalProperties": False}},
    "$ref": "#/$defs/node"}


@pytest.fixture(scope="module")
def engine(llama_dir, tmp_path_factory):
    with engine_with_index(llama_dir, tmp_path_factory.mktemp("index")) as engine:
        yield engine


@pytest.fixture(scope="module")
def engine_no_jump(llama_dir, tmp_path_factory):
    with engine_with_index(llama_dir, tmp_path_factory.mktemp("index"),
                           enable_jump_forward=False) as engine:
        yield engine


@pytest.mark.parametrize("name", list(GRAMMARS))
def test_finished_samples_parse_with_lark(engine, name):
    grammar = GRAMMARS[name]
    params = SamplingParams(temperature=1.0, seed=7, n=NUM_SAMPLES, max_new_tokens=48)
    outs = engine.generate([[1, 40, 41]], params, grammar=grammar)
    assert len(outs) == NUM_SAMPLES
    finished = [o for o in outs if o.finish_reason is FinishReason.STOP]
    assert finished, f"no {name} sample finished in 48 tokens"
    for out in outs:
        assert out.error is None, out.error
        if out.finish_reason is FinishReason.STOP:
            assert out.is_valid and parses(grammar, out.text), (name, out.text)
        else:  # cut short: a prefix of a sentence, which Lark does not accept as one
            assert out.finish_reason is FinishReason.LENGTH
            assert out.is_valid == parses(grammar, out.text), (name, out.text)


def test_grammar_and_lark_agree_on_a_sentence_the_model_is_forced_to_write(engine):
    grammar = 'start: "SELECT " NAME " FROM t;"\nNAME: /[a-z]{3}/\n'
    out = engine.generate([[1, 40, 41]], {"temperature": 0, "max_new_tokens": 16},
                          grammar=grammar)[0]
    assert out.finish_reason is FinishReason.STOP and parses(grammar, out.text)
    assert re.fullmatch(r"SELECT [a-z]{3} FROM t;", out.text)
    assert out.usage.forced_tokens > 0  # "SELECT " and " FROM t;" were jumped over


def test_a_regular_grammar_decodes_like_its_regex(engine):
    grammar, regex = REGULAR["sql_select"]
    assert route_grammar(grammar).path == "regex"
    params = SamplingParams(temperature=1.0, seed=3, n=4, max_new_tokens=24)
    by_grammar = engine.generate([[1, 40, 41]], params, grammar=grammar)
    by_regex = engine.generate([[1, 40, 41]], params, regex=regex)
    assert [o.token_ids for o in by_grammar] == [o.token_ids for o in by_regex]
    for out in by_grammar:
        if out.finish_reason is FinishReason.STOP:
            assert parses(grammar, out.text), out.text


def test_jump_forward_does_not_change_greedy_grammar_outputs(engine, engine_no_jump):
    prompts = [[1, 7, 8], [1, 30, 31, 32], [1, 99]]
    for grammar in (SQL, TOY_LANGUAGE, JSON):
        params = SamplingParams(temperature=0, max_new_tokens=40)
        on = engine.generate(prompts, params, grammar=grammar)
        off = engine_no_jump.generate(prompts, params, grammar=grammar)
        assert [o.text for o in on] == [o.text for o in off]


def _mixed_requests() -> list[tuple[list[int], SamplingParams]]:
    greedy = {"temperature": 0, "max_new_tokens": 32}
    return [
        ([1, 5, 6], SamplingParams(**greedy, grammar=SQL)),
        ([1, 7, 8, 9], SamplingParams(**greedy, regex=r"[a-z]{2,5}( [0-9]{1,3})?")),
        ([1, 10], SamplingParams(**greedy, json_schema={
            "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})),
        ([1, 11, 12], SamplingParams(**greedy)),
        ([1, 13, 14], SamplingParams(**greedy, json_schema=TREE)),
        ([1, 15], SamplingParams(**greedy, grammar=TOY_LANGUAGE)),
    ]


def test_a_mixed_batch_gives_each_request_what_it_gets_alone(engine):
    requests = _mixed_requests()
    alone = [engine.generate([p], sp)[0] for p, sp in requests]
    together = engine.generate([p for p, _ in requests], [sp for _, sp in requests])
    assert [o.token_ids for o in together] == [o.token_ids for o in alone]
    assert [o.finish_reason for o in together] == [o.finish_reason for o in alone]
    assert together[3].is_valid is None  # the free request is unconstrained


def test_a_recursive_schema_decodes_through_the_grammar_path(engine):
    params = SamplingParams(temperature=1.0, seed=3, n=12, max_new_tokens=64)
    outs = engine.generate([[1, 50, 51]], params, json_schema=TREE)
    finished = [o for o in outs if o.finish_reason is FinishReason.STOP]
    assert finished
    for out in finished:
        assert out.is_valid
        jsonschema.validate(json.loads(out.text), TREE)
        assert " " not in out.text  # the regex path's compact layout


@pytest.mark.parametrize(("grammar", "message"), [
    ('start: expr\nexpr: NUM | expr "+"\nNUM: /[0-9+/', "grammar line 3, column 6"),
    ("start: foo", 'unknown name: "foo" (grammar line 1, column 8)'),
    ("   ", "the grammar is empty"),
])
def test_a_bad_grammar_is_an_invalid_request_naming_its_line_and_column(engine, grammar,
                                                                        message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        engine.generate([[1, 5]], {"max_new_tokens": 4}, grammar=grammar)


def test_grammar_is_one_constraint_among_the_others(engine):
    with pytest.raises(InvalidRequest, match="at most one of regex, json_schema, choices, "
                                             "grammar"):
        SamplingParams(regex="a", grammar="start: /a/")
    with pytest.raises(InvalidRequest, match="grammar must be None or a grammar"):
        SamplingParams(grammar=3)
    with pytest.raises(InvalidRequest, match="min_tokens cannot be combined with grammar"):
        SamplingParams(grammar="start: /a/", min_tokens=2)
