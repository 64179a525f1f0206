"""The interpreter on a tiny random-weight model: batching, order, select, hosts, specs,
errors, traces, the Python API."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from model_fixtures import make_model_dir  # noqa: E402

import sglc.program as api  # noqa: E402
from sglc.runtime.executor import (  # noqa: E402
    GenError,
    HostError,
    ProgramEvents,
    SGLRuntimeError,
    SpecViolation,
    Trace,
)
from sglc.runtime.executor.generation import heal_options  # noqa: E402
from sglc.runtime.executor.prompt_stream import PromptStream  # noqa: E402

PREFIX = "Once upon a time there was a quick brown fox who jumped over the lazy dog. " * 2


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    path = tmp_path_factory.mktemp("executor-model")
    make_model_dir(path, "llama")
    with api.Runtime(model_path=path, max_total_tokens=16384) as rt:
        yield rt


def stats_delta(engine, before):
    after = engine.stats()
    return {k: after[k] - before[k] for k in ("num_extend_batches", "num_decode_batches")}


def test_fork_branches_reach_the_engine_as_one_batch(runtime):
    prog = api.compile(
        f'''
fn f() -> list[str]:
    "{PREFIX}"
    fork 4 as b:
        "Branch: " gen x(max_tokens=3)
    return b.x
''',
        "fork.sgl",
    )
    trace = Trace()
    before = runtime.engine.stats()
    xs = prog.f(runtime=runtime, trace=trace)
    delta = stats_delta(runtime.engine, before)
    gens = [c for c in trace.records if c["kind"] == "gen"]
    assert len(xs) == 4 and all(isinstance(x, str) for x in xs)
    assert [c["batch_size"] for c in gens] == [4, 4, 4, 4]
    # one extend for the prefetched prefix, ONE for the four branches together
    assert delta["num_extend_batches"] == 2
    assert delta["num_decode_batches"] <= 2  # 3 tokens: 1 sampled at extend + 2 decodes
    assert all(c["cached_tokens"] > 0 for c in gens)  # the shared prefix was computed once


def test_a_stream_extends_its_cached_prompt_token_for_token(runtime):
    prog = api.compile(
        f'''
fn f() -> str:
    "{PREFIX}Story:"
    gen a(max_tokens=6)
    " and then" gen b(max_tokens=4)
    return a + b
''',
        "seq.sgl",
    )
    trace = Trace()
    prog.f(runtime=runtime, trace=trace)
    first, second = trace.records
    # the second prompt starts with the first prompt + its generated tokens, all cached
    # (the radix cache holds a finished request's tokens but the last one's KV)
    assert second["prompt"].startswith(first["prompt"] + first["output"])
    assert second["cached_tokens"] >= first["prompt_tokens"] + first["completion_tokens"] - 1


def test_parallel_for_of_16_items_batches_and_keeps_order(runtime):
    prog = api.compile(
        f'''
fn f(items: list[str]) -> list[str]:
    "{PREFIX}"
    let out = parallel for item in items:
        "Item {{item}}: " gen x(max_tokens=2)
        item + "=" + x
    return out
''',
        "pmap.sgl",
    )
    items = [f"n{i}" for i in range(16)]
    trace = Trace()
    before = runtime.engine.stats()
    out = prog.f(items, runtime=runtime, trace=trace)
    delta = stats_delta(runtime.engine, before)
    assert [o.split("=", 1)[0] for o in out] == items  # results in item order
    assert {c["batch_size"] for c in trace.records if c["kind"] == "gen"} == {16}
    assert delta["num_extend_batches"] <= 3  # prefetch + the 16 items (>= 8 per batch)


def test_select_picks_the_max_likelihood_option(runtime):
    prog = api.compile(
        """
fn f() -> str:
    "The quick brown fox jumps over the"
    select w in [" lazy dog", " moon", " quick brown fox", "!"]
    return w
