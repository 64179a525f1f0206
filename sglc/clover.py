"""`sglc check --llm`: Clover's closed loop between docstring and specs, with a model.

For each fn with a docstring and `ensures` clauses whose result is a str or an int:

1. doc -> spec: the model writes an `ensures` clause from the docstring, decoding under the
   spec grammar (a regex of the regular fragment: `len(result) <= n`, `matches(result,
   /R/)`, `startswith`/`endswith`, `in [...]`, int comparisons, joined by `and`); the clause
   is parsed like any SGL condition and compared with the written ones *exactly*, by
   automata (`sglc.ir.specs.agreement`): equivalent, or a value one accepts and the other
   rejects.
2. spec -> doc: the model writes a docstring from the specs, then judges with a constrained
   `select` among YES / NO whether it says the same as the written one.

Everything it reports is advisory (notes and warnings, never errors): only the automaton
and set checks of the spec pass may mark a spec proven. The loop is itself an SGL program
(`CLOVER_SOURCE`), run on any model the runtime serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sglc.frontend import ast as A
from sglc.frontend import parse_source
from sglc.frontend.consts import constant_value
from sglc.frontend.symbols import CheckedProgram, FnSig
from sglc.ir.lower_spec import spec_term
from sglc.ir.spec_terms import Term, opaque_reasons
from sglc.ir.specs.agreement import compare_terms
from sglc.ir.specs.languages import Domain
from sglc.lang.types import INT, STR
from sglc.source import Diagnostic

_STR_ATOM = (r'(len\(result\) (<=|<|>=|>|==) [1-9][0-9]{0,2}'
             r'|result\.(startswith|endswith)\("[A-Za-z ]{1,12}"\)'
             r'|matches\(result, /[a-z0-9]{1,8}[+*]?/\)'
             r'|result in \["[A-Za-z]{1,12}"(, "[A-Za-z]{1,12}"){0,3}\])')
_INT_ATOM = r'(result (<=|<|>=|>|==|!=) -?[0-9]{1,4})'
SPEC_GRAMMARS: dict[Domain, str] = {
    "str": f"{_STR_ATOM}( and {_STR_ATOM}){{0,2}}",
    "int": f"{_INT_ATOM}( and {_INT_ATOM}){{0,2}}",
}
"""The spec grammar the model writes under, per result type (the text after `ensures `)."""

CLOVER_SOURCE = '''
fn doc2spec_str(name: str, doc: str) -> str:
    system "You write SGL specs: ensures clauses about result."
    user "Function {name}: {doc}\\nWrite its ensures clause."
    assistant: "ensures " gen spec: /STR_GRAMMAR/(max_tokens=64)
    return spec

fn doc2spec_int(name: str, doc: str) -> str:
    system "You write SGL specs: ensures clauses about result."
    user "Function {name}: {doc}\\nWrite its ensures clause."
    assistant: "ensures " gen spec: /INT_GRAMMAR/(max_tokens=48)
    return spec

fn spec2doc(name: str, specs: str) -> str:
    user "Function {name} satisfies:\\n{specs}\\nWrite its docstring in one line."
    assistant: gen doc(stop="\\n", max_tokens=40)
    return doc

fn same(a: str, b: str) -> str:
    user "Docstring A: {a}\\nDocstring B: {b}\\nDo A and B describe the same function? Answer YES or NO."
    assistant: select verdict in ["YES", "NO"]
    return verdict
'''.replace("STR_GRAMMAR", SPEC_GRAMMARS["str"].replace("/", "\\/")) \
   .replace("INT_GRAMMAR", SPEC_GRAMMARS["int"])


@dataclass(frozen=True)
class CloverTarget:
    """A fn the loop looks at: its docstring, its written ensures as one term, its domain."""

    sig: FnSig
    doc: str
    written: Term
    written_text: str
    domain: Domain


def targets(checked: CheckedProgram) -> tuple[list[CloverTarget], list[Diagnostic]]:
    """The fns of the main module with a docstring and ensures; notes for those skipped."""
    out, notes = [], []
    main = checked.main
    if main is None:
        return [], []
    for sig in main.fns.values():
        node = sig.node
        if node.is_extern or not node.doc or not node.ensures:
            continue
        domain: Domain | None = "str" if sig.returns == STR else "int" if sig.returns == INT \
            else None
        term: Term = ("and", *(spec_term(c.cond, constant_value) for c in node.ensures))
        if domain is None or opaque_reasons(term):
            why = "its result is not a str or an int" if domain is None else \
                "its specs are not all regular"
            notes.append(Diagnostic("note", f"--llm: {node.name} not compared ({why})",
                                    node.name_span, None, "clover-skipped"))
            continue
        text = "\n".join(f"ensures {_source(checked, c.cond.span)}" for c in node.ensures)
        out.append(CloverTarget(sig, node.doc, term, text, domain))
    return out, notes


def _source(checked: CheckedProgram, span: A.Span) -> str:
    lines = checked.sources.get(span.file, "").splitlines()
    if span.line == span.end_line and 0 < span.line <= len(lines):
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    return "..."


def parse_spec(text: str) -> Term | None:
    """An `ensures` condition the model wrote, as a spec term (None if it does not parse)."""
    module, diags = parse_source(f"fn _clover() -> str:\n    ensures {text}\n    return \"\"\n",
                                 "<model spec>")
    if module is None or any(d.is_error for d in diags) or not module.fns:
        return None
    (clause,) = module.fns[0].ensures or (None,)
    return None if clause is None else spec_term(clause.cond, constant_value)


def run_clover(checked: CheckedProgram, runtime: Any) -> list[Diagnostic]:
    """The advisory diagnostics of the loop, on the model `runtime` serves."""
    from sglc.program import compile as compile_sgl

    loop = compile_sgl(CLOVER_SOURCE, "clover.sgl")
    found, out = targets(checked)
    for t in found:
        name, span = t.sig.node.name, t.sig.node.name_span
        fn = loop.doc2spec_str if t.domain == "str" else loop.doc2spec_int
        generated = fn(name, t.doc, runtime=runtime)
        out.append(_doc2spec(t, generated, span))
        doc = loop.spec2doc(name, t.written_text, runtime=runtime)
        verdict = loop.same(t.doc, doc, runtime=runtime)
        if verdict == "YES":
            out.append(Diagnostic("note", f"--llm: a docstring written from {name}'s specs "
                                  f"({doc.strip()!r}) was judged the same as its own", span,
                                  None, "clover-spec2doc"))
        else:
            out.append(Diagnostic("warning", f"--llm: a docstring written from {name}'s specs "
                                  f"({doc.strip()!r}) was judged different from its own",
                                  span, "advisory (a model's judgement): check that the "
                                  "docstring says what the specs say", "clover-spec2doc"))
    return out


def _doc2spec(t: CloverTarget, generated: str, span: A.Span) -> Diagnostic:
    name = t.sig.node.name
    term = parse_spec(generated)
    said = f"from the docstring the model wrote `ensures {generated}`"
    if term is None:
        return Diagnostic("warning", f"--llm: {name}: {said}, which does not parse", span,
                          None, "clover-doc2spec")
    agreement = compare_terms(t.written, term, t.domain)
    if not agreement.comparable:
        return Diagnostic("note", f"--llm: {name}: {said}; not comparable: {agreement.reason}",
                          span, None, "clover-doc2spec")
    if agreement.equivalent:
        return Diagnostic("note", f"--llm: {name}: {said}, equivalent to the written specs",
                          span, None, "clover-doc2spec")
    parts = []
    if agreement.only_written is not None:
        parts.append(f"{agreement.only_written!r} satisfies the written specs but not it")
    if agreement.only_other is not None:
        parts.append(f"{agreement.only_other!r} satisfies it but not the written specs")
    return Diagnostic("warning", f"--llm: {name}: {said}; {'; '.join(parts)}", span,
                      "advisory: the docstring and the specs may disagree", "clover-doc2spec")


__all__ = ["CLOVER_SOURCE", "SPEC_GRAMMARS", "CloverTarget", "parse_spec", "run_clover",
           "targets"]
