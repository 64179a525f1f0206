"""The models a program names: each constant `model="..."` of a gen, a select or a fn's
`with` defaults must be one the program runs with.

Which models those are is known only when it runs (`sglc run --model NAME=PATH`,
`Runtime(models={...})`, `sglc check --models a,b`), so this check is separate from the
checker's: `check_model_names` takes the names and returns the diagnostics, each at the
`model=` value. A model chosen by a variable is checked when the gen runs. `model="auto"`
(the multiplexer picks the model) is fine when the names include "auto" (a run with a
predictor); `multiplexed_notes` says where a program is multiplexed (`sglc check`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator

from sglc.frontend import ast as A
from sglc.frontend.symbols import CheckedProgram, suggest
from sglc.lang import AUTO_MODEL
from sglc.source import Diagnostic


def check_model_names(program: CheckedProgram, names: Collection[str]) -> list[Diagnostic]:
    """An error for each constant model name in `program` that is not in `names` ("auto"
    among them when the run has a multiplexer)."""
    diagnostics = []
    for kw in _all_model_keywords(program):
        name = _constant(kw.value, program)
        if name is None or name in names:
            continue
        if name == AUTO_MODEL:
            diagnostics.append(Diagnostic(
                "error", "model=\"auto\" needs a multiplexer, and this run has none",
                kw.value.span, "pass a predictor: sglc run --mux PRED.json (trained with sglc "
                "mux train LOG --out PRED.json), or Runtime(mux=...)", "no-multiplexer"))
            continue
        models = [n for n in names if n != AUTO_MODEL]
        hint = suggest(name, models) or f"the models are {', '.join(models)}"
        diagnostics.append(Diagnostic(
            "error", f"no model '{name}' in this run", kw.value.span,
            f"{hint} (add one with --model {name}=PATH, or Runtime(models={{...}}))",
            "unknown-model"))
    return diagnostics


def multiplexed_notes(program: CheckedProgram) -> list[Diagnostic]:
    """A note at each constant `model="auto"`: the run's multiplexer picks that model."""
    return [Diagnostic("note", "multiplexed: model=\"auto\" sends each query to the cheapest "
                       "model a trained predictor expects to answer it well", kw.value.span,
                       "the run needs --mux PRED.json (sglc mux train LOG --out PRED.json)",
                       "multiplexed")
            for kw in _all_model_keywords(program)
            if _constant(kw.value, program) == AUTO_MODEL]


def _all_model_keywords(program: CheckedProgram) -> Iterator[A.Keyword]:
    infos = {id(m): m for m in [program.main, *program.modules.values()] if m is not None}
    for info in infos.values():
        yield from _model_keywords(info.module)


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
