"""Programs on several models: `gen x(model=...)`, `select y(model=...)`, a fn's `with
model=...`, call-level `model=`; each call reaches the model it names (greedy outputs equal
that model's alone), unknown names are diagnosed where they are written, and a prompt never
goes to a model of another tokenizer."""

from __future__ import annotations

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.cli import main
from sglc.program import CompileError
from sglc.runtime.executor.errors import GenError
from sglc.runtime.executor.trace import Trace

SOURCE = '''
fn draft(q: str) -> str:
    "Q: {q}\\nA:" gen a(max_tokens=6)
    return a

fn review(q: str) -> str with model="judge":
    "Q: {q}\\nA:" gen a(max_tokens=6)
    return a

fn both(q: str) -> list[str]:
    "Q: {q}\\nA:" gen a(max_tokens=5)
    " Verdict:" gen v(model="judge", max_tokens=5)
    select s(model="judge") in [" yes", " no"]
    return [a, v, s]

fn main() -> list[str]:
    return [draft("hi"), review("hi"), draft("ok")]
'''


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Two random-weight Llamas of the same shape and tokenizer, different weights."""
    dirs = []
    for seed in (0, 1):
        path = tmp_path_factory.mktemp(f"model{seed}")
        make_model_dir(path, "llama", seed=seed)
        dirs.append(path)
    return dirs


@pytest.fixture(scope="module")
def engines(model_dirs):
    made = [sglc.Engine(p, max_total_tokens=1024) for p in model_dirs]
    yield made
    for e in made:
        e.shutdown()


def alone(engine: sglc.Engine, fn: str, *args: str) -> object:
    """The fn on one model only, every call on it."""
    prog = sglc.compile(SOURCE.replace('model="judge"', 'model="default"'))
    return getattr(prog, fn)(*args, runtime=sglc.Runtime(engine=engine))


def _recording(engine: sglc.Engine, into: list):
    submit = engine.submit

    def recorded(prompts, params, **kwargs):
        into.extend(p for p, sp in zip(prompts, params, strict=True) if sp.max_new_tokens)
        return submit(prompts, params, **kwargs)

    return recorded


def _recording_scores(engine: sglc.Engine, into: list):
    score = engine.score

    def recorded(prompt, continuations):
        into.append(prompt)
        return score(prompt, continuations)

    return recorded


def test_each_call_runs_on_the_model_it_names(engines, monkeypatch) -> None:
    small, judge = engines
    prog = sglc.compile(SOURCE, models=["default", "judge"])
    trace = Trace()
    with sglc.Runtime(models={"default": small, "judge": judge}) as rt:
        got = prog.main(runtime=rt, trace=trace)
        sent, scored = {small: [], judge: []}, {small: [], judge: []}
        for engine in engines:  # spies: each engine's prompts, passed on unchanged
            monkeypatch.setattr(engine, "submit", _recording(engine, sent[engine]))
            monkeypatch.setattr(engine, "score", _recording_scores(engine, scored[engine]))
        mixed = prog.both("hi", runtime=rt)
        monkeypatch.undo()
        by_call = prog.draft("hi", runtime=rt, model="judge")  # a call-level default
    assert got == [alone(small, "draft", "hi"), alone(judge, "review", "hi"),
                   alone(small, "draft", "ok")]
    assert got[0] != got[1]  # the two models differ on this prompt
    assert by_call == alone(judge, "draft", "hi")
    # both(): the first gen on the default model, then the judge's gen on the same prompt
    # (extended by the first gen's tokens), its output the judge's alone on those tokens
    greedy5 = {"max_new_tokens": 5, "temperature": 0}
    assert len(sent[small]) == len(sent[judge]) == 1
    assert mixed[0] == small.generate(sent[small], greedy5)[0].text
    assert mixed[1] == judge.generate(sent[judge], greedy5)[0].text
    assert sent[judge][0][:len(sent[small][0])] == sent[small][0]
    assert len(scored[judge]) == 1 and not scored[small]  # the select, on the judge
    assert [r.get("model") for r in trace.records if r["kind"] == "gen"] == \
        [None, "judge", None]


def test_runtime_models_by_path_default_to_the_first(model_dirs, engines) -> None:
    prog = sglc.compile(SOURCE)
    with sglc.Runtime(models={"small": model_dirs[0], "judge": model_dirs[1]},
                      max_total_tokens=1024) as rt:
        assert rt.model_names == ["small", "judge"] and rt.default_model == "small"
        assert prog.review("hi", runtime=rt) == alone(engines[1], "review", "hi")
        assert prog.draft("hi", runtime=rt) == alone(engines[0], "draft", "hi")


def test_unknown_model_names_are_located_errors() -> None:
    source = SOURCE.replace('gen v(model="judge"', 'gen v(model="juge"')
    with pytest.raises(CompileError) as info:
        sglc.compile(source, filename="two.sgl", models=["default", "judge"])
    (diag,) = [d for d in info.value.diagnostics if d.is_error]
    assert diag.code == "unknown-model" and diag.message == "no model 'juge' in this run"
    assert (diag.span.file, diag.span.line, diag.span.col) == ("two.sgl", 12, 29)
    assert "did you mean 'judge'?" in diag.hint
    # a fn's `with` default and a module constant are checked too
    consts = 'let J = "jury"\n\nfn f() -> str with model="jdge":\n    "x" gen a(model=J)\n' \
             '    return a\n'
    with pytest.raises(CompileError) as info:
        sglc.compile(consts, models=["default", "judge"])
    assert sorted((d.span.line, d.message) for d in info.value.diagnostics) == [
        (3, "no model 'jdge' in this run"), (4, "no model 'jury' in this run")]


def test_a_model_name_not_known_until_run_time(engines) -> None:
    prog = sglc.compile('fn f(m: str) -> str:\n    "x" gen a(model=m, max_tokens=2)\n'
                        '    return a\n')
    with pytest.raises(GenError, match="gen 'a': no model 'nope' in this run") as info:
        prog.f("nope", runtime=sglc.Runtime(engine=engines[0]))
    assert "the models are default" in info.value.hint


def test_a_prompt_never_goes_to_a_model_of_another_tokenizer(engines) -> None:
    prog = sglc.compile('fn f() -> str:\n    "x" gen a(model="other", max_tokens=2)\n'
                        '    return a\n')
    with sglc.Runtime(engine=engines[0], models={"other": sglc.default_model_path()}) as rt:
        with pytest.raises(GenError, match="runs on model 'other', whose tokenizer differs"):
            prog.f(runtime=rt)


def test_sglc_run_with_named_models(model_dirs, tmp_path, capsys) -> None:
    path = tmp_path / "two.sgl"
    path.write_text(SOURCE)
    common = ["--max-total-tokens", "1024"]
    assert main(["run", str(path), "--model", str(model_dirs[0]),
                 "--model", f"judge={model_dirs[1]}", *common]) == 0
    out = capsys.readouterr().out
    assert main(["run", str(path), "--model", f"small={model_dirs[0]}",
                 "--model", f"judge={model_dirs[1]}", *common]) == 0
    assert capsys.readouterr().out == out
    # one model only: review's `with model="judge"` is an error at its place
    assert main(["run", str(path), "--model", str(model_dirs[0]), *common]) == 1
    err = capsys.readouterr().err
    assert "two.sgl:6:37" in err and "no model 'judge' in this run" in err
    assert main(["check", str(path), "--models", "default,judge"]) == 0
    assert main(["check", str(path), "--models", "default"]) == 1
    assert main(["run", str(path), "--model", "a", "--model", "b"]) == 2


def test_runtime_models_are_checked() -> None:
    with pytest.raises(ValueError, match="model name 'my model' must be a name"):
        sglc.Runtime(models={"my model": "x"})
    with pytest.raises(ValueError, match="cannot be combined with a client or an endpoint"):
        sglc.Runtime(endpoint="http://127.0.0.1:1", models={"a": "x"})
    with pytest.raises(ValueError, match=r"models\['a'\] must be a model path or an "
                                         r"sglc.Engine, got int"):
        sglc.Runtime(models={"a": 3})
