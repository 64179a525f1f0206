"""`sglc.constraints` is a leaf: it imports nothing else of sglc and no torch, its modules
form no cycle, and none imports another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sglc.constraints

PACKAGE = Path(sglc.constraints.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in a file, in function bodies too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def test_the_leaf_imports_nothing_else_of_sglc_and_no_torch() -> None:
    for path in MODULES:
        for module, _ in _imports(path):
            assert module.startswith("sglc.constraints") or not module.startswith("sglc"), path
            assert module.split(".")[0] not in ("torch", "numpy"), path
    code = ("import sys, sglc.constraints; print(' '.join(m for m in sys.modules "
            "if m.startswith(('sglc', 'torch'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert all(m == "sglc" or m.startswith("sglc.constraints") for m in loaded), loaded


def test_no_cycle_and_no_private_imports_between_the_leafs_modules() -> None:
    edges: dict[str, set[str]] = {}
    for path in MODULES:
        name = path.stem
        edges[name] = set()
        for module, names in _imports(path):
            if module.startswith("sglc.constraints.") and name != "__init__":
                edges[name].add(module.rsplit(".", 1)[1])
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{name} imports private {private} from {module}"
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, " -> ".join((*path, node))
        if node not in done:
            for nxt in edges[node]:
                visit(nxt, (*path, node))
            done.add(node)

    for node in edges:
        visit(node, ())
