"""The SGL front end: parse (Lark) -> AST with spans -> name/type checks -> diagnostics.

    module, diags = parse_source(text, "agent.sgl")
    program, diags = check_program("examples/agent.sgl")
    print(render_all(diags, program.sources))
"""

from __future__ import annotations

from pathlib import Path

from sglc.frontend import ast
from sglc.frontend.modules import ModuleLoader, display_name, parse_module
from sglc.frontend.symbols import CheckedProgram, FnSig, ModuleInfo
from sglc.source import (
    Diagnostic,
    DiagnosticSink,
    has_errors,
    render,
    render_all,
    sort_key,
    to_json,
)

__all__ = [
    "CheckedProgram", "Diagnostic", "DiagnosticSink", "FnSig", "ModuleInfo", "ast",
    "check_program", "has_errors", "parse_source", "render", "render_all", "to_json",
]


def parse_source(source: str, filename: str = "<string>") -> tuple[ast.Module | None,
                                                                    list[Diagnostic]]:
    """Syntax only. The Module is None when the file has syntax errors."""
    sink = DiagnosticSink()
    module = parse_module(source, filename, sink)
    return (None if sink.has_errors else module), sink.items


def check_program(path_or_source: str | Path, filename: str | None = None
                  ) -> tuple[CheckedProgram, list[Diagnostic]]:
    """Parse and check a program and everything it imports; never raises for user errors.

    A `Path`, or a str naming an existing file when no `filename` is given, is read from
    disk; anything else is source text (imports then resolve from the current folder, or
    from the folder of `filename`).
    """
    sink = DiagnosticSink()
    program = CheckedProgram(None, {}, {})
    loader = ModuleLoader(sink, program)
    path = _as_path(path_or_source, filename)
    if path is not None:
        name = filename or display_name(path)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            span = ast.Span(name, 1, 1, 1, 2)
            sink.error(f"cannot read file: {exc.strerror if isinstance(exc, OSError) else exc}",
                       span, None, "bad-file")
            program.diagnostics = sink.items
            return program, sink.items
        resolved = path.resolve()
        loader.done[resolved] = None  # importing the main file from itself is a cycle
        program.main = loader.check_source(source, name, resolved.parent, resolved)
        loader.done[resolved] = program.main
    else:
        name = filename or "<string>"
        directory = Path(filename).parent if filename else Path.cwd()
        program.main = loader.check_source(str(path_or_source), name, directory.resolve())
    files = list(dict.fromkeys([*program.sources, *(d.span.file for d in sink.items)]))
    items = sorted(sink.items, key=lambda d: (files.index(d.span.file), *sort_key(d)[1:]))
    program.diagnostics = items
    return program, items


def _as_path(path_or_source: str | Path, filename: str | None) -> Path | None:
    if isinstance(path_or_source, Path):
        return path_or_source
    text = path_or_source
    if filename is None and "\n" not in text and text.endswith(".sgl"):
        return Path(text)
    return None
