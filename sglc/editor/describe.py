"""What the editor shows about a symbol: its one-line signature (for hovers, completion
details and signature help) and the Markdown of a hover."""

from __future__ import annotations

from dataclasses import dataclass

from sglc.editor.symbols import Occurrence, Symbol
from sglc.frontend import ast as A
from sglc.frontend.symbols import FnT
from sglc.lang import AUTO_MODEL, Builtin, GenParam
from sglc.lang.types import SchemaT, Type

MAX_REGEX = 120


@dataclass(frozen=True)
class Signature:
    """`label` is the whole signature; `params` each parameter's (start, end) in it."""

    label: str
    params: tuple[tuple[int, int], ...]
    doc: str | None


def source_text(sources: dict[str, str], span: A.Span) -> str:
    """The text a span covers."""
    lines = sources.get(span.file, "").splitlines()
    if not 1 <= span.line <= len(lines):
        return ""
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    parts = [lines[span.line - 1][span.col - 1:], *lines[span.line:span.end_line - 1]]
    if span.end_line <= len(lines):
        parts.append(lines[span.end_line - 1][:span.end_col - 1])
    return "\n".join(parts)


def fn_signature(sym: Symbol, sources: dict[str, str]) -> Signature:
    fn = sym.node
    assert isinstance(fn, A.FnDef)
    sig = sym.type.sig if isinstance(sym.type, FnT) else None
    label = ("extern fn " if fn.is_extern else "fn ") + fn.name + "("
    spans = []
    for i, p in enumerate(fn.params):
        if i:
            label += ", "
        t = sig.params[i].type if sig and i < len(sig.params) else None
        text = p.name + (f": {t}" if t is not None else
                         f": {source_text(sources, p.type.span)}" if p.type else "")
        if p.default is not None:
            text += " = " + source_text(sources, p.default.span)
        spans.append((len(label), len(label) + len(text)))
        label += text
    label += ")"
    if sig is not None and str(sig.returns) != "None":
        label += f" -> {sig.returns}"
    elif sig is None and fn.returns is not None:
        label += f" -> {source_text(sources, fn.returns.span)}"
    return Signature(label, tuple(spans), fn.doc)


def builtin_signature(b: Builtin) -> Signature:
    head, sep, rest = b.doc.partition("): ")
    label = head + ")" if sep else b.doc
    spans = []
    for p in (*b.params, *b.keywords):
        at = label.find(p.name, label.find("("))
        if at >= 0:
            spans.append((at, at + len(p.name)))
    return Signature(label, tuple(spans), rest or None)


def gen_param_line(p: GenParam) -> str:
    default = f" (default {p.default})" if p.default is not None else ""
    return f"{p.name}: {p.type_text}{default}"


def hover_markdown(occ: Occurrence, sources: dict[str, str],
                   constraint: tuple[str | None, str | None] | None = None) -> str | None:
    """The hover of an occurrence; `constraint` is a gen's (canonical regex, schema name)."""
    sym = occ.symbol
    kind = sym.kind
    if kind in ("fn", "extern"):
        sig = fn_signature(sym, sources)
        return _md(sig.label, sig.doc)
    if kind == "builtin" and isinstance(sym.node, Builtin):
        sig = builtin_signature(sym.node)
        return _md(sig.label, sig.doc)
    if kind == "gen-param" and isinstance(sym.node, GenParam):
        return _md(f"(gen parameter) {gen_param_line(sym.node)}", sym.node.doc)
    if kind == "schema":
        return _md(schema_text(sym), sym.node.doc if isinstance(sym.node, A.SchemaDef) else None)
    if kind == "field":
        owner = sym.container.name if sym.container else "?"
        return _md(f"(field of {owner}) {sym.name}: {sym.type or '?'}", None)
    if kind == "import":
        mod = sym.module
        if mod is None:
            return _md(f"import {sym.name}", "(the module could not be loaded)")
        return _md(f"module {sym.name}", "\n\n".join(
            x for x in (mod.module.doc, f"`{mod.file}`") if x))
    t: Type | None = occ.type or sym.type
    shown = kind if kind != "parallel" else "let"
    text = f"({'parameter' if kind == 'param' else shown}) {sym.name}"
    if kind == "fork":
        names = ", ".join(f"{c.name}" for c in sym.children)
        return _md(f"fork {sym.name}", f"`{sym.name}.x` is the list of every branch's `x`"
                   + (f": {names}" if names else ""))
    if t is not None:
        text += f": {t}"
    doc = None
    if kind == "gen":
        doc = "\n\n".join(x for x in (gen_constraint_text(sym, constraint),
                                       _multiplexed_text(sym)) if x) or None
    return _md(text, doc)


def _multiplexed_text(sym: Symbol) -> str | None:
    """For a gen or select with `model="auto"`: that the run's multiplexer picks its model."""
    params = getattr(sym.node, "params", ())
    if any(kw.name == "model" and isinstance(kw.value, A.Str) and kw.value.value == AUTO_MODEL
           for kw in params):
        return ("**multiplexed** (`model=\"auto\"`): each query goes to the cheapest model "
                "a trained predictor expects to answer it well (sglc run --mux PRED.json)")
    return None


def gen_constraint_text(sym: Symbol, constraint: tuple[str | None, str | None] | None
                        ) -> str | None:
    """A gen's constraint: its schema and canonical regex, shortened."""
    g = sym.node
    parts = []
    if isinstance(g, A.Gen) and isinstance(g.constraint, A.Regex):
        parts.append(f"constrained by the regex `/{g.constraint.pattern}/`")
    if isinstance(g, A.Gen) and isinstance(g.constraint, A.GrammarRef):
        return "constrained by a context-free grammar (Lark syntax, decoded by llguidance)"
    if constraint is not None:
        regex, schema = constraint
        if schema:
            parts.append(f"constrained by the schema **{schema}**")
        if regex is not None and not (isinstance(g, A.Gen) and isinstance(g.constraint, A.Regex)):
            shown = regex if len(regex) <= MAX_REGEX else regex[:MAX_REGEX - 3] + "..."
            parts.append(f"canonical regex: `{shown}`")
        if regex is None and not schema:
            parts.append("unconstrained text")
    return "\n\n".join(parts) or None


def schema_text(sym: Symbol) -> str:
    lines = [f"schema {sym.name}:"]
    lines += [f"    {c.name}: {c.type or '?'}" for c in sym.children]
    return "\n".join(lines)


def type_detail(t: Type | None) -> str:
    return f"schema {t.info.name}" if isinstance(t, SchemaT) else str(t) if t else ""


def _md(code: str, doc: str | None) -> str:
    text = f"```sgl\n{code}\n```"
    return text + (f"\n\n{doc}" if doc else "")