""",
        "select.sgl",
    )
    trace = Trace()
    picked = prog.f(runtime=runtime, trace=trace)
    options = [" lazy dog", " moon", " quick brown fox", "!"]
    stream = PromptStream(runtime.engine.tokenizer)
    stream.append("The quick brown fox jumps over the")
    healed = heal_options(stream, options)
    scores = runtime.engine.score(healed.prompt_ids, healed.continuations)
    best = max(range(4), key=lambda i: (scores[i].normalized, -i))
    assert picked == options[best]
    record = trace.records[-1]
    assert record["kind"] == "select" and record["chosen"] == picked
    assert [s["normalized"] for s in record["scores"]] == pytest.approx(
        [s.normalized for s in scores], abs=1e-4
    )


def test_choice_gen_always_gives_a_valid_choice(runtime):
    prog = api.compile(
        """
fn f() -> str:
    user "Pick a mood."
    assistant: "Mood: " gen mood: "happy" | "neutral" | "sad"
    return mood
""",
        "choice.sgl",
    )
    assert prog.f(runtime=runtime) in ("happy", "neutral", "sad")


def test_schema_gen_gives_a_dict_of_typed_fields(runtime):
    prog = api.compile(
        """
schema P:
    name: "Ann" | "Bob" | "Cy"
    city: "Paris" | "Rome"
    ok: bool

fn f() -> P:
    "Person: " gen p: P(max_tokens=40)
    return p
""",
        "schema.sgl",
    )
    trace = Trace()
    p = prog.f(runtime=runtime, trace=trace)
    assert set(p) == {"name", "city", "ok"}
    assert p["name"] in ("Ann", "Bob", "Cy") and p["city"] in ("Paris", "Rome")
    assert isinstance(p["ok"], bool)
    (record,) = trace.records
    assert json.loads(record["output"]) == p  # one constrained gen, decoded by the engine


def test_constrained_gen_values_always_match(runtime):
    prog = api.compile(
        """
fn f() -> list[str]:
    "Code: " gen code: /[A-Z]{2}-[0-9]{3}/(max_tokens=12)
    " Flag: " gen flag: bool(max_tokens=8)
    return [code, str(flag)]
""",
        "codes.sgl",
    )
    code, flag = prog.f(runtime=runtime)
    assert re.fullmatch(r"[A-Z]{2}-[0-9]{3}", code) and flag in ("True", "False")


def test_gen_out_of_tokens_names_gen_and_constraint(runtime):
    prog = api.compile(
        """
fn f() -> int:
    "héllo wörld 世界 🙂" gen n: /[0-9]{40}/(max_tokens=3)
    return 1
""",
        "regex.sgl",
    )
    with pytest.raises(GenError) as info:
        prog.f(runtime=runtime)
    text = str(info.value)
    assert "gen 'n'" in text and "max_new_tokens is 3" in text and "regex.sgl:3:24" in text


def test_host_functions_bound_missing_and_raising(runtime):
    source = """
extern fn lookup(key: str) -> str

fn f(k: str) -> str:
    return "got " + lookup(k)
"""
    prog = api.compile(source, "host.sgl")
    with pytest.raises(HostError, match="no host function is bound for extern fn 'lookup'"):
        prog.f("a", runtime=runtime)
    assert prog.bind(lookup=lambda k: k.upper()).f("abc", runtime=runtime) == "got ABC"

    async def slow(k):
        await asyncio.sleep(0)
        return k * 2

    assert api.compile(source, "host.sgl").bind(lookup=slow).f("x", runtime=runtime) == "got xx"

    def broken(k):
        raise KeyError(k)

    with pytest.raises(HostError) as info:
        api.compile(source, "host.sgl").bind(lookup=broken).f("zz", runtime=runtime)
    assert "host function error: 'lookup' raised KeyError: 'zz'" in str(info.value)
    assert "host.sgl:5:21" in str(info.value)


def test_builtin_calculator_backs_stdlib_tools(runtime):
    prog = api.compile(
        """
import tools

fn f(e: str) -> str:
    return tools.calculator(e)
""",
        "calc.sgl",
    )
    assert prog.f("12*7", runtime=runtime) == "84"
    assert prog.f("2**0.5 * 2**0.5", runtime=runtime) == "2"
    assert prog.f("__import__('os')", runtime=runtime).startswith("error:")


SPEC = """
fn inner(x: int) -> int:
    requires x > 0
    ensures result < 10
    return x * 3

