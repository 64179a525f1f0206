"""Progress bars: drawn on a terminal, silent when stderr is not one (pipes, logs, CI)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import pytest

from sglc import progress as progress_module
from sglc.progress import is_enabled, progress, working

SCRIPT = """
import time
from sglc.progress import progress, working
for _ in progress(range(3), "counting", unit="step"):
    time.sleep(0.05)
with working("thinking", delay=0.0):
    time.sleep(0.7)
"""


def run_script(stderr_is_tty: bool) -> str:
    """What SCRIPT writes to its stderr, a terminal or a pipe."""
    env = {k: v for k, v in os.environ.items() if k != "SGLC_PROGRESS"}
    if not stderr_is_tty:
        proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    main, child = pty.openpty()
    # a terminal of 100 columns (a fresh pty has none, and tqdm fits its bar to the width)
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stderr=child,
                            stdout=subprocess.DEVNULL, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_bars_and_timers():
    out = run_script(stderr_is_tty=True)
    assert "counting:" in out and "/3 " in out
    assert "thinking: 00:00" in out


def test_a_pipe_gets_nothing():
    assert run_script(stderr_is_tty=False) == ""


def test_sglc_progress_forces_it_on_or_off(monkeypatch, capsys):
    monkeypatch.setenv("SGLC_PROGRESS", "1")
    assert is_enabled()
    list(progress(range(2), "forced"))
    assert "forced" in capsys.readouterr().err
    monkeypatch.setenv("SGLC_PROGRESS", "0")
    assert not is_enabled()
    list(progress(range(2), "off"))
    with working("off too", delay=0.0):
        time.sleep(0.6)
    assert capsys.readouterr().err == ""


def test_a_caller_can_turn_a_bar_off(monkeypatch, capsys):
    monkeypatch.setenv("SGLC_PROGRESS", "1")
    list(progress(range(2), "not wanted", enabled=False))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("delay, shown", [(0.0, True), (30.0, False)])
def test_working_shows_only_work_that_outlasts_its_delay(monkeypatch, capsys, delay, shown):
    monkeypatch.setenv("SGLC_PROGRESS", "1")
    monkeypatch.setattr(progress_module, "_REFRESH_S", 0.05)
    with working("building", delay=delay):
        time.sleep(0.3)
    assert ("building" in capsys.readouterr().err) is shown


def test_a_batch_of_runs_counts_its_runs(monkeypatch, capsys, tmp_path):
    from model_fixtures import make_model_dir

    import sglc.program as api

    def eager(*args, **kwargs):  # the batch bar waits a second before it draws: not here
        return progress(*args, **{**kwargs, "delay": 0.0})

    monkeypatch.setattr(api, "progress", eager)
    make_model_dir(tmp_path, "llama")
    prog = api.compile('fn echo(word: str) -> str:\n    "Say {word}: " gen w(max_tokens=1)\n'
                       '    return w\n', "echo.sgl")
    with api.Runtime(model_path=tmp_path, kernel_backend="torch", max_total_tokens=1024) as rt:
        capsys.readouterr()
        monkeypatch.setenv("SGLC_PROGRESS", "1")
        assert len(prog.echo.batch(["a", "b", "c"], runtime=rt)) == 3
        assert "echo:" in capsys.readouterr().err
        monkeypatch.delenv("SGLC_PROGRESS")
        prog.echo.batch(["a", "b"], runtime=rt)  # stderr is captured: not a terminal
        assert capsys.readouterr().err == ""
