"""`sglc run FILE --endpoint URL`: the same output as a local run, streaming, and every
failure one located error or one `sglc: error:` line."""

from __future__ import annotations

from pathlib import Path

import pytest
from server.support import free_port

import sglc
from backends.support import API_KEY
from sglc.cli import main

AGENT = Path(__file__).parents[2] / "examples" / "agent.sgl"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_run_on_an_endpoint_prints_what_a_local_run_prints(capsys, endpoint, local, monkeypatch):
    printed: list[str] = []
    sglc.load(AGENT).run(runtime=local, out=printed.append)
    monkeypatch.setenv("SGLC_API_KEY", API_KEY)  # the key's default, as for `sglc serve`
    code, out, err = run(capsys, "run", AGENT, "--endpoint", f"{endpoint.base_url}/v1",
                         "--stream")
    assert (code, out) == (0, "".join(printed))
    assert "[react] thought = " in err and "[react] action = 'calculator'" in err


def test_a_failing_gen_is_located_and_exits_1(capsys, endpoint, tmp_path):
    path = tmp_path / "long.sgl"
    path.write_text('fn main() -> str:\n    user "Hi"\n    assistant: gen reply(max_tokens=600)\n'
                    '    return reply\n')
    code, out, err = run(capsys, "run", path, "--endpoint", endpoint.base_url, "--api-key",
                         API_KEY, "--api", "openai")
    assert code == 1 and out == ""
    assert err.startswith(f"{path}:3:16: generation error: gen 'reply': ")
    assert "/v1/completions answered 400" in err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--endpoint", "http://127.0.0.1:{port}", "--max-retries", "0"], 1,
     "sglc: error: cannot reach http://127.0.0.1:{port}: "),
    (["--endpoint", "http://127.0.0.1:{port}", "--kernel-backend", "torch"], 2,
     "sglc: error: --kernel-backend configures an in-process engine; with --endpoint"),
    (["--tokenizer", "somewhere"], 2, "sglc: error: --tokenizer is for --endpoint"),
    (["--endpoint", "http://127.0.0.1:{port}", "--max-in-flight", "0"], 1,
     "sglc: error: max_in_flight must be >= 1, got 0"),
])
def test_bad_endpoint_use_is_one_line(capsys, argv, code, message):
    port = free_port()  # nothing listens there
    argv = [a.format(port=port) for a in argv]
    result, out, err = run(capsys, "run", AGENT, *argv)
    assert (result, out) == (code, "")
    assert err.startswith(message.format(port=port)) and len(err.splitlines()) == 1
