"""One spec against the values it talks about: proven, unproven (with a counterexample),
contradictory, or checked at run time only (with the reason).

For each source of the subject's value (`sources.py`) the source's language L (the texts a
gen's constraint admits, a select's options, a constant) is compared with the spec's
language S over the same writing (`languages.py`):

    L <= S                 proven (for a gen: also when max_tokens can fit its longest
                           shortest completion; else unproven, "may be cut by max_tokens")
    L & S empty            contradictory: no value the source can make satisfies the spec
    otherwise              unproven; the counterexample is a shortest text of L - S

A term is split at its top-level `and`; each part must talk about one value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sglc.constraints import ConstraintError, escape_literal, regex_for_schema
from sglc.constraints.automata import Dfa
from sglc.ir.instructions import Const, Gen, Var
from sglc.ir.printer import format_constraint
from sglc.ir.program import IRFunction, IRProgram
from sglc.ir.spec_terms import Subject, Term, opaque_reasons, subject_text, subjects
from sglc.ir.specs.decimals import DECIMAL_TEXTS
from sglc.ir.specs.languages import FLOAT_REASON, Domain, NotRegular, term_language
from sglc.ir.specs.sources import (
    ChoiceSource,
    ConstSource,
    Definitions,
    GenSource,
    OtherSource,
    ParamSource,
    Point,
    Source,
)
from sglc.lang import GEN_PARAMS
from sglc.source import Span

Outcome = Literal["proven", "unproven", "contradictory", "runtime"]
_RANK = {"proven": 0, "runtime": 1, "unproven": 2, "contradictory": 3}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one spec (or one part of it) against one or more sources.

    `counterexample`: a text the source admits and the spec rejects (unproven); `value` is
    what it stands for (`result.age` for a schema field); `source` describes the source and
    `source_span` locates it; `constraint_regex` is the language the counterexample is
    drawn from (the gen's regex, or the schema field's)."""

    outcome: Outcome
    reason: str
    counterexample: str | None = None
    value: str | None = None
    source: str | None = None
    source_span: Span | None = None
    constraint_regex: str | None = None
    sources: tuple[Any, ...] = field(default=(), compare=False)

    def worse(self, other: Verdict) -> Verdict:
        return other if _RANK[other.outcome] > _RANK[self.outcome] else self


@dataclass(frozen=True)
class Language:
    """A source's texts, how they are written, and what to call the source."""

    texts: Dfa
    domain: Domain
    regex: str | None
    what: str
    span: Span | None


def judge_term(term: Term | None, prog: IRProgram, defs: Definitions, point: Point,
               bind: dict[str, Any] | None = None) -> Verdict:
    """The verdict of a spec term at `point` of `defs.fn`. `bind` maps a subject's variable
    to the operand standing for it (a callee's params to a call's arguments)."""
    if term is None:
        return Verdict("runtime", "the condition has no spec term")
    reasons = opaque_reasons(term)
    if reasons:
        return Verdict("runtime", "; ".join(dict.fromkeys(reasons)))
    verdict: Verdict | None = None
    for subject_term in by_subject(term):
        part = _judge_part(subject_term, prog, defs, point, bind or {})
        verdict = part if verdict is None else verdict.worse(part)
        if verdict.outcome == "contradictory":
            break
    return verdict or Verdict("proven", "always true")


def by_subject(term: Term) -> list[Term]:
    """A term's top-level `and` regrouped by subject (a part about several stays whole)."""
    parts = term[1:] if term[0] == "and" else (term,)
    groups: dict[Any, list[Term]] = {}
    for part in parts:
        subs = subjects(part)
        key = next(iter(subs)) if len(subs) == 1 else (id(part),)
        groups.setdefault(key, []).append(part)
    return [g[0] if len(g) == 1 else ("and", *g) for g in groups.values()]


