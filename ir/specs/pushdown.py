"""Spec-to-constraint pushdown: a regular `ensures` / `assert` about a gen's value is
intersected into that gen's decoding constraint, so decoding can only produce values that
satisfy it (the check is then proven by construction and leaves the program).

    a str or int gen          regex := the automaton of (constraint & spec), back as a regex;
                              an int range on an `int` gen is the exact range regex
    a field of a schema gen   the field's JSON-schema keywords are narrowed (minimum/maximum,
                              minLength/maxLength, enum, pattern) and the schema recompiled

This changes what the model may sample (it is the point), so it is an optimization the user
can turn off (`sglc ... --no-spec-pushdown`, pass name `spec_pushdown`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from typing import Any

from sglc.constraints import (
    INT_REGEX,
    Constraint,
    ConstraintError,
    check_pattern,
    regex_for_int_range,
    to_regex,
    used_chars,
)
from sglc.constraints.charsets import overlaps
from sglc.ir.instructions import AssertSpec, Const, Gen, Var
from sglc.ir.program import Block, IRFunction, IRProgram
from sglc.ir.spec_terms import Term, opaque_reasons, subjects
from sglc.ir.specs.judge import _gen_language, by_subject, field_schema, judge_term
from sglc.ir.specs.languages import NotRegular, int_interval, term_language
from sglc.ir.specs.sources import Definitions, GenSource, Point

MAX_PUSHED_REGEX = 20000
"""The longest regex pushdown writes into a gen (a longer one is not pushed)."""
_JSON_UNSAFE = ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C))


def push_specs(prog: IRProgram) -> IRProgram:
    """Every pushable spec intersected into its gens' constraints."""
    before = set(prog.schemas)
    for name in sorted(prog.functions):
        k = 0
        while True:
            fn = prog.functions[name]
            specs = [(lbl, i, ins) for lbl, i, ins in fn.instructions()
                     if isinstance(ins, AssertSpec) and ins.kind in ("ensures", "assert")]
            if k >= len(specs):
                break
            label, index, spec = specs[k]
            k += 1
            prog = _push_one(prog, fn, (label, index), spec)
    used = {i.constraint.schema for f in prog.functions.values() for _, _, i in f.instructions()
            if isinstance(i, Gen)}
    return replace(prog, schemas={k: v for k, v in prog.schemas.items()
                                  if k in before or k in used})


def spec_text(spec: AssertSpec) -> str:
    if isinstance(spec.message, Const) and isinstance(spec.message.value, str):
        return spec.message.value
    return f"{spec.kind} at line {spec.span.line}"


def _push_one(prog: IRProgram, fn: IRFunction, point: Point, spec: AssertSpec) -> IRProgram:
    term = spec.pred
    if term is None or opaque_reasons(term):
        return prog
    defs = Definitions(fn)
    if judge_term(term, prog, defs, point).outcome != "unproven":
        return prog
    changes: dict[Point, Gen] = {}
    schemas = dict(prog.schemas)
    for part in by_subject(term):
        if not subjects(part):
            continue
        if len(subjects(part)) != 1:
            return prog
        (subject,) = subjects(part)
        sources = defs.sources(Var(subject[0]), point)
        if not sources or not all(isinstance(s, GenSource) for s in sources):
            return prog
        for source in sources:
            gen = changes.get(source.point, source.gen)
            narrowed = _narrow(gen, subject[1:], part, prog, schemas)
            if narrowed is None:
                return prog
            if narrowed is not gen:
                changes[source.point] = replace(
                    narrowed, narrowed_by=(*gen.narrowed_by, spec_text(spec)))
    if not changes:
        return prog
    blocks = tuple(Block(b.label, tuple(changes.get((b.label, i), ins)
                                        for i, ins in enumerate(b.instrs)))
                   for b in fn.blocks)
    return replace(prog.replace_function(replace(fn, blocks=blocks)), schemas=schemas)


def _narrow(gen: Gen, path: tuple[str, ...], part: Term, prog: IRProgram,
            schemas: dict[str, Any]) -> Gen | None:
    """The gen with `part` intersected into its constraint; the same gen when it already
    implies it; None when it cannot be pushed."""
    view = replace(prog, schemas=schemas)
    try:
        lang = _gen_language(gen, path, view)
        spec = term_language(part, lang.domain)
    except (NotRegular, ConstraintError):
        return None
    if lang.texts.issubset(spec):
        return gen
    if path:
        return _narrow_schema(gen, path, part, schemas)
    interval = int_interval(part) if gen.regex == INT_REGEX else None
    try:  # a float spec reads exponent-free texts: the narrowed gen writes those only
        regex = regex_for_int_range(*interval) if interval is not None \
            else (lang.texts & spec).to_regex()
        if len(regex) > MAX_PUSHED_REGEX:
            return None
        check_pattern(regex)
    except ConstraintError:
        return None
    return replace(gen, regex=regex)


def _narrow_schema(gen: Gen, path: tuple[str, ...], part: Term,
                   schemas: dict[str, Any]) -> Gen | None:
    name = gen.constraint.schema or ""
    root = copy.deepcopy(schemas[name])
    target = field_schema(root, path)
    if target is None or "$ref" in _raw_field(root, path):
        return None
    keywords = _keywords(part, target)
    if keywords is None:
        return None
    target.update(keywords)
    base = re.sub(r"\+spec\d*$", "", name)
    new_name, k = f"{base}+spec", 1
    while new_name in schemas and schemas[new_name] != root:
        k += 1
        new_name = f"{base}+spec{k}"
    constraint = replace(gen.constraint, schema=new_name)
    try:
        regex = to_regex(Constraint("schema", schema=json.dumps(root)))
    except ConstraintError:
        return None
    schemas[new_name] = root
    return replace(gen, constraint=constraint, regex=regex)


def _raw_field(root: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = root
    for name in path:
        node = node.get("properties", {}).get(name, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _keywords(part: Term, target: dict[str, Any]) -> dict[str, Any] | None:
    """JSON-schema keywords saying `part` of a field (narrowing what is there)."""
    kind = target.get("type")
    if kind == "integer":
        interval = int_interval(part)
        if interval is not None:
            lo, hi = interval
            out: dict[str, Any] = {}
            if lo is not None:
                out["minimum"] = max(lo, target.get("minimum", lo))
            if hi is not None:
                out["maximum"] = min(hi, target.get("maximum", hi))
            return out
        if part[0] == "in" and all(isinstance(v, int) for v in part[2]):
            return {"enum": [v for v in part[2] if isinstance(v, int)]}
        return None
    if kind != "string":
        return None
    head = part[0]
    if head == "len" and part[2] in ("<=", "<", "==", ">=", ">"):
        op, n = part[2], part[3]
        low = {"==": n, ">=": n, ">": n + 1}.get(op)
        high = {"==": n, "<=": n, "<": n - 1}.get(op)
        out = {}
        if low is not None:
            out["minLength"] = max(low, target.get("minLength", low))
        if high is not None:
            out["maxLength"] = min(high, target.get("maxLength", high))
        return out
    if head == "in" and all(isinstance(v, str) for v in part[2]):
        return {"enum": list(part[2])}
    if head == "cmp" and part[2] == "==" and isinstance(part[3], str):
        return {"enum": [part[3]]}
    if head == "matches" and "pattern" not in target:
        try:
            if overlaps(used_chars(part[2]), _JSON_UNSAFE):
                return None
        except ConstraintError:
            return None
        return {"pattern": part[2]}
    return None


__all__ = ["MAX_PUSHED_REGEX", "push_specs", "spec_text"]