fn outer(x: int) -> int:
    let y = inner(x)
    assert y != 6, "six is not allowed"
    return y
"""


@pytest.mark.parametrize(
    "arg, kind, where, message",
    [
        (0, "requires", "spec.sgl:3:5", "requires failed"),
        (5, "ensures", "spec.sgl:4:5", "ensures failed"),
        (2, "assert", "spec.sgl:9:5", "assert failed: six is not allowed"),
    ],
)
def test_spec_violations_are_located(runtime, arg, kind, where, message):
    prog = api.compile(SPEC, "spec.sgl")
    with pytest.raises(SpecViolation) as info:
        prog.outer(arg, runtime=runtime)
    err = info.value
    assert message in err.message and str(err.span) == where
    rendered = err.render(prog.sources)
    assert rendered.startswith(f"{where}: spec violation: {message}")
    assert "call stack (most recent call last):" in rendered
    assert f"{where} in {'outer' if kind == 'assert' else 'inner'}" in rendered
    if kind != "assert":
        assert "spec.sgl:8:13 in outer" in rendered  # the call site


def test_runtime_error_renders_like_a_diagnostic(runtime):
    prog = api.compile(
        """
fn pick(xs: list[str], i: int) -> str:
    return xs[i]

fn main():
    let xs = ["a", "b"]
    print(pick(xs, 5))
""",
        "idx.sgl",
    )
    with pytest.raises(SGLRuntimeError) as info:
        prog.main(runtime=runtime)
    assert str(info.value) == (
        "idx.sgl:3:12: runtime error: index 5 is out of range for a list of 2 items\n"
        "    return xs[i]\n"
        "           ^~~~~\n"
        "  call stack (most recent call last):\n"
        "    idx.sgl:7:11 in main\n"
        "    idx.sgl:3:12 in pick"
    )


def test_unbounded_recursion_is_a_runtime_error(runtime):
    prog = api.compile("fn f(n: int) -> int:\n    return f(n + 1)\n", "rec.sgl")
    with pytest.raises(SGLRuntimeError, match="nested more than 200 deep") as info:
        prog.f(0, runtime=runtime)
    assert str(info.value.span) == "rec.sgl:2:12"


def test_trace_records_every_model_call(runtime, tmp_path):
    prog = api.compile(
        """
fn f() -> str:
    user "Say something."
    assistant: gen a(max_tokens=4, temperature=0.5, seed=3)
    assistant: select b in ["yes", "no"]
    return a
""",
        "trace.sgl",
    )
    trace = Trace()
    prog.f(runtime=runtime, trace=trace)
    path = tmp_path / "trace.json"
    trace.save(path)
    data = json.loads(path.read_text())
    kinds = [c["kind"] for c in data["calls"]]
    assert kinds == ["gen", "select"] and data["num_calls"] == 2
    gen = data["calls"][0]
    assert gen["location"] == "trace.sgl:4:16" and gen["name"] == "a"
    assert gen["prompt"].endswith("<|im_start|>assistant\n")
    assert gen["params"]["temperature"] == 0.5 and gen["params"]["seed"] == 3
    assert gen["params"]["max_new_tokens"] == 4 and gen["completion_tokens"] <= 4
    assert {"output", "finish_reason", "cached_tokens", "latency_s"} <= set(gen)
    assert data["calls"][1]["options"] == ["yes", "no"]


def test_batch_async_save_load_and_arguments(runtime, tmp_path):
    prog = api.compile(
        """
fn greet(name: str, punct: str = "!") -> str:
    return "hi " + name + punct
