"""Checking grammar constraints: `grammar NAME: r\"\"\"...\"\"\"` items and `gen x: grammar(...)`.

A grammar is Lark text (llguidance's dialect), checked here at build time: an error is
reported at its own line and column inside the grammar, in the `.lark` file or in the
inline block of the `.sgl` file, never as a traceback. `grammar("file.lark")` reads a file
next to the program (inside its folder, like `schema("file.json")`); `grammar(NAME)` names a
`grammar` item of the module (or `module.NAME` of an import).
"""

from __future__ import annotations

import os
from pathlib import Path

from sglc.constraints.grammar import GrammarError, lark_grammar
from sglc.frontend import ast as A
from sglc.frontend.symbols import CheckedProgram, ModuleInfo
from sglc.source import DiagnosticSink

__all__ = ["check_grammar_def", "grammar_of"]

_HINT = "see the grammar syntax: rules `name: ...`, terminals `NAME: /regex/ | \"text\"`"


def check_grammar_def(g: A.GrammarDef, sink: DiagnosticSink) -> bool:
    """Report a `grammar` item's error inside its block; whether the grammar is valid."""
    if not g.is_raw:
        sink.error("a grammar is written as a raw string", g.name_span.to(g.span),
                   'write r"""...""" (the grammar is taken as written)', "bad-grammar")
        return False
    return _check(g.text, g.name_span, sink, g.span.file, (g.text_line, g.text_col))


def grammar_of(ref: A.GrammarRef, info: ModuleInfo, directory: Path, sink: DiagnosticSink,
               program: CheckedProgram) -> str | None:
    """The Lark text of `grammar(...)` (recorded in `program.grammars`), or None after an
    error."""
    source = ref.source
    if isinstance(source, A.Str):
        text = _grammar_file(source, info, directory, sink, program)
    elif isinstance(source, (A.Name, A.Attribute)):
        text = _named_grammar(source, info, sink)
    else:
        sink.error("grammar(...) takes a .lark file name or the name of a grammar item",
                   source.span, 'e.g. grammar("sql.lark") or grammar(SQL) after '
                   'grammar SQL: r"""..."""', "bad-grammar")
        text = None
    if text is not None:
        program.grammars[ref] = text
    return text


def _named_grammar(source: A.Name | A.Attribute, info: ModuleInfo,
                   sink: DiagnosticSink) -> str | None:
    if isinstance(source, A.Attribute) and isinstance(source.value, A.Name):
        module = info.imports.get(source.value.name)
        name = source.attr
    else:
        module, name = info, source.id
    found = module.grammars.get(name) if module is not None else None
    if found is None:
        known = ", ".join(sorted(info.grammars)) or "none in this module"
        sink.error("grammar(...) names no grammar item here", source.span,
                   f'grammar items: {known}; write grammar NAME: r"""...""" at the top level',
                   "bad-grammar")
        return None
    return found.text if found.is_raw and _is_valid(found.text) else None


def _grammar_file(source: A.Str, info: ModuleInfo, directory: Path, sink: DiagnosticSink,
                  program: CheckedProgram) -> str | None:
    path = (directory / source.value).resolve()
    if Path(source.value).is_absolute() or not path.is_relative_to(directory.resolve()):
        sink.error("a grammar file must be inside the program's folder", source.span,
                   "give a path relative to the .sgl file, without '..'", "bad-grammar")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        sink.error(f"cannot read grammar file '{source.value}': {reason}", source.span,
                   "paths are relative to the folder of the .sgl file", "bad-grammar")
        return None
    shown = os.path.join(os.path.dirname(info.file), source.value)
    program.sources.setdefault(shown, text)  # so its error shows the grammar's own line
    return text if _check(text, source.span, sink, shown, (1, 1)) else None


def _check(text: str, where: A.Span, sink: DiagnosticSink, file: str,
           origin: tuple[int, int]) -> bool:
    """Validate `text`; its errors are located in `file`, whose line `origin[0]`, column
    `origin[1]` holds the grammar's first character."""
    try:
        lark_grammar(text)
    except GrammarError as exc:
        if exc.line is None:
            sink.error(f"bad grammar: {exc.message}", where, exc.hint or _HINT, "bad-grammar")
            return False
        line = origin[0] + exc.line - 1
        col = (origin[1] if exc.line == 1 else 1) + (exc.column or 1) - 1
        span = A.Span(file, line, col, line, col + 1)
        sink.error(f"bad grammar: {exc.message}", span, exc.hint or _HINT, "bad-grammar")
        return False
    return True


def _is_valid(text: str) -> bool:
    """A grammar item's errors are reported where it is defined, once."""
    try:
        lark_grammar(text)
    except GrammarError:
        return False
    return True
