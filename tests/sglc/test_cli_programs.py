"""`sglc run / check / compile`: outputs, exit codes, and clean errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_fixtures import make_model_dir

from sglc.cli import main

PROGRAM = '''
"""A small program for the CLI tests."""
extern fn shout(text: str) -> str

fn add(a: int, b: int = 2, tags: list[str] = []) -> int:
    requires a >= 0
    return a + b + len(tags)

fn talk(name: str) -> str:
    user "Hello {name}"
    assistant: gen reply(max_tokens=3)
    return shout(name)

fn main():
    print("sum", add(1))
'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-exec-model")
    make_model_dir(path, "llama")
    return path


@pytest.fixture()
def prog_file(tmp_path):
    path = tmp_path / "prog.sgl"
    path.write_text(PROGRAM)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def engine_args(model_dir):
    return ["--model", model_dir, "--max-total-tokens", "2048"]


def test_run_main_and_a_fn_with_arguments(capsys, prog_file, model_dir):
    assert run(capsys, "run", prog_file, *engine_args(model_dir)) == (0, "sum 3\n", "")
    code, out, _ = run(
        capsys,
        "run",
        prog_file,
        "--fn",
        "add",
        "-a",
        "a=5",
        "-a",
        "b=10",
        "--args-json",
        '{"tags": ["x", "y"]}',
        *engine_args(model_dir),
    )
    assert (code, out) == (0, "17\n")


def test_run_with_tools_stream_and_trace(capsys, prog_file, model_dir, tmp_path):
    tools = tmp_path / "tools.py"
    tools.write_text("def shout(text):\n    return text.upper() + '!'\n")
    trace = tmp_path / "trace.json"
    code, out, err = run(
        capsys,
        "run",
        prog_file,
        "--fn",
        "talk",
        "-a",
        "name=ada",
        "--tools",
        tools,
        "--trace",
        trace,
        "--stream",
        *engine_args(model_dir),
    )
    assert (code, out) == (0, "ADA!\n")
    assert "[talk] reply = " in err
    data = json.loads(trace.read_text())
    assert data["num_calls"] == 1 and data["calls"][0]["name"] == "reply"
    assert "Hello ada" in data["calls"][0]["prompt"]


def test_run_reports_runtime_errors_with_location(capsys, prog_file, model_dir):
    code, out, err = run(
        capsys, "run", prog_file, "--fn", "add", "-a", "a=-1", *engine_args(model_dir)
    )
    assert code == 1
    assert (
        err.startswith("prog.sgl:6:5: spec violation: requires failed")
        or ":6:5: spec violation: requires failed" in err.splitlines()[0]
    )
    assert "call stack" in err


def test_check_ok_errors_and_json(capsys, prog_file, tmp_path):
    code, _, err = run(capsys, "check", prog_file)
    assert code == 0 and "ok (0 errors" in err
    bad = tmp_path / "bad.sgl"
    bad.write_text("fn f() -> int:\n    return undefined_name\n")
    code, _, err = run(capsys, "check", bad)
    assert code == 1 and "bad.sgl:2:12: error: unknown name 'undefined_name'" in err
    code, out, _ = run(capsys, "check", bad, "--format", "json")
    diags = json.loads(out)
    assert code == 1 and diags[0]["line"] == 2 and diags[0]["severity"] == "error"


def test_compile_emits_ast_ir_and_runnable_json(capsys, prog_file, tmp_path, model_dir):
    code, out, _ = run(capsys, "compile", prog_file, "--emit", "ast")
    ast = json.loads(out)
    assert (
        code == 0
        and ast["node"] == "Module"
        and [f["name"] for f in ast["fns"]] == ["shout", "add", "talk", "main"]
    )
    code, out, _ = run(capsys, "compile", prog_file, "--emit", "ir")
    assert code == 0 and "fn prog.add(" in out and "assert_spec" in out
    saved = tmp_path / "prog.json"
    assert run(capsys, "compile", prog_file, "--emit", "json", "-o", saved)[0] == 0
    assert json.loads(saved.read_text())["format"] == "sglc-program"
    assert run(capsys, "run", saved, *engine_args(model_dir)) == (0, "sum 3\n", "")


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["run", "missing.sgl"], 1, "file not found: missing.sgl"),
        (["run", "{prog}", "--fn", "nope"], 2, "has no fn 'nope'"),
        (["run", "{prog}", "--fn", "add"], 2, "missing argument for add(): -a a=<int>"),
        (["run", "{prog}", "--fn", "add", "-a", "a=x"], 2, "argument 'a' must be an int"),
        (["run", "{prog}", "--fn", "add", "-a", "aa=1"], 2, "did you mean 'a'?"),
        (["run", "{prog}", "--fn", "add", "-a", "a"], 2, "-a expects KEY=VALUE"),
        (["run", "{prog}", "--fn", "add", "-a", "a=1", "-a", "tags=x"], 2, "written as JSON"),
        (["run", "{prog}", "--fn", "add", "--args-json", "[1]"], 2, "must be a JSON object"),
        (["run", "{prog}", "--fn", "add", "--args-json", "{"], 2, "not valid JSON"),
        (["run", "{prog}", "--fn", "add", "--args-json", '{"a": "1"}'], 2, "must be an int, got str"),  # issue 23: wording
        (["run", "{prog}", "--tools", "nope.py"], 1, "tools file not found"),
        (["run", "{prog}", "--model", "{tmp}/no-model"], 1, "sglc: error: model directory"),
        (["run", "{tmp}/prog.json"], 1, "sglc: error:"),
        (["check", "{tmp}"], 1, "error: cannot read file"),
    ],
)
def test_bad_run_arguments_are_clean_errors(capsys, prog_file, tmp_path, argv, code, message):
    (tmp_path / "prog.json").write_text('{"format": "sglc-program", "ir": {}}')
    argv = [a.replace("{prog}", str(prog_file)).replace("{tmp}", str(tmp_path)) for a in argv]
    got, out, err = run(capsys, *argv)
    assert got == code, err
    assert message in err


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(["a", "b", "tags", "x", ""]), value=st.text(max_size=12))
def test_any_argument_value_gives_a_clean_result(capsys, prog_file, tmp_path, key, value):
    code, _, err = run(
        capsys,
        "run",
        prog_file,
        "--fn",
        "add",
        "-a",
        f"{key}={value}",
        "--model",
        tmp_path / "no-model",
    )
    assert code in (1, 2) and err.startswith("sglc: error:")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(
        st.text(max_size=20),
        st.dictionaries(
            st.sampled_from(["a", "b", "tags", "zz"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                lambda x: st.lists(x, max_size=3),
                max_leaves=5,
            ),
            max_size=3,
        ).map(json.dumps),
    )
)
def test_any_args_json_gives_a_clean_result(capsys, prog_file, tmp_path, payload):
    code, _, err = run(
        capsys,
        "run",
        prog_file,
        "--fn",
        "add",
        f"--args-json={payload}",  # the = form: a payload may start with "-"
        "--model",
        tmp_path / "no-model",
    )
    assert code in (1, 2) and err.startswith("sglc: error:")


def test_no_traceback_from_the_process(prog_file):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglc",
            "run",
            str(prog_file),
            "--fn",
            "add",
            "-a",
            "a=oops",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument 'a' must be an int, got 'oops'" in proc.stderr


def test_run_sampling_defaults(capsys, prog_file, model_dir, tmp_path):
    trace = tmp_path / "trace.json"
    code, out, err = run(capsys, "run", prog_file, "--fn", "talk", "-a", "name=ada",
                         "--tools", _shout_tools(tmp_path), "-s", "temperature=0.5",
                         "-s", "top_k=5", "-s", 'stop=["\\n"]', "--trace", trace,
                         *engine_args(model_dir))
    assert (code, out) == (0, "ADA!\n"), err
    params = json.loads(trace.read_text())["calls"][0]["params"]
    # the gen's own max_tokens=3 wins over any default; the rest are the run's
    assert (params["temperature"], params["top_k"], params["stop"]) == (0.5, 5, ["\n"])
    assert params["max_new_tokens"] == 3


@pytest.mark.parametrize("pair, message", [
    ("n=2", "n cannot be a default"),
    ("tempreature=1", "unknown gen parameter 'tempreature'; did you mean 'temperature'?"),
    ("temperature=-1", "temperature must be >= 0, got -1"),
    ("temperature=hot", "temperature must be a number, true/false or None, got 'hot'"),
    ("top_k=1.5", "top_k must be int | None, got 1.5"),
    ("temperature", "-s expects KEY=VALUE"),
])
def test_bad_sampling_defaults_are_usage_errors(capsys, prog_file, pair, message):
    code, _, err = run(capsys, "run", prog_file, "-s", pair)
    assert code == 2 and message in err, err


def test_run_args_files_one_run_per_record(capsys, prog_file, model_dir, tmp_path):
    jsonl = tmp_path / "runs.jsonl"
    jsonl.write_text('{"a": 1}\n\n{"a": 2, "tags": ["x"]}\n')
    code, out, err = run(capsys, "run", prog_file, "--fn", "add", "--args-file", jsonl,
                         "-a", "b=10", *engine_args(model_dir))
    assert (code, out) == (0, "11\n13\n"), err
    listed = tmp_path / "runs.json"
    listed.write_text('[{"a": 0}, {"a": 5, "b": 0}]')
    code, out, _ = run(capsys, "run", prog_file, "--fn", "add", "--args-file", listed,
                       *engine_args(model_dir))
    assert (code, out) == (0, "2\n5\n")
    lines = tmp_path / "names.txt"
    lines.write_text("ada\n\nbob\n")
    code, out, _ = run(capsys, "run", prog_file, "--fn", "talk", "--args-file", lines,
                       "--tools", _shout_tools(tmp_path), *engine_args(model_dir))
    assert (code, out) == (0, '"ADA!"\n"BOB!"\n')


@pytest.mark.parametrize("name, text, extra, message", [
    ("bad.jsonl", '{"a": 1}\n{oops\n', [], "bad.jsonl:2 is not valid JSON"),
    ("bad.json", "[1, 2]", [], "bad.json, item 0: each run must be a JSON object"),
    ("bad2.jsonl", '{"a": "x"}\n', [], "argument 'a' must be an int, got str \"x\""),
    ("bad3.jsonl", '{"z": 1}\n', [], "unknown argument 'z'"),
    ("both.jsonl", '{"a": 1}\n', ["-a", "a=2"], "argument 'a' is given both"),
    ("lines.txt", "x\n", [], "argument 'a' must be an int, got 'x'"),
])
def test_bad_args_files_are_usage_errors(capsys, prog_file, tmp_path, name, text, extra,
                                         message):
    path = tmp_path / name
    path.write_text(text)
    code, _, err = run(capsys, "run", prog_file, "--fn", "add", "--args-file", path, *extra)
    assert code == 2 and message in err, err
    code, _, err = run(capsys, "run", prog_file, "--fn", "add", "--args-file",
                       tmp_path / "missing.jsonl")
    assert code == 2 and "cannot read" in err


def _shout_tools(tmp_path):
    tools = tmp_path / "shout_tools.py"
    tools.write_text("def shout(text):\n    return text.upper() + '!'\n")
    return tools
