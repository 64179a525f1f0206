"""The model multiplexer in a real program: `gen x(model="auto")` over two engines. A logging
run (`--mux-log`) has every candidate answer and logs graded outcomes; `sglc mux train`
fits a predictor on them; a routed run sends each gen to the model it predicts (its output
equals that model's alone); and bad setups fail with clear errors."""

from __future__ import annotations

import json

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.cli import main
from sglc.program import CompileError
from sglc.runtime.executor.errors import GenError
from sglc.runtime.executor.trace import Trace
from sglc.runtime.mux import MuxConfig, MuxError, read_outcomes

SOURCE = '''
fn ask(q: str) -> str:
    "Q: {q}\\nA:" gen a(model="auto", max_tokens=3)
    return a

fn main(qs: list[str]) -> list[str]:
    let answers = parallel for q in qs:
        ask(q)
    return answers
'''
# the grader's rule, which the predictor must learn from the prompts alone: the small model
# "answers well" exactly the questions that say "easy" (each number asked both ways, so only
# the word tells them apart)
QUESTIONS = [f"{w} question number {k}" for k in range(8) for w in ("easy", "hard")]


def grade(prompt: str, answer: str, reference: str) -> float:
    return 1.0 if "easy" in prompt else 0.0


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """A small and a larger random-weight Llama (4 layers: costlier) of one tokenizer."""
    small, large = tmp_path_factory.mktemp("small"), tmp_path_factory.mktemp("large")
    make_model_dir(small, "llama", seed=0)
    make_model_dir(large, "llama", seed=1, num_hidden_layers=4)
    return {"small": small, "large": large}


@pytest.fixture(scope="module")
def engines(model_dirs):
    made = {m: sglc.Engine(p, max_total_tokens=2048) for m, p in model_dirs.items()}
    yield made
    for e in made.values():
        e.shutdown()


@pytest.fixture(scope="module")
def predictor_path(engines, tmp_path_factory):
    """A logging run's outcomes, trained on with `sglc mux train`."""
    folder = tmp_path_factory.mktemp("mux")
    log = folder / "outcomes.jsonl"
    runtime = sglc.Runtime(models=engines, mux=MuxConfig(log=log, grader=grade))
    answers = sglc.compile(SOURCE).main(QUESTIONS, runtime=runtime)
    assert answers == [alone(engines["large"], q) for q in QUESTIONS]  # the reference's
    pred = folder / "pred.json"
    assert main(["mux", "train", str(log), "--out", str(pred)]) == 0
    return pred


def alone(engine: sglc.Engine, q: str) -> str:
    prog = sglc.compile(SOURCE.replace('model="auto", ', ""))
    return prog.ask(q, runtime=sglc.Runtime(engine=engine))


def test_a_logging_run_logs_every_candidate_graded(engines, predictor_path) -> None:
    outcomes = read_outcomes(predictor_path.parent / "outcomes.jsonl")
    assert len(outcomes) == 2 * len(QUESTIONS)
    assert {o.model for o in outcomes} == {"small", "large"}
    assert all(o.quality == 1.0 for o in outcomes if o.model == "large")  # the reference
    small = [o for o in outcomes if o.model == "small"]
    assert sum(o.quality for o in small) == len(QUESTIONS) // 2
    costs = {o.model: o.cost / (o.prompt_tokens + o.output_tokens) for o in outcomes}
    assert costs["large"] > 1.5 * costs["small"]  # FLOPs: twice the layers
    saved = json.loads(predictor_path.read_text())
    assert set(saved["models"]) == {"small", "large"}


def test_auto_routes_each_gen_to_the_predicted_model(engines, predictor_path) -> None:
    questions = [f"{w} question number {k}" for k, w in
                 [(40, "easy"), (41, "hard"), (57, "easy"), (58, "hard")]]
    trace = Trace()
    runtime = sglc.Runtime(models=engines, mux=predictor_path)
    prog = sglc.compile(SOURCE, models=runtime.model_names)
    answers = prog.main(questions, runtime=runtime, trace=trace)
    gens = sorted((g for g in trace.to_json()["calls"] if g["kind"] == "gen"),
                  key=lambda g: g["prompt"])
    routed = {g["prompt"].split("\n")[0]: g["model"] for g in gens}
    assert routed == {f"Q: {q}": "small" if q.startswith("easy") else "large"
                      for q in questions}
    assert all(set(g["mux"]["probabilities"]) == {"small", "large"} for g in gens)
    assert answers == [alone(engines[routed[f"Q: {q}"]], q) for q in questions]


