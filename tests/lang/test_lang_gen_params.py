"""The gen parameter table: `sglc check`, the executor and SamplingParams enforce every
parameter's allowed values with the same rule objects, in the same words."""

from __future__ import annotations

import json

import pytest

from sglc.frontend import check_program
from sglc.lang import GEN_PARAMS
from sglc.runtime.core import InvalidRequest, Range, SamplingParams
from sglc.runtime.executor.generation import GenParamError, sampling_params

SERVED = [p for p in GEN_PARAMS.values() if p.sampling_field is not None]
VALUES = [None, True, False, -3, -2.5, -2, -1, 0, 0.0, 0.5, 1, 1.0, 2, 2.5, 3, 128, "x", "",
          ["a"], ["a", ""], []]


def sgl_literal(value: object) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(sgl_literal(v) for v in value) + "]"
    return repr(value)


def check_diagnostics(name: str, value: object) -> list[tuple[str, str]]:
    source = f"fn main():\n    assistant:\n        gen a({name}={sgl_literal(value)})\n"
    _, diags = check_program(source, "t.sgl")
    return [(d.code, d.message) for d in diags if d.is_error]


def executor_error(name: str, value: object) -> str | None:
    try:
        sampling_params({name: value})
    except GenParamError as exc:
        return str(exc)
    return None


def engine_error(field: str, value: object) -> str | None:
    try:
        SamplingParams(**{field: value})
    except InvalidRequest as exc:
        return str(exc).removeprefix("invalid sampling params: ")
    except TypeError:  # SamplingParams(stop=3): not a sequence at all
        return "TypeError"
    return None


def test_every_served_param_names_a_sampling_params_field() -> None:
    fields = set(SamplingParams.__dataclass_fields__)
    for p in SERVED:
        assert p.sampling_field in fields, p.name
    # the executor reads the others itself: `model` picks the model a gen runs on
    assert {p.name for p in GEN_PARAMS.values() if p.sampling_field is None} == {"model"}


@pytest.mark.parametrize("param", SERVED, ids=lambda p: p.name)
def test_one_rule_for_checker_executor_and_engine(param) -> None:
    for value in VALUES:
        want = param.error(value)
        # the executor refuses exactly what the table refuses, in the table's words
        assert executor_error(param.name, value) == want, value
        # the engine's own field rule: the same object and words, unless the table narrows it
        engine = engine_error(param.sampling_field, value)
        if param.rule is None:
            assert param.value_rule is SamplingParams.rules().get(param.sampling_field)
            if engine != "TypeError":
                same = None if want is None else want.replace(param.name, param.sampling_field)
                assert engine == same, value
        elif want is None:
            assert engine is None, value  # narrowing only: SGL never allows more
        # `sglc check` of a constant: a type error, or exactly the table's verdict
        diags = check_diagnostics(param.name, value)
        if not any(code == "type-mismatch" for code, _ in diags):
            assert diags == ([] if want is None else [("param-range", want)]), value


def test_the_example_of_the_issue_fails_at_check_time_in_run_time_words() -> None:
    assert check_diagnostics("top_p", 0) == [("param-range", "top_p must be in (0, 1], got 0")]
    with pytest.raises(InvalidRequest, match=r"top_p must be in \(0, 1\], got 0"):
        SamplingParams(top_p=0)


def test_no_top_k_is_none_everywhere() -> None:
    assert sampling_params({"top_k": None}).top_k is None
    assert sampling_params({}).top_k is None
    for bad in (0, -1):
        assert executor_error("top_k", bad) == f"top_k must be None or an integer >= 1, got {bad}"
    assert check_diagnostics("top_k", None) == []


def test_sgl_defaults_are_greedy_with_128_tokens() -> None:
    params = sampling_params({})
    assert (params.max_new_tokens, params.temperature, params.is_greedy) == (128, 0.0, True)
    assert sampling_params({"temperature": 0.7, "max_tokens": 5}).max_new_tokens == 5


def test_stop_accepts_a_string_or_a_list() -> None:
    assert sampling_params({"stop": "\n"}).stop == ("\n",)
    assert sampling_params({"stop": ["a", "b"]}).stop == ("a", "b")


def test_unserved_and_unknown_params_are_refused_by_the_executor(monkeypatch) -> None:
    import sglc.runtime.executor.generation as generation
    from sglc.lang.gen_params import GenParam
    from sglc.lang.types import STR

    unserved = GenParam("voice", (STR,), None, "a parameter no engine serves yet",
                        unserved="this engine serves no voices yet")
    monkeypatch.setattr(generation, "GEN_PARAMS", {**GEN_PARAMS, "voice": unserved})
    assert executor_error("voice", "fr") == "voice 'fr': this engine serves no voices yet"
    assert executor_error("voice", None) is None
    assert executor_error("max_tokns", 3) == "unknown gen parameter 'max_tokns'"


def test_the_adapter_param_sets_the_lora_field() -> None:
    # served since multi-LoRA (issue 19); the engine refuses a name it does not serve
    assert sampling_params({"adapter": "fr"}).lora == "fr"
    assert sampling_params({"adapter": None}).lora is None
    assert check_diagnostics("adapter", "fr") == []


@pytest.mark.parametrize(("rule", "text"), [
    (Range(low=0), ">= 0"),
    (Range(low=0, low_open=True), "> 0"),
    (Range(high=1, high_open=True), "< 1"),
    (Range(low=0, high=1, low_open=True), "in (0, 1]"),
    (Range(low=-2, high=2), "in [-2, 2]"),
    (Range(low=1, integer=True, optional=True), "None or an integer >= 1"),
    (Range(integer=True), "an integer"),
    (Range(), "a number"),
])
def test_range_words(rule: Range, text: str) -> None:
    assert rule.describe() == text


def test_range_admits() -> None:
    unit = Range(low=0, high=1, low_open=True)
    assert [unit.admits(v) for v in (0, 1e-9, 1, 1.5, None, True, float("nan"), "1")] == [
        False, True, True, False, False, False, False, False]
    count = Range(low=1, integer=True, optional=True)
    assert [count.admits(v) for v in (None, 1, 0, 2.0, True)] == [True, True, False, False, False]
    assert count.error("top_k", 0) == "top_k must be None or an integer >= 1, got 0"