def _judge_part(part: Term, prog: IRProgram, defs: Definitions, point: Point,
                bind: dict[str, Any]) -> Verdict:
    if part[0] == "true":
        return Verdict("proven", "always true")
    if part[0] == "false":
        return Verdict("contradictory", "always false")
    subs = subjects(part)
    if len(subs) != 1:
        return Verdict("runtime", "it relates several values")
    (subject,) = subs
    operand = bind.get(subject[0], Var(subject[0]))
    sources = defs.sources(operand, point)
    if not sources:
        return Verdict("runtime", f"no definition of '{subject[0]}' reaches it")
    verdict: Verdict | None = None
    for source in sources:
        try:
            lang = source_language(source, subject, prog)
            spec = term_language(part, lang.domain)
        except (NotRegular, ConstraintError) as exc:
            one = Verdict("runtime", str(exc))
        else:
            one = _compare(lang, spec, subject, source, defs.fn)
        verdict = one if verdict is None else verdict.worse(one)
    assert verdict is not None
    return verdict


def _compare(lang: Language, spec: Dfa, subject: Subject, source: Source,
             fn: IRFunction) -> Verdict:
    where = dict(source=lang.what, source_span=lang.span, constraint_regex=lang.regex,
                 value=subject_text(subject), sources=(source,))
    if lang.domain == "float":  # specs read exponent-free texts only (decimals.py)
        plain = Dfa.of(DECIMAL_TEXTS)
        if not (lang.texts - plain).is_empty():
            example = ((lang.texts & plain) - spec).example()
            if example is None:
                return Verdict("runtime", FLOAT_REASON, **where)
            return Verdict("unproven", f"{lang.what} may produce {example}, which it rejects",
                           example, **where)
    missed = lang.texts - spec
    example = missed.example()
    if example is None:
        cut = _cut_by_max_tokens(source, fn)
        if cut is not None:
            return Verdict("unproven", cut, **where)
        return Verdict("proven", f"every value of {lang.what} satisfies it", **where)
    if lang.texts.isdisjoint(spec):
        return Verdict("contradictory", f"no value of {lang.what} satisfies it", example, **where)
    return Verdict("unproven", f"{lang.what} may produce {_show(example, lang.domain)}, which "
                   "it rejects", example, **where)


def _show(text: str, domain: Domain) -> str:
    return text if domain == "int" else json.dumps(text, ensure_ascii=False)


def _cut_by_max_tokens(source: Source, fn: IRFunction) -> str | None:
    if not isinstance(source, GenSource) or source.gen.regex is None:
        return None
    limit = _max_tokens(source.gen, fn)
    if limit is None:
        return None
    try:
        need = Dfa.of(source.gen.regex).completion_bytes()
    except ConstraintError as exc:  # no proof that it finishes: say so
        return f"may be cut by max_tokens (not checked: {exc})"
    if need is not None and need + 1 > limit:  # +1: the end-of-sequence token
        return (f"may be cut by max_tokens: max_tokens={limit} cannot fit the longest "
                f"shortest completion of gen {source.gen.dest} ({need} bytes + end)")
    return None


def _max_tokens(gen: Gen, fn: IRFunction) -> int | None:
    given = dict(gen.params).get("max_tokens")
    if given is not None:
        return given.value if isinstance(given, Const) and isinstance(given.value, int) else None
    default = dict(fn.defaults).get("max_tokens", GEN_PARAMS["max_tokens"].default)
    return default if isinstance(default, int) else None


# ---- the language of a source ------------------------------------------------------------