def test_a_high_threshold_sends_everything_to_the_large_model(engines, predictor_path) -> None:
    trace = Trace()
    runtime = sglc.Runtime(models=engines, mux=MuxConfig(predictor_path, threshold=1.0))
    sglc.compile(SOURCE).main(["easy question number 3"], runtime=runtime, trace=trace)
    assert [g["model"] for g in trace.to_json()["calls"] if g["kind"] == "gen"] == ["large"]


def test_the_checker_accepts_auto_with_a_multiplexer_only(engines, predictor_path) -> None:
    with_mux = sglc.Runtime(models=engines, mux=predictor_path)
    sglc.compile(SOURCE, models=with_mux.model_names)
    bad = SOURCE.replace("max_tokens=3)", "max_tokens=3)\n    gen b(model=\"lage\")")
    with pytest.raises(CompileError) as info:
        sglc.compile(bad, models=with_mux.model_names)
    assert "no model 'lage' in this run" in str(info.value)
    assert "auto" not in str(info.value)
    with pytest.raises(CompileError) as info:
        sglc.compile(SOURCE, models=sglc.Runtime(models=engines).model_names)
    assert 'model="auto" needs a multiplexer' in str(info.value)
    assert "--mux PRED.json" in str(info.value)


def test_auto_without_a_multiplexer_fails_at_the_gen(engines) -> None:
    with pytest.raises(GenError) as info:
        sglc.compile(SOURCE).ask("hi", runtime=sglc.Runtime(models=engines))
    assert 'model="auto" needs a multiplexer' in str(info.value)


def test_a_predictor_for_other_models_is_refused(engines, predictor_path) -> None:
    runtime = sglc.Runtime(models={"small": engines["small"], "judge": engines["large"]},
                           mux=predictor_path)
    with pytest.raises(MuxError) as info:
        sglc.compile(SOURCE).ask("hi", runtime=runtime)
    assert f"{predictor_path} is for models large, small; this run has small, judge " \
           "(no large)" in str(info.value)


def test_auto_is_not_a_model_name(engines) -> None:
    with pytest.raises(ValueError, match="'auto' cannot name a model"):
        sglc.Runtime(models={"auto": engines["small"]})


def test_sglc_run_with_mux(model_dirs, predictor_path, tmp_path, capsys) -> None:
    program = tmp_path / "p.sgl"
    program.write_text(SOURCE)
    models = [f"--model={m}={p}" for m, p in model_dirs.items()]
    trace = tmp_path / "t.json"
    code = main(["run", str(program), *models, "--mux", str(predictor_path), "--trace",
                 str(trace), "--args-json", json.dumps({"qs": ["easy question number 9"]})])
    assert code == 0, capsys.readouterr().err
    calls = json.loads(trace.read_text())["calls"]
    assert [c["model"] for c in calls if c["kind"] == "gen"] == ["small"]
    assert main(["run", str(program), *models, "--args-json", '{"qs": ["x"]}']) == 1
    assert 'model="auto" needs a multiplexer' in capsys.readouterr().err
    assert main(["run", str(program), *models, "--mux", str(tmp_path / "nope.json"),
                 "--args-json", '{"qs": ["x"]}']) == 1
    assert "cannot read predictor" in capsys.readouterr().err


def test_sglc_check_notes_multiplexed_gens(tmp_path, capsys) -> None:
    program = tmp_path / "p.sgl"
    program.write_text(SOURCE)
    assert main(["check", str(program), "--models", "small,large"]) == 0
    out = capsys.readouterr()
    assert "multiplexed" in out.out + out.err


def test_a_failing_grader_fails_the_gen_clearly(engines, tmp_path) -> None:
    def broken(prompt: str, answer: str, reference: str) -> float:
        raise KeyError("oops")

    runtime = sglc.Runtime(models=engines, mux=MuxConfig(log=tmp_path / "l.jsonl",
                                                         grader=broken))
    with pytest.raises(GenError) as info:
        sglc.compile(SOURCE).ask("hi", runtime=runtime)
    assert "cannot log its outcomes: the mux grader failed on model 'small''s answer: " \
           "KeyError" in str(info.value)
