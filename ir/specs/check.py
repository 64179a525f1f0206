"""The spec pass: every `requires` / `ensures` / `assert` gets one outcome, reported as a
diagnostic, and the checks it proves leave the program.

    proven          note `spec-proven` (or `spec-pushed`): no run-time check is emitted
    unproven        warning `spec-unproven` with a counterexample; the run-time check stays
    contradictory   error `spec-contradictory` naming the spec and the value's source
    runtime only    note `spec-runtime` with the reason (not regular, a parameter, ...)

An `ensures` is checked before each `return`: one outcome per clause, the worst of its
returns'. A call's arguments are checked against the callee's `requires` the same way
(reported at the call); the callee's own entry check stays, since hosts may call it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sglc.ir.analysis import read_vars
from sglc.ir.instructions import (
    AssertSpec,
    Attr,
    BuildList,
    Call,
    CallBuiltin,
    CallMethod,
    Compare,
    Const,
    Copy,
    Instr,
    Operand,
    UnaryOp,
    defined_var,
)
from sglc.ir.program import Block, IRFunction, IRProgram
from sglc.ir.specs.judge import Verdict, judge_term
from sglc.ir.specs.pushdown import push_specs, spec_text
from sglc.ir.specs.sources import Definitions, Point
from sglc.source import Diagnostic, Span


@dataclass(frozen=True)
class SpecReport:
    """One clause's outcome (`kind` "requires"/"ensures"/"assert", or "call" for a call's
    arguments against a callee's requires)."""

    fn: str
    kind: str
    text: str
    span: Span
    verdict: Verdict
    pushed: bool = False


def check_specs(prog: IRProgram, pushdown: bool = True
                ) -> tuple[IRProgram, list[Diagnostic], list[SpecReport]]:
    """Push what can be pushed (unless `pushdown` is off), judge every spec, drop the proven
    checks; the diagnostics and the per-clause reports."""
    before = prog
    if pushdown:
        prog = push_specs(prog)
    reports: list[SpecReport] = []
    functions = {}
    for name in sorted(prog.functions):
        fn = prog.functions[name]
        fn, fn_reports = _check_fn(prog, fn, before.functions[name] is not fn)
        functions[name] = fn
        reports.extend(fn_reports)
        reports.extend(_check_calls(prog, prog.functions[name]))
    prog = replace(prog, functions=functions)
    return prog, [_diagnostic(r) for r in reports], reports


def _check_fn(prog: IRProgram, fn: IRFunction, changed: bool
              ) -> tuple[IRFunction, list[SpecReport]]:
    defs = Definitions(fn)
    by_clause: dict[tuple[str, Span], list[tuple[Point, AssertSpec, Verdict]]] = {}
    for label, index, instr in fn.instructions():
        if isinstance(instr, AssertSpec):
            verdict = judge_term(instr.pred, prog, defs, (label, index))
            by_clause.setdefault((instr.kind, instr.span), []).append(
                ((label, index), instr, verdict))
    pushed_texts = {t for _, _, ins in fn.instructions() for t in getattr(ins, "narrowed_by", ())}
    drop: set[Point] = set()
    reports = []
    for (kind, span), items in by_clause.items():
        verdict = items[0][2]
        for _, _, v in items[1:]:
            verdict = verdict.worse(v)
        for point, _, v in items:
            if v.outcome == "proven":
                drop.add(point)
        text = spec_text(items[0][1])
        pushed = changed and text in pushed_texts and verdict.outcome == "proven"
        reports.append(SpecReport(fn.name, kind, text, span, verdict, pushed))
    if drop:
        blocks = tuple(Block(b.label, tuple(ins for i, ins in enumerate(b.instrs)
                                            if (b.label, i) not in drop)) for b in fn.blocks)
        fn = _without_dead_temps(replace(fn, blocks=blocks))
    return fn, reports


def _is_pure(instr: Instr) -> bool:
    """The instructions a spec's condition lowers to that have no effect but their value."""
    if isinstance(instr, CallBuiltin):
        return instr.name in ("len", "matches")
    if isinstance(instr, CallMethod):
        return instr.method in ("startswith", "endswith")
    return isinstance(instr, (Compare, Attr, UnaryOp, Copy, BuildList))


