"""The `sglc` command line: one parser, one error guard, one set of exit codes.

common.py            exit codes, UsageError, the engine flags shared by run and generate
program_commands.py  run, check, compile: SGL programs
program_args.py      `-a key=value` / `--args-json`, parsed by the fn's parameter types
engine_commands.py   generate, models: the engine alone
serve_command.py     serve: the engine behind an HTTP server (sglc.runtime.server)
editor_commands.py   fmt, lsp: the formatter and the language server (sglc.editor)
calibrate_command.py calibrate: Double Sparsity's outlier channels (sglc.runtime.sparsity)
mux_commands.py      mux train, and run's --mux flags: the model multiplexer (sglc.runtime.mux)
trace_commands.py    trace view: a --trace JSON as the viewer's HTML page (sglc.trace_view)

Every failure a user can cause (a bad program, argument, file, model or device) ends in
diagnostics or one `sglc: error: ...` line: exit 1, or 2 for bad command-line usage; never
a Python traceback. A bug of ours is one `sglc: internal error: ...` line, exit 3
(SGLC_DEBUG=1 shows its traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from sglc.cli import (
    calibrate_command,
    editor_commands,
    engine_commands,
    mux_commands,
    program_commands,
    serve_command,
    trace_commands,
)
from sglc.cli.common import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)
from sglc.program import CompileError
from sglc.runtime.core import EngineError
from sglc.runtime.executor import SGLRuntimeError
from sglc.runtime.executor.host import ToolsFileError

EPILOG = "Run `sglc COMMAND --help` for the options of one command."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sglc",
        description="sglc: a compiler and runtime for structured language-model programs.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    program_commands.add_commands(sub)
    engine_commands.add_commands(sub)
    serve_command.add_serve_command(sub)
    calibrate_command.add_commands(sub)
    editor_commands.add_commands(sub)
    trace_commands.add_commands(sub)
    mux_commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `sglc` command; its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return guard(args.func, args)


def guard(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; turn every failure into a message on stderr and an exit code."""
    try:
        return command(args)
    except CompileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except SGLRuntimeError as exc:
        print(exc.render(exc.sources or {}), file=sys.stderr)
        return EXIT_ERROR
    except UsageError as exc:
        return _error(exc, EXIT_USAGE)
    except FileNotFoundError as exc:
        return _error(f"file not found: {exc.filename or exc}", EXIT_ERROR)
    except (EngineError, ToolsFileError, ValueError, OSError) as exc:
        return _error(exc, EXIT_ERROR)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, not a traceback
        if os.environ.get("SGLC_DEBUG"):
            raise
        print(
            f"sglc: internal error: {type(exc).__name__}: {exc} "
            "(set SGLC_DEBUG=1 for a traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _error(message: object, code: int) -> int:
    print(f"sglc: error: {message}", file=sys.stderr)
    return code


__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "guard", "main"]
