"""Code actions and semantic tokens, from a document's Analysis.

- "Add `import X`": for the checker's `unknown name 'X'` used as `X.something` (and
  `unknown module 'X'` in a type), when a module X exists where `import X` would find it
  (next to the file, then in the standard library, as sglc.frontend.modules looks).
- Semantic tokens: each resolved name as namespace, type, function, parameter, variable or
  property, so a theme can tell a call of a fn from a variable.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from sglc.editor.analysis import Analysis
from sglc.editor.symbols import ModuleIndex
from sglc.frontend.modules import stdlib_dir

_UNKNOWN = re.compile(r"unknown (?:name|module) '([A-Za-z_]\w*)'")
_DOCSTRING = re.compile(r'\A\s*(?:"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\')[ \t]*(?:#.*)?\n')


def add_missing_imports(a: Analysis, uri: str, diags: list[lsp.Diagnostic]
                        ) -> list[lsp.CodeAction]:
    out = []
    lines = a.text.splitlines()
    for d in diags:
        match = _UNKNOWN.match(d.message)
        if d.code != "unknown-name" or match is None:
            continue
        name = match.group(1)
        line = lines[d.range.end.line] if d.range.end.line < len(lines) else ""
        used_as_module = d.message.startswith("unknown module") or \
            line[d.range.end.character:].lstrip().startswith(".")
        if not used_as_module or not _module_exists(name, a.filename):
            continue
        edit = lsp.TextEdit(lsp.Range(*[lsp.Position(import_line(a), 0)] * 2), f"import {name}\n")
        out.append(lsp.CodeAction(
            f"Add `import {name}`", kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
            is_preferred=True, edit=lsp.WorkspaceEdit(changes={uri: [edit]})))
    return out


def _module_exists(name: str, filename: str) -> bool:
    folders = [Path(filename).parent, stdlib_dir()]
    return any((folder / f"{name}.sgl").is_file() for folder in folders)


def import_line(a: Analysis) -> int:
    """The 0-based line where a new import goes: after the last import, else after the
    module docstring, else at the top."""
    module = a.program.main.module if a.program.main else None
    if module is not None and module.imports:
        return max(i.span.end_line for i in module.imports if i.span.file == a.filename)
    doc = _DOCSTRING.match(a.text)
    if doc is None:
        return 0
    return a.text.count("\n", 0, doc.end())


# ---- semantic tokens ----------------------------------------------------------------------

TOKEN_TYPES = ["namespace", "type", "function", "parameter", "variable", "property"]
TOKEN_MODIFIERS = ["declaration", "defaultLibrary"]
SEMANTIC_LEGEND = lsp.SemanticTokensLegend(TOKEN_TYPES, TOKEN_MODIFIERS)
_TYPE_OF_KIND = {"import": 0, "schema": 1, "fn": 2, "extern": 2, "builtin": 2, "param": 3,
                 "field": 5, "gen-param": 3}


def semantic_data(m: ModuleIndex, text: str) -> list[int]:
    """The LSP's relative encoding of one token per one-line name occurrence (UTF-16)."""
    lines = text.splitlines()
    data: list[int] = []
    prev_line = prev_col = prev_start = 0
    for occ in m.occurrences:
        s = occ.span
        if s.line != s.end_line or occ.symbol.kind == "import" and occ.is_def or \
                (s.line - 1, s.col) <= (prev_line, prev_start):
            continue
        kind = _TYPE_OF_KIND.get(occ.symbol.kind, 4)
        mods = (1 if occ.is_def else 0) | (2 if occ.symbol.kind == "builtin" else 0)
        source = lines[s.line - 1] if s.line <= len(lines) else ""
        col = _utf16(source[:s.col - 1])
        length = _utf16(source[s.col - 1:s.end_col - 1])
        line = s.line - 1
        delta_col = col - prev_col if line == prev_line else col
        data += [line - prev_line, delta_col, length, kind, mods]
        prev_line, prev_col, prev_start = line, col, s.col
    return data


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
