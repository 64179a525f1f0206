"""Spec terms: the regular fragment of a `requires` / `ensures` / `assert` condition, as
plain nested tuples (so the IR's JSON form carries them unchanged).

    term    := ("true",) | ("false",)
             | ("and", term, ...) | ("or", term, ...) | ("not", term)
             | ("matches", subject, pattern)        matches(v, /pattern/): fullmatch
             | ("len", subject, op, n)              len(v) op n, op in == != < <= > >=
             | ("cmp", subject, op, value)          v op value (a str, int or float constant)
             | ("in", subject, (value, ...))        v in [constants]
             | ("startswith", subject, text) | ("endswith", subject, text)
             | ("opaque", reason)                   anything else: checked at run time only
    subject := (variable, field, ...)               `result.age` is ("result", "age")

Lowering builds a term beside each spec's instructions (`AssertSpec.pred`); the spec pass
(`sglc.ir.specs.check`) lowers each term to an automaton over the text of the value it
talks about.
"""

from __future__ import annotations

from typing import Any

Term = tuple[Any, ...]
Subject = tuple[str, ...]
TRUE: Term = ("true",)
FALSE: Term = ("false",)
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
"""`c op v` is `v FLIPPED[op] c`."""


def subjects(term: Term) -> set[Subject]:
    """The subjects a term talks about."""
    head = term[0]
    if head in ("and", "or", "not"):
        return set().union(*(subjects(t) for t in term[1:]))
    if head in ("true", "false", "opaque"):
        return set()
    return {tuple(term[1])}


def opaque_reasons(term: Term) -> list[str]:
    """Why parts of a term are not regular (empty when all of it is)."""
    head = term[0]
    if head == "opaque":
        return [term[1]]
    if head in ("and", "or", "not"):
        return [r for t in term[1:] for r in opaque_reasons(t)]
    return []


def subject_text(subject: Subject) -> str:
    return ".".join(subject)


__all__ = ["COMPARISONS", "FALSE", "FLIPPED", "TRUE", "Subject", "Term", "opaque_reasons",
           "subject_text", "subjects"]
