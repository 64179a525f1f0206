"""The models a program names: each constant `model="..."` of a gen, a select or a fn's
`with` defaults must be one the program runs with.

Which models those are is known only when it runs (`sglc run --model NAME=PATH`,
`Runtime(models={...})`, `sglc check --models a,b`), so this check is separate from the
checker's: `check_model_names` takes the names and returns the diagnostics, each at the
`model=` value. A model chosen by a variable is checked when the gen runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator

from sglc.frontend import ast as A
from sglc.frontend.symbols import CheckedProgram, suggest
from sglc.source import Diagnostic


def check_model_names(program: CheckedProgram, names: Collection[str]) -> list[Diagnostic]:
    """An error for each constant model name in `program` that is not in `names`."""
    infos = {id(m): m for m in [program.main, *program.modules.values()] if m is not None}
    diagnostics = []
    for info in infos.values():
        for kw in _model_keywords(info.module):
            name = _constant(kw.value, program)
            if name is None or name in names:
                continue
            hint = suggest(name, names) or f"the models are {', '.join(names)}"
            diagnostics.append(Diagnostic(
                "error", f"no model '{name}' in this run", kw.value.span,
                f"{hint} (add one with --model {name}=PATH, or Runtime(models={{...}}))",
                "unknown-model"))
    return diagnostics


def _model_keywords(module: A.Module) -> Iterator[A.Keyword]:
    """The `model=` keywords of every gen, select and fn `with` clause in `module`."""
    for fn in module.fns:
        yield from (kw for kw in fn.defaults if kw.name == "model")
        for node in _nodes(fn.body):
            if isinstance(node, (A.Gen, A.Select)):
                yield from (kw for kw in node.params if kw.name == "model")


def _nodes(value: object) -> Iterator[object]:
    """Every AST node under `value` (itself included), depth first."""
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _nodes(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, A.Span):
        yield value
        for f in dataclasses.fields(value):
            yield from _nodes(getattr(value, f.name))


def _constant(expr: A.Expr, program: CheckedProgram) -> str | None:
    """The model name `expr` stands for when it is a constant string, else None."""
    if isinstance(expr, A.Str):
        return expr.value
    const = program.constants.get(expr)
    return const.value if const is not None and isinstance(const.value, str) else None
