"""Completion and signature help. While a user types, the text rarely parses, so both read
the text before the cursor for the context (after `name.`, inside `gen x(...)`, in a type,
inside a call) and a checked version of the document (the latest one that parsed) for
what the names mean."""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from sglc.editor.analysis import Analysis
from sglc.editor.describe import (
    Signature,
    builtin_signature,
    fn_signature,
    gen_param_line,
    type_detail,
)
from sglc.editor.symbols import BUILTIN_SYMBOLS, ModuleIndex, Symbol, schema_of
from sglc.frontend.build import KEYWORDS
from sglc.frontend.symbols import ForkT
from sglc.frontend.typeexpr import TYPE_NAMES
from sglc.lang import GEN_PARAMS, METHODS, receiver_kind
from sglc.lang.types import SchemaT, Type

_MEMBER = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")
_GEN_ARGS = re.compile(r"\bgen\s+\w+\s*(?::[^()]*)?\(([^()]*)$")
_TYPE_POS = re.compile(r"(?:\bgen\s+\w+\s*:|->|\blet\s+\w+\s*:|[(,]\s*\w+\s*:|\|"
                       r"|^\s*(?!(?:system|user|assistant|if|elif|else|for|while|fork)\b)\w+\s*:)"
                       r"\s*[\w.]*$")
MAX_CALL_LINES = 20
_KINDS = {
    "fn": lsp.CompletionItemKind.Function, "extern": lsp.CompletionItemKind.Function,
    "builtin": lsp.CompletionItemKind.Function, "schema": lsp.CompletionItemKind.Struct,
    "field": lsp.CompletionItemKind.Field, "import": lsp.CompletionItemKind.Module,
    "param": lsp.CompletionItemKind.Variable, "fork": lsp.CompletionItemKind.Variable,
}


def complete(analysis: Analysis, before: str, line: int) -> list[lsp.CompletionItem]:
    """Completions at a cursor: `before` is its line's text up to it, `line` 1-based."""
    m = analysis.index.module(analysis.filename)
    if m is None or _in_string_text(before):
        return []
    member = _MEMBER.search(before)
    if member:
        return _members(analysis, m, member.group(1).split("."), line)
    gen_args = _GEN_ARGS.search(before)
    if gen_args:
        given = set(re.findall(r"(\w+)\s*=", gen_args.group(1)))
        return [lsp.CompletionItem(p.name, kind=lsp.CompletionItemKind.Property,
                                   detail=gen_param_line(p), documentation=p.doc,
                                   insert_text=f"{p.name}=")
                for p in GEN_PARAMS.values() if p.name not in given]
    if _TYPE_POS.search(before):
        items = [lsp.CompletionItem(t, kind=lsp.CompletionItemKind.TypeParameter)
                 for t in TYPE_NAMES]
        return items + [_item(s) for s in (*m.schemas.values(), *m.imports.values())]
    items = [_item(s) for s in m.locals_at(line)]
    items += [_item(s) for s in (*m.fns.values(), *m.imports.values(),
                                 *BUILTIN_SYMBOLS.values())]
    seen = {i.label for i in items}
    items += [lsp.CompletionItem(k, kind=lsp.CompletionItemKind.Keyword)
              for k in sorted(KEYWORDS) if k not in seen]
    return items


def _members(analysis: Analysis, m: ModuleIndex, path: list[str], line: int
             ) -> list[lsp.CompletionItem]:
    base: Symbol | None = next((s for s in m.locals_at(line) if s.name == path[0]), None) \
        or m.imports.get(path[0]) or m.fns.get(path[0])
    t: Type | None = base.type if base else None
    for name in path[1:]:
        children = _children(analysis, base, t)
        base = next((c for c in children if c.name == name), None)
        t = base.type if base else None
    if base is not None and base.kind == "import":
        other = analysis.index.module(base.module.file) if base.module else None
        return [_item(s) for s in other.symbols] if other else []
    children = _children(analysis, base, t)
    if children:
        return [_item(c) for c in children]
    owner = receiver_kind(t) if t is not None else None
    return [lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Method, detail=meth.doc,
                               insert_text=f"{name}()" if not meth.params else name)
            for name, meth in METHODS.get(owner or "", {}).items()]