""",
        "greet.sgl",
    )
    assert prog.greet.batch([("a",), {"name": "b", "punct": "?"}, "c"], runtime=runtime) == [
        "hi a!",
        "hi b?",
        "hi c!",
    ]
    assert asyncio.run(prog.greet.async_("d", runtime=runtime)) == "hi d!"
    assert prog.run("greet", name="e", runtime=runtime) == "hi e!"
    prog.save(tmp_path / "greet.json")
    loaded = api.load(tmp_path / "greet.json")
    assert loaded.greet("f", runtime=runtime) == "hi f!"
    assert loaded.ir == prog.ir
    with pytest.raises(SGLRuntimeError, match="missing the argument 'name'"):
        prog.greet(runtime=runtime)
    with pytest.raises(SGLRuntimeError, match="has no parameter 'nme'"):
        prog.greet(nme="x", runtime=runtime)
    with pytest.raises(AttributeError, match="no fn 'gret'"):
        _ = prog.gret


def test_compile_error_carries_rendered_diagnostics():
    with pytest.raises(api.CompileError) as info:
        api.compile("fn f() -> str:\n    return questoin\n", "bad.sgl")
    err = info.value
    assert err.diagnostics and err.diagnostics[0].code
    assert str(err).startswith("bad.sgl:2:12: error:")


def test_events_stream_each_gen_piece_by_piece(runtime):
    prog = api.compile(
        """
fn f() -> str:
    user "Say something."
    assistant: gen words(max_tokens=12, ignore_eos=True)
    return words
""",
        "stream.sgl",
    )
    pieces: list[tuple[str, str, str]] = []

    class Pieces(ProgramEvents):
        def on_delta(self, fn: str, name: str, text: str) -> None:
            pieces.append((fn, name, text))

    words = prog.run("f", runtime=runtime, events=Pieces())
    assert len(pieces) > 1 and {(label, name) for label, name, _ in pieces} == {("f", "words")}
    assert "".join(text for _, _, text in pieces).strip() == words.strip()


def test_program_prebuilds_its_constraint_automata(runtime):
    prog = api.compile(
        """
fn f() -> int:
    "Count: " gen n: /[0-9]{2}x[0-9]{3}/(max_tokens=8)
    return 1
""",
        "prebuild.sgl",
    )
    engine = runtime.engine
    prog.interpreter(runtime)  # no gen has run yet
    engine.stats()  # a round trip through the loop: the prebuild call has run before it
    cache = engine.core.constraints.cache
    keys = [(r, cache.vocabulary) for r in ("[0-9]{2}x[0-9]{3}", " (?:[0-9]{2}x[0-9]{3})")]
    deadline = time.monotonic() + 30
    while not all(k in cache for k in keys) and time.monotonic() < deadline:
        time.sleep(0.01)  # built in the background
    assert all(k in cache for k in keys)


RETRY = """
fn word() -> str with temperature=1.0, max_tokens=4:
    ensures len(result) <= {n} retry 2
    assistant: gen w
    return w
"""


def test_ensures_retry_reruns_the_call_then_raises(runtime):
    # without pushdown the spec is checked at run time: a 4-token sample is never empty
    prog = api.compile(RETRY.format(n=0), "retry.sgl", skip_passes=("spec_pushdown",))
    trace = Trace()
    with pytest.raises(SpecViolation) as info:
        prog.word(runtime=runtime, trace=trace)
    err = info.value
    assert str(err.span) == "retry.sgl:3:5" and "(after 2 retries)" in err.message
    assert err.hint.startswith("result = ")
    records = trace.to_json()
    assert records["num_calls"] == 3 and records["num_spec_checks"] == 3
    assert [r["holds"] for r in records["specs"]] == [False] * 3
    assert [r["attempt"] for r in records["specs"]] == [0, 1, 2]
    assert {r["spec"] for r in records["specs"]} == {"ensures len(result) <= 0"}


def test_pushdown_makes_the_same_spec_hold_by_construction(runtime):
    prog = api.compile(RETRY.format(n=1), "retry.sgl")
    assert not [d for d in prog.diagnostics if d.severity == "warning"]
    trace = Trace()
    for _ in range(3):
        assert len(prog.word(runtime=runtime, trace=trace)) <= 1
    assert trace.to_json()["num_spec_checks"] == 0  # proven: no run-time check left


def test_a_failed_assert_names_the_values_it_read(runtime):
    prog = api.compile(SPEC, "spec.sgl")
    with pytest.raises(SpecViolation) as info:
        prog.outer(2, runtime=runtime)
    assert info.value.hint == "y = 6"
