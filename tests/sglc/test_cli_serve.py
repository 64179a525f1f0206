"""`sglc serve` (and `python -m sglc.runtime.server`): its options, and failures at start as one `sglc: error:` line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sglc.cli import build_parser
from sglc.cli.common import engine_options
from sglc.cli.serve_command import server_config


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def serve(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sglc.runtime.server", *argv],
                          capture_output=True, text=True, timeout=120)


def test_defaults_bind_loopback_without_a_key(monkeypatch):
    monkeypatch.delenv("SGLC_API_KEY", raising=False)
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", 30000)
    config = server_config(args)
    assert config.api_key is None and config.model_name == "default"
    assert engine_options(args) == {"device": "cpu", "dtype": "auto"}


def test_engine_and_limit_options_reach_their_configs():
    args = parse("--max-total-tokens", "4096", "--policy", "fcfs", "--disable-radix-cache",
                 "--chunked-prefill-size", "0", "--disable-jump-forward", "--max-n", "3",
                 "--max-in-flight", "7", "--served-model-name", "tiny", "--api-key", "k")
    assert engine_options(args) == {
        "device": "cpu", "dtype": "auto", "max_total_tokens": 4096, "policy": "fcfs",
        "chunked_prefill_size": 0, "disable_radix_cache": True, "enable_jump_forward": False}
    config = server_config(args)
    assert (config.max_n, config.max_in_flight, config.model_name, config.api_key) == \
        (3, 7, "tiny", "k")


def test_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("SGLC_API_KEY", "from-env")
    assert server_config(parse()).api_key == "from-env"


def test_missing_model_is_one_line():
    result = serve("--model", "/nonexistent/model")
    assert result.returncode == 1
    assert result.stderr.startswith("sglc: error:") and "Traceback" not in result.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["--max-n", "0"], "max_n must be >= 1"),
    (["--program", "/nonexistent.sgl"], "no such file"),
])
def test_bad_options_fail_before_the_model_loads(argv, message):
    result = serve(*argv)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_program_that_does_not_compile_stops_the_start(tmp_path):
    bad = tmp_path / "bad.sgl"
    bad.write_text("fn main(:\n")
    result = serve("--program", str(bad))
    assert result.returncode == 1
    assert "a --program does not compile" in result.stderr and "bad.sgl:1:9" in result.stderr


def test_serve_is_an_sglc_command_with_the_shared_engine_flags():
    result = subprocess.run([sys.executable, "-m", "sglc", "serve", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--port", "--api-key", "--max-in-flight", "--kernel-backend",
                 "--max-running-requests", "--disable-jump-forward", "--engine-seed"):
        assert flag in result.stdout
