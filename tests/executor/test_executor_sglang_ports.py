"""SGLang's frontend test programs, ported to SGL (written from the public documentation of
SGLang's primitives, one .sgl file each in sglang_ports/), run on the shipped default model.
The model is tiny: what is asserted is each program's structure and types (and the answers
the default model was trained to give: ReAct with the calculator, yes/no, a remembered fact).

Not ported: image QA (multimodal), speculative completion (an API-model feature), and
min_new_tokens (the `min_tokens` gen parameter is another part's)."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest

import sglc
from sglc.frontend import check_program

PORTS = Path(__file__).parent / "sglang_ports"


@pytest.fixture(scope="module")
def runtime():
    with sglc.Runtime() as rt:  # the embedded default model
        yield rt


def load(name: str) -> sglc.Program:
    return sglc.load(PORTS / f"{name}.sgl")


@pytest.mark.parametrize("path", sorted(PORTS.glob("*.sgl")), ids=lambda p: p.stem)
def test_every_port_checks_clean_with_a_title(path: Path) -> None:
    checked, diags = check_program(path)
    assert diags == [] and checked.main.module.doc


def test_few_shot_qa(runtime) -> None:
    state = load("few_shot_qa").few_shot_qa.state("What is the capital of Spain?",
                                                  runtime=runtime)
    assert isinstance(state.value, str) and "\n" not in state.value
    assert state.text.startswith("The following are questions with answers.\nQ: What is")
    assert state.meta["answer"]["finish_reason"] in ("stop", "length")


def test_mt_bench(runtime) -> None:
    answers = load("mt_bench").answer_mt_bench("I live in Lisbon. My name is Hugo.",
                                               "Where do I live?", runtime=runtime)
    assert len(answers) == 2 and all(isinstance(a, str) and a for a in answers)
    assert "Lisbon" in answers[1]  # the second turn sees the first


def test_select(runtime) -> None:
    out = load("select").true_or_false("Is Rome the capital of Italy?", runtime=runtime)
    assert out["answer"] in ("Yes", "No") and len(out["scores"]) == 2
    assert out["answer"] == ("Yes", "No")[max(range(2), key=lambda i: out["scores"][i])]


def test_decode_int(runtime) -> None:
    hours, days = load("decode_int").decode_int(runtime=runtime)
    assert all(isinstance(v, int) and 0 <= v <= 999 for v in (hours, days))


def test_decode_json_regex(runtime) -> None:
    city = load("decode_json_regex").city_json("Paris", runtime=runtime)
    assert list(city) == ["name", "population", "area", "latitude"]
    assert isinstance(city["name"], str) and len(city["name"]) <= 20
    assert isinstance(city["population"], int) and isinstance(city["area"], int)
    assert isinstance(city["latitude"], (int, float))


def test_decode_json(runtime) -> None:
    out = load("decode_json").city_info("Paris", runtime=runtime)
    jsonschema.validate(out["info"], load("decode_json").ir.schemas["City"])
    jsonschema.validate(out["again"], load("decode_json").ir.schemas["city.schema.json"])
    assert out["summary"] == {**out["info"], "country": out["again"]["country"]}


def test_parallel_decoding(runtime) -> None:
    out = load("parallel_decoding").parallel_decoding("staying healthy", runtime=runtime)
    assert len(out["tips"]) == 2 and len(out["details"]) == 2
    assert all(isinstance(s, str) for s in [*out["tips"], *out["details"], out["summary"]])


def test_expert_answer_joins_by_append(runtime) -> None:
    out = load("expert_answer").expert_answers("What is 12*7?", runtime=runtime)
    views, text = out["views"], out["text"]
    assert len(views) == 2
    expected = "".join(f"Expert {i + 1}:{v}\n" for i, v in enumerate(views))
    assert text == f"Question: What is 12*7?\n{expected}Final answer:{out['final']}"


def test_tool_use(runtime) -> None:
    out = load("tool_use").tool_use("What is 12*7?", runtime=runtime)
    assert out["tool"] in ("calculator", "search engine")
    assert set(out) == {"tool", "expression" if out["tool"] == "calculator" else "word"}


def test_react(runtime) -> None:
    out = load("react").react("What is 12*7?", runtime=runtime)
    assert set(out["steps"]) <= {"calculator", "finish"} and out["steps"]
    assert out["answer"] == "84"  # the default model was trained on this loop


def test_regex(runtime) -> None:
    answer = load("regex").regex_gen(runtime=runtime)
    assert re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", answer)
    assert all(0 <= int(part) <= 255 for part in answer.split("."))


def test_dtype_gen(runtime) -> None:
    out = load("dtype_gen").dtype_gen(runtime=runtime)
    assert isinstance(out["int"], int) and out["choice"] in ("Yes", "No")
    assert isinstance(out["bool"], bool) and isinstance(out["float"], float)
    assert isinstance(out["str"], str)


def test_hellaswag_select(runtime) -> None:
    contexts = ["The cat sat on the", "She opened the door and"]
    endings = [[" mat.", " moon.", " idea."], [" walked in.", " flew away.", " melted."]]
    picks = load("hellaswag_select").hellaswag(contexts, endings, runtime=runtime)
    for pick, options in zip(picks, endings, strict=True):
        assert pick["ending"] == options[pick["index"]] and len(pick["scores"]) == 3
        assert pick["index"] == max(range(3), key=lambda i: (pick["scores"][i], -i))


def test_stream(runtime) -> None:
    pieces: list[str] = []

    class Collect(sglc.ProgramEvents):
        def on_delta(self, fn: str, name: str, text: str) -> None:
            pieces.append(text)

    answers = load("mt_bench").answer_mt_bench("Hi, I am Ann.", "What is my name?",
                                               runtime=runtime, events=Collect())
    assert "".join(pieces) == "".join(answers)