def _children(analysis: Analysis, base: Symbol | None, t: Type | None) -> list[Symbol]:
    if base is not None and base.kind == "fork":
        return base.children
    if isinstance(t, ForkT):
        return []
    if isinstance(t, SchemaT):
        schema = schema_of(t.info, analysis.index)
        return schema.children if schema else []
    return []


def _item(sym: Symbol) -> lsp.CompletionItem:
    detail = type_detail(sym.type) if sym.kind not in ("fn", "extern", "builtin") else ""
    if sym.kind == "builtin":
        detail = builtin_signature(sym.node).label  # type: ignore[arg-type]
    return lsp.CompletionItem(sym.name, kind=_KINDS.get(sym.kind, lsp.CompletionItemKind.Variable),
                              detail=detail or sym.kind)


def _in_string_text(before: str) -> bool:
    """Is the cursor inside a one-line string's text (not in a `{...}` hole)?"""
    quote, depth = "", 0
    i = 0
    while i < len(before):
        ch = before[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
            elif ch == "{" and not before.startswith("{{", i):
                depth += 1
            elif ch == "}" and depth:
                depth -= 1
        elif ch in "\"'":
            quote, depth = ch, 0
        elif ch == "#":
            return True
        i += 1
    return bool(quote) and depth == 0


# ---- signature help ---------------------------------------------------------------------


def signature_help(analysis: Analysis, text: str, offset: int) -> lsp.SignatureHelp | None:
    """The signature of the call whose parentheses hold `offset` in `text`."""
    call = _open_call(text, offset)
    if call is None:
        return None
    callee, args = call
    sig = _callee_signature(analysis, callee, text)
    if sig is None:
        return None
    parts = _split_args(args)
    active = len(parts) - 1
    keyword = re.match(r"\s*(\w+)\s*=(?!=)", parts[-1])
    names = [sig.label[a:b].split(":")[0].split("=")[0].strip() for a, b in sig.params]
    if keyword and keyword.group(1) in names:
        active = names.index(keyword.group(1))
    info = lsp.SignatureInformation(
        sig.label, documentation=sig.doc,
        parameters=[lsp.ParameterInformation(label=(a, b)) for a, b in sig.params])
    return lsp.SignatureHelp([info], active_signature=0,
                             active_parameter=min(active, max(len(sig.params) - 1, 0)))


def _open_call(text: str, offset: int) -> tuple[str, str] | None:
    """(the callee's text, the arguments so far) of the innermost `(` still open at
    `offset`, looking back over at most MAX_CALL_LINES lines."""
    depth = 0
    stop = offset
    for _ in range(MAX_CALL_LINES):
        stop = text.rfind("\n", 0, stop - 1) + 1
        if stop <= 0:
            break
    for i in range(offset - 1, stop - 1, -1):
        ch = text[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return None
                head = re.search(r"(gen\s+\w+(?:\s*:[^()\n]*)?|[A-Za-z_][\w.]*)\s*$", text[:i])
                return (head.group(1), text[i + 1:offset]) if head else None
            depth -= 1
    return None


def _split_args(args: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", []
    for ch in args:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    return [*parts, "".join(cur)]


def _callee_signature(analysis: Analysis, callee: str, text: str) -> Signature | None:
    m = analysis.index.module(analysis.filename)
    if m is None:
        return None
    sources = {**analysis.program.sources, analysis.filename: text}
    if callee.startswith("gen"):
        label, spans = "gen(", []
        for p in GEN_PARAMS.values():
            if spans:
                label += ", "
            piece = gen_param_line(p).split(" (default")[0]
            spans.append((len(label), len(label) + len(piece)))
            label += piece
        return Signature(label + ")", tuple(spans), "the parameters of a gen")
    head, _, attr = callee.rpartition(".")
    if head:
        imp = m.imports.get(head)
        other = analysis.index.module(imp.module.file) if imp and imp.module else None
        sym = other.fns.get(attr) if other else None
    else:
        sym = m.fns.get(callee) or BUILTIN_SYMBOLS.get(callee)
    if sym is None:
        return None
    if sym.kind == "builtin":
        return builtin_signature(sym.node)  # type: ignore[arg-type]
    return fn_signature(sym, sources)
