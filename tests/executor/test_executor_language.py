"""The runtime side of issue 23 on a tiny random-weight model: gen defaults (call-level,
`with`, inheritance), samples, logprobs and meta, text()/messages(), CallState, select
methods and sampled choices, fork index / texts / join append, schema values, new
constraint forms, failed gens in the trace, argument checks at the call boundary."""

from __future__ import annotations

import json
import math
import re

import jsonschema
import pytest
from model_fixtures import make_model_dir

import sglc.program as api
from sglc.runtime.executor import ArgumentError, GenError, SGLRuntimeError, Trace
from sglc.runtime.executor.choices import greedy_token_pick, option_scores
from sglc.runtime.executor.errors import CallSite, fold_frames
from sglc.source import Span

PREFIX = "Once upon a time there was a quick brown fox. "


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    path = tmp_path_factory.mktemp("language-model")
    make_model_dir(path, "llama")
    with api.Runtime(model_path=path, max_total_tokens=8192) as rt:
        yield rt


def gen_params(trace: Trace) -> list[dict]:
    return [r["params"] for r in trace.records if r["kind"] == "gen"]


DEFAULTS = f'''
fn inner() -> str:
    "{PREFIX}" gen a(max_tokens=3)
    return a

fn pinned() -> str with temperature=0.25, max_tokens=2:
    "{PREFIX}" gen b
    return inner()

fn outer() -> str:
    "{PREFIX}" gen c(max_tokens=2)
    let x = pinned()
    fork 2 as f:
        " more" gen d(max_tokens=1)
    return x
'''


def test_gen_defaults_call_level_with_and_own(runtime) -> None:
    prog = api.compile(DEFAULTS, "defaults.sgl")
    trace = Trace()
    prog.outer(runtime=runtime, trace=trace, temperature=0.5, top_k=7)
    by_name = {r["name"]: r["params"] for r in trace.records if r["kind"] == "gen"}
    # c: the call-level defaults; its own max_tokens wins
    assert (by_name["c"]["temperature"], by_name["c"]["top_k"]) == (0.5, 7)
    assert by_name["c"]["max_new_tokens"] == 2
    # b: pinned's `with` wins over the call-level temperature, top_k still inherited
    assert (by_name["b"]["temperature"], by_name["b"]["max_new_tokens"]) == (0.25, 2)
    assert by_name["b"]["top_k"] == 7
    # a: called from pinned, inherits pinned's with; its own max_tokens wins
    assert (by_name["a"]["temperature"], by_name["a"]["max_new_tokens"]) == (0.25, 3)
    # d: fork branches inherit the frame's defaults
    assert by_name["d"]["temperature"] == 0.5 and by_name["d"]["max_new_tokens"] == 1
    # no defaults at all: greedy with 128 tokens, except what gens say
    trace = Trace()
    prog.outer(runtime=runtime, trace=trace)
    by_name = {r["name"]: r["params"] for r in trace.records if r["kind"] == "gen"}
    assert by_name["d"]["temperature"] == 0.0 and by_name["d"]["top_k"] is None
    assert by_name["b"]["temperature"] == 0.25


def test_batch_defaults_and_bad_defaults(runtime) -> None:
    prog = api.compile(DEFAULTS, "defaults.sgl")
    trace = Trace()
    prog.inner.batch([(), ()], runtime=runtime, trace=trace, temperature=0.9, seed=3)
    assert [p["temperature"] for p in gen_params(trace)] == [0.9, 0.9]
    with pytest.raises(ArgumentError, match=r"inner\(\): temperature must be >= 0, got -1"):
        prog.inner(runtime=runtime, temperature=-1)
    with pytest.raises(ArgumentError, match="n cannot be a default"):
        prog.inner(runtime=runtime, n=2)
    with pytest.raises(ArgumentError, match="stop must be str | list"):
        prog.inner(runtime=runtime, stop=3)


