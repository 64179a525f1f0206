"""The `sglc` command line: generate, models, and clean errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch
from model_fixtures import make_model_dir  # noqa: E402

from sglc.cli import build_parser, guard, main
from sglc.cli.common import engine_options


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


# -- one guard for every command: device errors, the kernel-backend flag, help ---------------
OK_PROGRAM = 'fn main():\n    print("ok")\n'


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [["generate", "--device", "cuda", "hi"],
                                     ["run", "--device", "cuda", "{ok}"]])
def test_cuda_without_cuda_is_one_line_through_the_real_cli(tmp_path, command):
    ok = tmp_path / "ok.sgl"
    ok.write_text(OK_PROGRAM)
    argv = [a.replace("{ok}", str(ok)) for a in command] + ["--attention-backend", "torch"]
    proc = subprocess.run([sys.executable, "-m", "sglc", *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("sglc: error: --device cuda: CUDA is not available (")
    assert proc.stderr.endswith("; drop --device to run on the CPU\n")
    assert proc.stderr.count("\n") == 1


def test_a_cuda_index_the_machine_lacks_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    ok = tmp_path / "ok.sgl"
    ok.write_text(OK_PROGRAM)
    assert main(["run", str(ok), "--device", "cuda:3"]) == 1
    assert capsys.readouterr().err == (
        "sglc: error: --device cuda:3: this machine has 1 CUDA device (cuda:0 to cuda:0)\n")


def test_an_unknown_device_is_a_usage_error(capsys):
    assert main(["generate", "--device", "gpu", "hi"]) == 2
    assert capsys.readouterr().err.startswith("sglc: error: --device 'gpu' is not a device")


@pytest.mark.parametrize("flag", ["--kernel-backend", "--attention-backend"])
def test_kernel_backend_flag_and_its_former_name(model_dir, capsys, flag):
    args = build_parser().parse_args(["generate", flag, "torch", "hi"])
    assert args.kernel_backend == "torch"
    assert engine_options(args)["kernel_backend"] == "torch"
    assert main(["generate", "--model", str(model_dir), "--max-new-tokens", "2",
                 "--max-total-tokens", "1024", flag, "torch", "hi"]) == 0


@pytest.mark.parametrize("command", ["run", "check", "compile", "generate", "models"])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith(f"usage: sglc {command}")
    if command in ("run", "generate"):
        assert "--kernel-backend {torch,triton,cpu}, --attention-backend" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_a_bug_is_one_internal_error_line(capsys, monkeypatch):
    def broken(args):
        raise AssertionError("a bug")

    monkeypatch.delenv("SGLC_DEBUG", raising=False)
    assert guard(broken, argparse.Namespace()) == 3
    err = capsys.readouterr().err
    assert err.startswith("sglc: internal error: AssertionError: a bug") and err.count("\n") == 1


def test_a_program_saved_in_the_old_format_is_refused_clearly(tmp_path, capsys):
    ok = tmp_path / "ok.sgl"
    ok.write_text(OK_PROGRAM)
    saved = tmp_path / "ok.json"
    assert main(["compile", str(ok), "--emit", "json", "-o", str(saved)]) == 0
    data = json.loads(saved.read_text())
    data["ir"]["version"] = 1
    saved.write_text(json.dumps(data))
    assert main(["run", str(saved)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sglc: error: a damaged or incompatible saved program: it was saved "
                          "in IR format version 1, and this sglc reads version 3; compile the "
                          "program again")
