"""The architecture as a test: dependencies flow one way and there are no import cycles.

Every import statement of the package counts, wherever it stands: at the top, inside a
function (a "lazy" import hides a cycle, it does not remove it) and under `if TYPE_CHECKING:`.
Importing `a.b.c` from outside package `a.b` also runs `a/b/__init__.py`, so that is an edge
to `a.b` too. The layering rules below are the README's module map, written as data.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import name -> folder, as pyproject.toml's [tool.setuptools.package-dir] maps them
PACKAGE_DIRS = {
    "sglc": ROOT / "sglc",
    "sglc.ir": ROOT / "ir",
    "sglc.runtime": ROOT / "runtime",
    "sglc.kernels": ROOT / "kernels",
    "sglc.stdlib": ROOT / "stdlib",
}

# (modules under this prefix, the only sglc prefixes they may import besides their own)
ALLOWED: list[tuple[str, tuple[str, ...]]] = [
    ("sglc.source", ()),
    ("sglc.progress", ()),  # progress bars on a terminal (tqdm), for anyone's long work
    ("sglc.constraints", ()),
    ("sglc.runtime.core", ()),
    ("sglc.runtime.config", ("sglc.runtime.core",)),
    # the response cache knows nothing of the engine: the engine calls it
    ("sglc.runtime.response_cache", ("sglc.runtime.core",)),
    # the multiplexer's predictor and log: features from prompts, never a model
    ("sglc.runtime.mux", ("sglc.lang",)),
    ("sglc.lang", ("sglc.source", "sglc.constraints", "sglc.runtime.core")),
    ("sglc.kernels", ("sglc.progress",)),
    ("sglc.frontend", ("sglc.source", "sglc.lang", "sglc.constraints")),
    ("sglc.ir", ("sglc.frontend", "sglc.source", "sglc.lang", "sglc.constraints")),
    # the trace viewer reads trace JSON: it never starts a model
    ("sglc.trace_view", ()),
]
# (modules under this prefix, sglc prefixes they must never import)
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    # the executor reaches a model only through its ModelClient protocol
    ("sglc.runtime.executor", ("sglc.runtime.engine", "sglc.runtime.scheduler",
                               "sglc.runtime.mem", "sglc.runtime.models",
                               "sglc.runtime.model_runner", "sglc.kernels", "sglc.program",
                               "sglc.cli")),
    # the engine knows nothing of programs
    ("sglc.runtime.engine", ("sglc.runtime.executor", "sglc.frontend", "sglc.ir",
                             "sglc.program", "sglc.cli", "sglc.runtime.prism")),
    # several models in one engine (Prism) build on the engine; it never imports them
    ("sglc.runtime.prism", ("sglc.runtime.executor", "sglc.runtime.server", "sglc.frontend",
                            "sglc.ir", "sglc.program", "sglc.cli")),
    ("sglc.program", ("sglc.cli",)),
    # Double Sparsity's calibration and label cache: the engine builds them
    ("sglc.runtime.sparsity", ("sglc.runtime.engine", "sglc.runtime.scheduler",
                               "sglc.runtime.server", "sglc.runtime.executor", "sglc.cli")),
    # tp and dp sit under the engine (which builds them); a replica gets the engine class
    # passed in, never imports it
    ("sglc.runtime.distributed", ("sglc.runtime.engine", "sglc.runtime.server",
                                  "sglc.runtime.executor", "sglc.program", "sglc.cli")),
    # the standard library's Python helpers run programs through the public API
    ("sglc.stdlib", ("sglc.runtime.engine", "sglc.runtime.scheduler", "sglc.runtime.mem",
                     "sglc.runtime.models", "sglc.runtime.model_runner", "sglc.kernels",
                     "sglc.cli")),
    # offloading is built by the engine, never importing it
    ("sglc.runtime.offload", ("sglc.runtime.engine", "sglc.runtime.server",
                              "sglc.runtime.executor", "sglc.runtime.scheduler",
                              "sglc.program", "sglc.cli")),
    # the editor tools work on source: they never start a model
    ("sglc.editor", ("sglc.runtime.engine", "sglc.runtime.server", "sglc.runtime.models",
                     "sglc.kernels", "sglc.cli")),
]
# `sglc check` must not load torch: the compiler's packages never import it
TORCH_FREE = ("sglc.source", "sglc.constraints", "sglc.lang", "sglc.frontend", "sglc.ir",
              "sglc.editor", "sglc.runtime.core", "sglc.runtime.config",
              "sglc.runtime.response_cache", "sglc.runtime.mux", "sglc.trace_view",
              "sglc.progress",
              "sglc.runtime.offload.policy", "sglc.runtime.offload.placement")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if package == "sglc" and parts and f"sglc.{parts[0]}" in PACKAGE_DIRS:
                continue
            found.setdefault(name, path)
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module (of any package) that `name` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in MODULES else module)
    return targets


def _graph() -> dict[str, set[str]]:
    """Edges between the package's own modules, parent packages' __init__ included."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target in _imports(name, path):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                module = ".".join(parts[:i])
                inside = name == module or name.startswith(module + ".")
                if module in MODULES and not inside:
                    graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    for root in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_walk_sees_the_whole_package() -> None:
    assert {"sglc.cli", "sglc.frontend.checker", "sglc.ir.lower",
            "sglc.runtime.model_runner", "sglc.kernels.rope"} <= set(MODULES)
    graph = _graph()
    # a function-body import and a parent package's __init__ both count
    assert "sglc.kernels.cpu_build" in graph["sglc.kernels"]
    assert "sglc.ir" in graph["sglc.runtime.executor.interpreter"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == [
        ["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "d": {"a"}}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (each group imports itself around):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_package_inits_on_the_way_to_a_leaf_import_nothing() -> None:
    """Importing a leaf such as `sglc.runtime.core` runs `sglc/__init__.py` and
    `sglc/runtime/__init__.py` first: they must not pull anything in."""
    for package in {"sglc", "sglc.runtime"}:
        own = {t for t in _imports(package, MODULES[package]) if _under(t, "sglc")}
        assert not own, f"{package} imports {sorted(own)}"


@pytest.mark.parametrize(("prefix", "allowed"), ALLOWED, ids=[p for p, _ in ALLOWED])
def test_leaves_and_lower_layers_import_only_below(prefix: str, allowed: tuple[str, ...]) -> None:
    passed_through = set().union(*(_ancestors(a) for a in allowed + (prefix,)))
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items() if _under(name, prefix)
        for target in targets
        if not _under(target, prefix) and not any(_under(target, a) for a in allowed)
        and target not in passed_through
    )
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(("prefix", "forbidden"), FORBIDDEN, ids=[p for p, _ in FORBIDDEN])
def test_forbidden_directions(prefix: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items() if _under(name, prefix)
        for target in targets if any(_under(target, f) for f in forbidden)
    )
    assert not bad, "\n".join(bad)


def test_the_compiler_never_imports_torch() -> None:
    bad = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items() if any(_under(name, p) for p in TORCH_FREE)
        for target in _imports(name, path) if _under(target, "torch") or _under(target, "triton")
    )
    assert not bad, "\n".join(bad)
