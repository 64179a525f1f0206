"""`sglc fmt` and `sglc lsp`: editor support (sglc.editor) from the command line."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from sglc.cli.common import EXIT_ERROR, EXIT_OK, UsageError
from sglc.editor import FormatError, format_source
from sglc.frontend import render_all


def add_commands(sub: Any) -> None:
    """Register fmt and lsp on the `sglc` subparsers."""
    p = sub.add_parser(
        "fmt",
        help="format SGL files in place",
        description="Format .sgl files in place (4-space indentation, spacing, blank lines; "
        "comments kept). A folder means every .sgl file under it; '-' formats standard input "
        "to standard output. A file with syntax errors is reported and left as it is.",
    )
    p.add_argument("files", metavar="FILE", nargs="+", help="a .sgl file, a folder, or -")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files that would change and exit 1 if any")
    p.add_argument("--diff", action="store_true",
                   help="change nothing; print what would change as a unified diff")
    p.set_defaults(func=cmd_fmt)

    p = sub.add_parser(
        "lsp",
        help="run the SGL language server (for editors)",
        description="Run the SGL language server over standard input and output "
        "(diagnostics, hover, definitions, references, completion, formatting).",
    )
    p.add_argument("--debounce", type=float, default=0.3, metavar="SECONDS",
                   help="wait this long after an edit before checking again (default: 0.3)")
    p.set_defaults(func=cmd_lsp)


# -- fmt -------------------------------------------------------------------------------------------
def cmd_fmt(args: argparse.Namespace) -> int:
    if args.files == ["-"]:
        return _format_stdin()
    if "-" in args.files:
        raise UsageError("'-' (standard input) cannot be mixed with files")
    failed = changed = 0
    for path in _sgl_files(args.files):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"sglc: error: cannot read {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        try:
            text = format_source(source, str(path))
        except FormatError as exc:
            _report(exc, {str(path): source})
            failed += 1
            continue
        if text == source:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                source.splitlines(keepends=True), text.splitlines(keepends=True),
                f"{path} (before)", f"{path} (formatted)"))
        elif args.check:
            print(f"would reformat {path}", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"reformatted {path}", file=sys.stderr)
    if failed:
        return EXIT_ERROR
    return EXIT_ERROR if args.check and changed else EXIT_OK


def _format_stdin() -> int:
    source = sys.stdin.read()
    try:
        sys.stdout.write(format_source(source, "<stdin>"))
    except FormatError as exc:
        _report(exc, {"<stdin>": source})
        return EXIT_ERROR
    return EXIT_OK


def _report(exc: FormatError, sources: dict[str, str]) -> None:
    if exc.diagnostics:
        print(render_all(exc.diagnostics, sources), file=sys.stderr)
    print(f"sglc: error: {exc}", file=sys.stderr)


def _sgl_files(names: list[str]) -> list[Path]:
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            paths.extend(sorted(path.rglob("*.sgl")))
        elif path.exists():
            paths.append(path)
        else:
            raise FileNotFoundError(name)
    return paths


# -- lsp -------------------------------------------------------------------------------------------
def cmd_lsp(args: argparse.Namespace) -> int:
    # NOTE: pygls is imported only here, so other commands never pay for loading it.
    from sglc.editor.server import serve_stdio

    if args.debounce < 0:
        raise UsageError("--debounce must be 0 or more seconds")
    serve_stdio(debounce=args.debounce)
    return EXIT_OK
