"""The `sglc` command line: generate, models, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sglc.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))
from model_fixtures import make_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-model")
    make_model_dir(path, "llama")
    return path


def test_generate_prints_json_results(model_dir, capsys):
    code = main(["generate", "--model", str(model_dir), "--max-new-tokens", "5", "--json",
                 "--max-total-tokens", "1024", "The quick", "def f"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    rows = [json.loads(line) for line in lines]
    assert [r["prompt"] for r in rows] == ["The quick", "def f"]
    assert all(r["usage"]["completion_tokens"] <= 5 for r in rows)


def test_generate_stream_matches_batch(model_dir, capsys):
    args = ["generate", "--model", str(model_dir), "--max-new-tokens", "6",
            "--max-total-tokens", "1024", "héllo"]
    assert main(args) == 0
    batch = capsys.readouterr().out
    assert main(args + ["--stream"]) == 0
    assert capsys.readouterr().out == batch


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    code = main(["generate", "--model", str(tmp_path / "nope"), "hi"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("sglc: error: model directory") and "Traceback" not in err


def test_bad_arguments_exit_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "sglc", "generate", "--max-new-tokens", "x", "hi"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "invalid int value" in proc.stderr and "Traceback" not in proc.stderr


def test_invalid_sampling_value_is_reported(model_dir, capsys):
    code = main(["generate", "--model", str(model_dir), "--temperature", "-2", "hi"])
    assert code == 1
    assert "temperature must be >= 0" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "generate" in out and "models" in out