def source_language(source: Source, subject: Subject, prog: IRProgram) -> Language:
    """The texts of a source's value (or of the field `subject[1:]` of it)."""
    path = subject[1:]
    if isinstance(source, GenSource):
        return _gen_language(source.gen, path, prog)
    if path:
        raise NotRegular(f"'{subject_text(subject)}': only schema values have fields")
    if isinstance(source, ChoiceSource):
        texts = Dfa.of_none()
        for option in source.options:
            texts = texts | Dfa.of(_escape(option))
        return Language(texts, "str", None, f"select {source.select.dest}",
                        source.select.span)
    if isinstance(source, ConstSource):
        value = source.value
        if isinstance(value, str):
            return Language(Dfa.of(_escape(value)), "str", None, f"the constant {value!r}", None)
        if isinstance(value, int) and not isinstance(value, bool):
            return Language(Dfa.of(_escape(str(value))), "int", None, f"the constant {value}",
                            None)
        raise NotRegular(f"the constant {value!r} has no regular reading")
    if isinstance(source, ParamSource):
        raise NotRegular(f"'{source.name}' is a parameter: each call's argument is checked "
                         "where the call is made")
    if isinstance(source, OtherSource):
        raise NotRegular(f"'{subject[0]}' is {source.what}")
    raise NotRegular("unknown source")  # pragma: no cover


def _escape(text: str) -> str:
    return escape_literal(text) if text else "(?:)"


def _gen_language(gen: Gen, path: tuple[str, ...], prog: IRProgram) -> Language:
    what = f"gen {gen.dest}: {format_constraint(gen.constraint)}"
    if not path:
        domain: Domain = {"str": "str", "int": "int", "float": "float"}.get(gen.value_type,
                                                                             "other")
        if gen.constraint.kind == "schema" and gen.constraint.schema in prog.schemas:
            domain = schema_domain(prog.schemas[gen.constraint.schema])  # int[min=0], ...
        if domain == "other":  # said before building a (maybe big) automaton
            raise NotRegular(f"gen {gen.dest} makes a {gen.value_type} value: its text has no "
                             "regular reading")
        texts = _free_texts(gen) if gen.regex is None else Dfa.of(gen.regex)
        return Language(texts, domain, gen.regex, what, gen.span)
    if gen.constraint.kind != "schema" or gen.constraint.schema not in prog.schemas:
        raise NotRegular(f"gen {gen.dest} is not a schema value with fields")
    root = prog.schemas[gen.constraint.schema]
    sub = field_schema(root, path)
    if sub is None:
        raise NotRegular(f"no schema field {'.'.join(path)} to read")
    regex = regex_for_schema(_with_defs(sub, root))
    return Language(Dfa.of(regex), schema_domain(sub), regex, f"{what} field {'.'.join(path)}",
                    gen.span)


def _free_texts(gen: Gen) -> Dfa:
    """What a free gen may produce: any text, but none holding one of its constant stop
    strings (the engine stops there; the stop string is not part of the value)."""
    texts = Dfa.of_any()
    stop = dict(gen.params).get("stop")
    stops = [] if not isinstance(stop, Const) else \
        [stop.value] if isinstance(stop.value, str) else []
    for s in stops:
        if s:
            texts = texts - Dfa.of(rf"[\s\S]*{escape_literal(s)}[\s\S]*")
    return texts


def field_schema(root: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The schema of a field path (through local `$ref`s), None when there is none."""
    node: Any = root
    for name in path:
        node = _deref(node, root)
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or name not in props:
            return None
        if name not in node.get("required", ()):
            return None  # an optional field may be missing: no regular reading
        node = props[name]
    node = _deref(node, root)
    return node if isinstance(node, dict) else None


def _deref(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return None
        target: Any = root
        for token in ref[2:].split("/"):
            target = target.get(token.replace("~1", "/").replace("~0", "~")) \
                if isinstance(target, dict) else None
        node = target
    return node


def _with_defs(sub: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    defs = {k: root[k] for k in ("$defs", "definitions") if k in root}
    return {**defs, **sub} if defs else sub


def schema_domain(sub: dict[str, Any]) -> Domain:
    kind = sub.get("type")
    if kind == "integer":
        return "int"
    if kind == "string" or ("enum" in sub and all(isinstance(v, str) for v in sub["enum"])):
        return "json_str"
    if kind == "number":
        return "float"
    return "other"


__all__ = ["Language", "Outcome", "Verdict", "field_schema", "judge_term", "schema_domain",
           "source_language"]