def test_samples_logprobs_and_meta(runtime) -> None:
    prog = api.compile(f'''
fn f() -> json:
    "{PREFIX}" gen xs(n=3, max_tokens=4, temperature=1.0, seed=5, ignore_eos=True)
    let before = text()
    " then" gen y(max_tokens=3, logprobs=2, ignore_eos=True)
    return [xs, before, meta(xs), meta(y)]
''', "samples.sgl")
    xs, before, metas, meta_y = prog.f(runtime=runtime)
    assert isinstance(xs, list) and len(xs) == 3 and all(isinstance(x, str) for x in xs)
    assert before == PREFIX  # samples are alternatives: nothing was appended
    assert [m["completion_tokens"] for m in metas] == [4, 4, 4]
    assert meta_y["finish_reason"] == "length" and meta_y["completion_tokens"] == 3
    assert meta_y["prompt_tokens"] > 0 and meta_y["text"]
    logprobs = meta_y["logprobs"]
    assert len(logprobs) == 3 and all(len(t["top"]) == 2 for t in logprobs)
    assert all(t["logprob"] <= 0 and t["top"][0]["logprob"] >= t["top"][1]["logprob"]
               for t in logprobs)
    assert "".join(t["token"] for t in logprobs) == meta_y["text"]


def test_text_messages_and_call_state(runtime) -> None:
    prog = api.compile('''
fn chat(q: str) -> json:
    system "Be brief."
    user "{q}"
    assistant:
        "Sure: " gen a(max_tokens=3)
        let open = messages()
    return [open, text()]
''', "chat.sgl")
    state = prog.chat.state("Hi?", runtime=runtime)
    open_messages, text = state.value
    assert [m["role"] for m in open_messages] == ["system", "user", "assistant"]
    assert open_messages[-1]["content"].startswith("Sure:")
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?")
    assert [m["role"] for m in state.messages] == ["system", "user", "assistant"]
    assert state.text.endswith("<|im_end|>\n") and set(state.meta) == {"a"}
    assert state.meta["a"]["text"] == state.messages[-1]["content"].removeprefix("Sure: ")


SELECT = f'''
fn pick(method: str, t: float) -> json:
    "{PREFIX}The fox is"
    select w(choices_method="token_length_normalized", temperature=t, seed=11) in [" quick", " brown dog", " lazy"]
    select u(choices_method="unconditional_likelihood_normalized") in [" quick", " brown dog"]
    select g(choices_method="greedy_token_selection") in [" quick", " brown dog", " lazy"]
    return [w, meta(w), meta(u), meta(g)]
'''


def test_select_methods_and_their_scores(runtime) -> None:
    prog = api.compile(SELECT, "select.sgl")
    w, meta_w, meta_u, meta_g = prog.pick("x", 0.0, runtime=runtime)
    assert meta_w["method"] == "token_length_normalized" and meta_w["choice"] == w
    assert meta_w["scores"] == pytest.approx(
        [lp / n for lp, n in zip(meta_w["logprobs"], meta_w["num_tokens"], strict=True)])
    assert meta_w["index"] == max(range(3), key=lambda i: (meta_w["scores"][i], -i))
    assert len(meta_u["scores"]) == 2 and meta_u["method"].startswith("unconditional")
    assert meta_g["choice"] == [" quick", " brown dog", " lazy"][
        greedy_token_pick(meta_g["token_logprobs"])]
    assert all(len(t) == n for t, n in zip(meta_g["token_logprobs"], meta_g["num_tokens"],
                                           strict=True))


def test_a_sampled_select_follows_its_seed(runtime) -> None:
    prog = api.compile(SELECT, "select.sgl")
    picks = [prog.pick("x", 100.0, runtime=runtime)[0] for _ in range(2)]
    assert picks[0] == picks[1]  # the same seed picks the same option
    seen = {api.compile(SELECT.replace("seed=11", f"seed={s}"), "s.sgl").pick(
        "x", 100.0, runtime=runtime)[0] for s in range(12)}
    assert len(seen) > 1  # a high temperature spreads the choice