def _without_dead_temps(fn: IRFunction) -> IRFunction:
    """Drop the compiler temporaries of dropped checks that nothing reads any more."""
    while True:
        read = read_vars(fn)
        dead = [(b.label, i) for b in fn.blocks for i, ins in enumerate(b.instrs)
                if _is_pure(ins) and (dest := defined_var(ins)) is not None
                and dest.startswith("%") and dest not in read]
        if not dead:
            return fn
        gone = set(dead)
        fn = replace(fn, blocks=tuple(
            Block(b.label, tuple(ins for i, ins in enumerate(b.instrs)
                                 if (b.label, i) not in gone)) for b in fn.blocks))


def _check_calls(prog: IRProgram, fn: IRFunction) -> list[SpecReport]:
    defs = Definitions(fn)
    reports = []
    for label, index, instr in fn.instructions():
        if not isinstance(instr, Call) or instr.fn not in prog.functions:
            continue
        callee = prog.functions[instr.fn]
        bind = _bind(callee, instr)
        for _, _, spec in callee.instructions():
            if not isinstance(spec, AssertSpec) or spec.kind != "requires" or spec.pred is None:
                continue
            verdict = judge_term(spec.pred, prog, defs, (label, index), bind)
            if verdict.outcome == "runtime":  # stated at the requires clause itself
                continue
            text = f"{spec_text(spec)} of {callee.name.rsplit('.', 1)[-1]}()"
            reports.append(SpecReport(fn.name, "call", text, instr.span, verdict))
    return reports


def _bind(callee: IRFunction, call: Call) -> dict[str, Operand]:
    """The callee's params as the caller's operands (arguments, then constant defaults)."""
    out: dict[str, Operand] = {}
    for param, arg in zip(callee.params, call.args, strict=False):
        out[param.name] = arg
    out.update(dict(call.kwargs))
    for param in callee.params:
        if param.name not in out and param.has_default and \
                isinstance(param.default, (str, int, float, bool, type(None))):
            out[param.name] = Const(param.default)
    return out


def _diagnostic(report: SpecReport) -> Diagnostic:
    return replace(_described(report), data=_data(report))


def _data(report: SpecReport) -> dict[str, object]:
    """The outcome for tools (`sglc check --format json`)."""
    v = report.verdict
    span = v.source_span
    return {"outcome": v.outcome, "spec": report.text, "kind": report.kind,
            "pushed": report.pushed, "reason": v.reason, "counterexample": v.counterexample,
            "value": v.value, "source": v.source,
            "source_location": None if span is None or not span.line else str(span),
            "constraint_regex": v.constraint_regex}


def _described(report: SpecReport) -> Diagnostic:
    v = report.verdict
    what = report.text
    where = "" if v.source_span is None or not v.source_span.line else \
        f" ({v.source_span})"
    if v.outcome == "proven":
        if report.pushed:
            return Diagnostic("note", f"spec proven: {what} (pushed into the constraint of "
                              f"{v.source}{where})", report.span, None, "spec-pushed")
        return Diagnostic("note", f"spec proven: {what}: {v.reason}", report.span, None,
                          "spec-proven")
    if v.outcome == "runtime":
        return Diagnostic("note", f"spec checked at run time only: {what}: {v.reason}",
                          report.span, None, "spec-runtime")
    if v.outcome == "contradictory":
        example = "" if v.counterexample is None else \
            f"; e.g. {v.value} = {v.counterexample}"
        return Diagnostic("error", f"spec contradicts the constraint: {what}: {v.reason}",
                          report.span, f"the value comes from {v.source}{where}{example}",
                          "spec-contradictory")
    hint = "the run-time check stays; narrow the constraint"
    if report.kind in ("ensures", "assert"):
        hint += " (spec pushdown does it for a free or typed gen)"
    return Diagnostic("warning", f"spec not proven: {what}: {v.reason}", report.span,
                      hint if v.source_span is None else f"{hint}; the value comes from "
                      f"{v.source}{where}", "spec-unproven")


__all__ = ["SpecReport", "check_specs"]
