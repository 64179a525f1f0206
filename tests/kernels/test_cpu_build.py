"""The CPU-kernel build lock: a build killed part-way does not make later builds wait forever."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from torch.utils import cpp_extension

from sglc.kernels import cpu_build

pytest.importorskip("fcntl")


def test_build_directory_is_torchs_cache_folder(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    expected = cpp_extension._get_build_directory(cpu_build.extension_name(), verbose=False)
    assert str(cpu_build.build_directory()) == expected  # a cache built before stays valid


def test_each_environment_builds_under_its_own_name():
    base = dict(torch_version="2.13.0", torch_include="/venv-a/site-packages/torch/include",
                python_prefix="/venv-a")
    name = cpu_build.extension_name(**base)
    assert name.isidentifier() and name.startswith("sglc_cpu_kernels_")
    assert cpu_build.extension_name(**base) == name  # stable: a second start reuses the build
    changes = [
        {"torch_version": "2.12.0"},
        {"torch_include": "/venv-b/site-packages/torch/include"},
        {"python_prefix": "/venv-b"},
        {"sources": ("int main() {}",)},
        {"cflags": ("-O2",)},
    ]
    names = {cpu_build.extension_name(**{**base, **change}) for change in changes}
    assert name not in names and len(names) == len(changes)


def test_the_default_name_is_this_environments():
    import sys

    import torch

    assert cpu_build.extension_name() == cpu_build.extension_name(
        torch.__version__, cpp_extension.include_paths()[0], sys.prefix)


def holding_build(folder, then: str) -> str:
    """A script that takes the build lock of `folder`, writes torch's lock file as a build
    would, then runs `then` (indented into the locked block)."""
    prelude = textwrap.dedent(f"""
        import os, pathlib, sys
        from sglc.kernels.cpu_build import exclusive_build
        folder = pathlib.Path({str(folder)!r})
        with exclusive_build(folder):
            (folder / "lock").touch()
    """)
    return prelude + textwrap.indent(textwrap.dedent(then), "    ")


def test_lock_file_of_a_killed_build_is_cleared(tmp_path):
    folder = tmp_path / "ext"
    killed = holding_build(folder, "os._exit(1)\n")  # dies holding the lock
    assert subprocess.run([sys.executable, "-c", killed], timeout=120).returncode == 1
    assert (folder / "lock").exists()
    with cpu_build.exclusive_build(folder):  # the kernel dropped the dead process's flock
        assert not (folder / "lock").exists()


def test_a_running_build_is_waited_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SGLC_PROGRESS", "1")  # as on a terminal: the wait is shown
    folder = tmp_path / "ext"
    holder = holding_build(folder, """
        print("holding", flush=True)
        sys.stdin.readline()
        (folder / "lock").unlink()
        (folder / "built").touch()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"

        def finish_holder() -> None:
            proc.stdin.write("\n")
            proc.stdin.flush()

        release = threading.Timer(0.5, finish_holder)  # once we are waiting on its lock
        release.start()
        with cpu_build.exclusive_build(folder):  # returns only once the holder finished
            assert (folder / "built").exists()
        release.join()
    finally:
        proc.wait(timeout=120)
    assert "waiting for another process's CPU-kernel build" in capsys.readouterr().err