def test_choice_methods_by_hand() -> None:
    class S:
        def __init__(self, lps):
            self.token_logprobs, self.logprob, self.num_tokens = lps, sum(lps), len(lps)
            self.normalized = self.logprob / self.num_tokens

    scores = [S([-1.0, -1.0]), S([-0.5]), S([-1.0, -0.2])]
    assert option_scores("token_length_normalized", scores) == [-1.0, -0.5, -0.6]
    uncond = [S([-2.0, -2.0]), S([-0.1]), S([-1.0, -0.2])]
    assert option_scores("unconditional_likelihood_normalized", scores, uncond) == \
        pytest.approx([1.0, -0.4, 0.0])
    # greedy: position 0 keeps options 1 (-0.5); the shorter option needs no padding
    assert greedy_token_pick([[-1.0, -1.0], [-0.5], [-1.0, -0.2]]) == 1
    # a tie at position 0, decided at 1 (a short option goes on with its mean)
    assert greedy_token_pick([[-1.0, -3.0], [-1.0], [-1.0, -0.5]]) == 2
    assert greedy_token_pick([[-1.0, -3.0], [-1.0]]) == 1


def test_fork_index_texts_and_join_append(runtime) -> None:
    prog = api.compile(f'''
fn f() -> json:
    "{PREFIX}Ideas:"
    fork 3 as b join append:
        let i = b.index
        " [{{i}}]" gen x(max_tokens=2)
    return [b.i, b.x, b.text, text()]
''', "fork.sgl")
    indexes, xs, texts, after = prog.f(runtime=runtime)
    assert indexes == [0, 1, 2]
    assert [t.removeprefix(PREFIX + "Ideas:") for t in texts] == \
        [f" [{i}]{x}" for i, x in enumerate(xs)]
    assert after == PREFIX + "Ideas:" + "".join(f" [{i}]{x}" for i, x in enumerate(xs))


def test_new_constraint_forms_and_schema_values(runtime, tmp_path) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 5},
                                               "stars": {"type": "integer", "minimum": 1,
                                                         "maximum": 5}},
              "required": ["title", "stars"]}
    (tmp_path / "card.json").write_text(json.dumps(schema))
    source = tmp_path / "forms.sgl"
    source.write_text(f'''import regexes

schema Item:
    name: str[max=4]
    n: int[min=1, max=3]

fn f() -> json:
    "{PREFIX}" gen q: json[str[max=3]](max_tokens=12)
    " " gen s: str[max=5](max_tokens=8)
    " " gen r: str[min=2, max=3](max_tokens=8)
    " " gen k: int[min=1, max=3]
    " " gen card: schema("card.json")(max_tokens=40)
    " " gen d: regexes.DATE(max_tokens=12)
    " " gen item: Item(max_tokens=30)
    let built = Item(name=item.name, n=item.n)
    return [q, s, r, k, card, d, item, built]
''')
    q, s, r, k, card, d, item, built = api.load(source).f(runtime=runtime)
    assert isinstance(q, str) and len(q) <= 3  # decoded from a quoted JSON string
    assert len(s) <= 5 and 2 <= len(r) <= 3 and k in (1, 2, 3)
    jsonschema.validate(card, schema)
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", d)
    assert len(item["name"]) <= 4 and 1 <= item["n"] <= 3 and built == item


def test_a_stop_string_inside_a_constraint_is_named(runtime) -> None:
    prog = api.compile(f'''
fn f() -> str:
    "{PREFIX}Pi: " gen pi: /[0-9]\\.[0-9]+/(stop=".", max_tokens=8)
    return pi
''', "pi.sgl")
    assert any(d.code == "stop-in-constraint" for d in prog.diagnostics)
    trace = Trace()
    with pytest.raises(GenError) as info:
        prog.f(runtime=runtime, trace=trace)
    assert "a stop string ended it before its constraint /[0-9]\\.[0-9]+/ was complete" in \
        str(info.value) and "ran out of tokens" not in str(info.value)
    # the failed gen is in the trace, with its prompt, partial output and error
    (record,) = trace.records
    assert record["name"] == "pi" and record["prompt"].endswith("Pi:")
    assert record["output"] is not None and "stop string" in record["error"]
    assert record["finish_reason"] == "stop"


