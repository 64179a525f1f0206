"""The stdlib's .sgl modules as programs you can call from Python.

    from sglc.stdlib.loader import load
    judge = load("judge")                      # an sglc.Program of stdlib/judge.sgl
    judge.grade("What is 2+2?", "4", runtime=rt)

In SGL, `import judge` finds the same file (next to your program first, then here).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sglc.program import Program
from sglc.program import load as load_program


def module_path(name: str) -> Path:
    """The file of stdlib module `name` ("judge" -> .../sglc/stdlib/judge.sgl)."""
    path = Path(str(resources.files("sglc.stdlib"))) / f"{name}.sgl"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.sgl"))
        raise ValueError(f"no stdlib module {name!r}; the modules are {', '.join(known)}")
    return path


def load(name: str) -> Program:
    """A fresh Program of stdlib module `name` (its fns callable, its externs unbound)."""
    return load_program(module_path(name))


__all__ = ["load", "module_path"]