def test_a_gen_refused_before_running_is_traced_too(runtime) -> None:
    prog = api.compile(f'fn f(t: float) -> str:\n    "{PREFIX}" gen a(temperature=t)\n'
                       '    return a\n', "t.sgl")
    trace = Trace()
    with pytest.raises(GenError, match="temperature must be >= 0"):
        prog.f(-1.0, runtime=runtime, trace=trace)
    (record,) = trace.records
    assert record["error"].startswith("gen 'a': temperature") and record["output"] is None


def test_arguments_are_checked_where_they_enter(runtime) -> None:
    prog = api.compile('''schema P:
    name: str[max=3]

fn f(n: int, p: P, xs: list[int, max=2] = []) -> int:
    return n
''', "args.sgl")
    with pytest.raises(ArgumentError) as info:
        prog.f("3", {"name": "a"}, runtime=runtime)
    assert str(info.value.span) == "args.sgl:4:6"
    assert info.value.render(prog.sources).startswith(
        "args.sgl:4:6: argument error: argument 'n' of f() must be an int, got str \"3\"\n"
        "fn f(n: int, p: P, xs: list[int, max=2] = []) -> int:\n     ^~~~~~")
    with pytest.raises(ArgumentError, match="argument 'p' of f\\(\\) P.name must have at "
                                            "most 3 characters, got 4"):
        prog.f(1, {"name": "abcd"}, runtime=runtime)
    with pytest.raises(ArgumentError, match="argument 'xs' of f\\(\\) must have at most 2"):
        prog.f(1, {"name": "a"}, [1, 2, 3], runtime=runtime)
    assert prog.f(2, {"name": "a"}, runtime=runtime) == 2


def test_repeated_frames_are_folded() -> None:
    span = Span("r.sgl", 2, 12, 2, 20)
    a, b = CallSite("g", span), CallSite("h", Span("r.sgl", 4, 12, 4, 16))
    main = CallSite("main", Span("r.sgl", 9, 5, 9, 9))
    assert fold_frames((main, *([a, b] * 50))) == [
        "    r.sgl:9:5 in main", "    r.sgl:2:12 in g", "    r.sgl:4:12 in h",
        "    ... the 2 frames above repeat 49 more times"]
    assert fold_frames((a, a)) == ["    r.sgl:2:12 in g", "    r.sgl:2:12 in g"]
    prog = api.compile("fn f(n: int) -> int:\n    return f(n + 1)\n", "rec.sgl")
    with pytest.raises(SGLRuntimeError) as info:
        _run_without_model(prog)
    rendered = info.value.render(prog.sources)
    assert rendered.count("in f") == 1 and "the frame above repeats 199 more times" in rendered


def _run_without_model(prog: api.Program) -> None:
    import asyncio

    from sglc.runtime.executor import Interpreter

    class NoModel:
        tokenizer = None

    asyncio.run(Interpreter(prog.ir, NoModel()).call("f", [0]))


def test_json_builtins_errors(runtime) -> None:
    prog = api.compile('fn f(s: str) -> json:\n    return json.loads(s)\n'
                       'fn g(x: float) -> str:\n    return json.dumps(x)\n', "j.sgl")
    assert prog.f('{"a": [1, 2]}', runtime=runtime) == {"a": [1, 2]}
    with pytest.raises(SGLRuntimeError, match="json.loads\\(\\) cannot read 'oops'"):
        prog.f("oops", runtime=runtime)
    with pytest.raises(SGLRuntimeError, match="JSON has no such number"):
        prog.g(math.inf, runtime=runtime)
