"""`sglc run`, `sglc check`, `sglc compile`: SGL programs from the command line.

Wire into sglc/cli.py with `add_program_commands(sub)` after the other subcommands. Each
command returns an exit code and reports every problem with the user's program, arguments
or files as diagnostics or a one-line `sglc: error: ...` (exit 1; usage errors exit 2);
never a Python traceback (set SGLC_DEBUG=1 to see one for internal errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from sglc.ir.types import IRType
from sglc.runtime.executor.events import ProgramEvents

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line arguments for the program (exit 2)."""


def add_program_commands(sub: Any) -> None:
    """Register run, check and compile on the `sglc` subparsers."""
    from sglc.cli import add_engine_options

    p = sub.add_parser(
        "run",
        help="run an SGL program",
        description="Run a fn of an SGL program (default: main) and print what it returns.",
    )
    p.add_argument("file", metavar="FILE", help="a .sgl program, or a compiled .json one")
    p.add_argument("--fn", metavar="NAME", help="the fn to call (default: main)")
    p.add_argument(
        "-a",
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an argument of the fn, parsed by its parameter type (repeatable)",
    )
    p.add_argument("--args-json", metavar="JSON", help="arguments as a JSON object (or @file.json)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream each gen's text to stderr token by token as the engine decodes it "
        "(and each select's choice)",
    )
    p.add_argument(
        "--trace",
        metavar="TRACE.json",
        help="write every model call (prompt, params, output, timing) as JSON",
    )
    p.add_argument(
        "--tools",
        metavar="TOOLS.py",
        action="append",
        default=[],
        help="a Python file whose functions implement the `extern fn`s",
    )
    add_engine_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check",
        help="report all diagnostics of an SGL program",
        description="Parse and check a program without running it; exit 1 when it has errors.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "compile",
        help="show what the compiler produces",
        description="Compile a program and print its AST, IR or saved JSON.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--emit", choices=["ast", "ir", "json"], default="ir")
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    p.set_defaults(func=cmd_compile)


# -- check ---------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from sglc.frontend import check_program, has_errors, render_all, to_json
    from sglc.program import compile_checked

    return _guard(
        lambda: _check(args, check_program, compile_checked, has_errors, render_all, to_json)
    )


def _check(args, check_program, compile_checked, has_errors, render_all, to_json) -> int:
    checked, diags = check_program(Path(args.file), filename=args.file)
    _, diags = compile_checked(checked, diags)
    if args.format == "json":
        print(to_json(diags))
    else:
        if diags:
            print(render_all(diags, checked.sources), file=sys.stderr)
        num_errors = sum(d.is_error for d in diags)
        num_warnings = len(diags) - num_errors
        status = "ok" if not num_errors else "failed"
        print(
            f"{args.file}: {status} ({_plural(num_errors, 'error')}, "
            f"{_plural(num_warnings, 'warning')})",
            file=sys.stderr,
        )
    return EXIT_ERROR if has_errors(diags) else EXIT_OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# -- compile ---------------------------------------------------------------------------------------
def cmd_compile(args: argparse.Namespace) -> int:
    return _guard(lambda: _compile(args))


def _compile(args: argparse.Namespace) -> int:
    from sglc.frontend import check_program, render_all

    if args.emit == "ast":
        checked, diags = check_program(Path(args.file), filename=args.file)
        if checked.main is None:
            print(render_all(diags, checked.sources), file=sys.stderr)
            return EXIT_ERROR
        text = json.dumps(ast_to_data(checked.main.module), indent=2, ensure_ascii=False)
    else:
        prog = _load(args.file)
        if args.emit == "ir":
            from sglc.ir.printer import print_program

            text = print_program(prog.ir)
        else:
            text = json.dumps(prog.to_json(), indent=1, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return EXIT_OK


def ast_to_data(node: Any) -> Any:
    """An AST as plain data: {"node": "FnDef", field: value, ...} without spans."""
    if is_dataclass(node):
        data: dict[str, Any] = {"node": type(node).__name__}
        for f in fields(node):
            if not f.name.endswith("span"):
                data[f.name] = ast_to_data(getattr(node, f.name))
        return data
    if isinstance(node, (list, tuple)):
        return [ast_to_data(x) for x in node]
    return node


# -- run -------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    return _guard(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from sglc.program import Runtime
    from sglc.runtime.executor.host import load_tools_file
    from sglc.runtime.executor.trace import Trace

    prog = _load(args.file)
    for diag in prog.diagnostics:  # warnings of a successful compile
        from sglc.frontend import render

        print(render(diag, prog.sources.get(diag.span.file)), file=sys.stderr)
    fn_name = args.fn or prog.entry or "main"
    functions = prog.functions
    if fn_name not in functions:
        raise UsageError(
            f"{args.file} has no fn '{fn_name}' (fns: "
            f"{', '.join(functions) or 'none'})"
            + ("; pick one with --fn NAME" if not args.fn else "")
        )
    fn = prog.ir.functions[prog.ir.resolve(fn_name)]
    kwargs = parse_arguments(fn, args.arg, args.args_json)
    for path in args.tools:
        prog.bind(**load_tools_file(path))
    engine = _make_engine(args)
    trace = Trace() if args.trace else None
    printer = _StreamPrinter() if args.stream else None
    try:
        with Runtime(engine=engine) as runtime:
            result = asyncio.run(
                prog.run_async(
                    fn_name,
                    runtime=runtime,
                    trace=trace,
                    events=printer,
                    out=_write_stdout,
                    **kwargs,
                )
            )
    finally:
        engine.shutdown()
        if trace is not None:
            trace.save(args.trace)
    if result is not None:
        print(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class _StreamPrinter(ProgramEvents):
    """`--stream` on stderr: gen text as it arrives, under a `[fn] name:` header whenever
    another gen's text comes in (branches decode concurrently), then each value."""

    def __init__(self) -> None:
        self.current: tuple[str, str] | None = None

    def on_delta(self, fn_label: str, name: str, delta: str) -> None:
        if self.current != (fn_label, name):
            self._end_line()
            sys.stderr.write(f"[{fn_label}] {name}: ")
            self.current = (fn_label, name)
        sys.stderr.write(delta)
        sys.stderr.flush()

    def on_value(self, fn_label: str, name: str, text: str) -> None:
        self._end_line()
        print(f"[{fn_label}] {name} = {text!r}", file=sys.stderr, flush=True)

    def _end_line(self) -> None:
        if self.current is not None:
            sys.stderr.write("\n")
            self.current = None


def _make_engine(args: argparse.Namespace) -> Any:
    from sglc.cli import make_engine

    return make_engine(args)


def _load(path: str) -> Any:
    from sglc.program import load

    if not Path(path).exists():
        raise FileNotFoundError(path)
    return load(path)


# -- arguments -------------------------------------------------------------------------------------
def parse_arguments(fn: Any, pairs: list[str], args_json: str | None) -> dict[str, Any]:
    """`-a key=value` and `--args-json` as the fn's keyword arguments, each value parsed by
    its parameter's type; unknown and missing arguments are UsageErrors."""
    params = {p.name: p for p in fn.params}
    values: dict[str, Any] = {}
    if args_json is not None:
        values.update(_args_json(args_json))
        for key, value in values.items():
            _known(key, params)
            check_json_value(key, value, params[key].type)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-a expects KEY=VALUE, got {pair!r}")
        _known(key, params)
        values[key] = parse_value(key, text, params[key].type)
    missing = [p for p in fn.params if p.name not in values and not p.has_default]
    if missing:
        need = " ".join(f"-a {p.name}=<{p.type}>" for p in missing)
        raise UsageError(
            f"missing argument{'s' * (len(missing) > 1)} for {fn.name.rsplit('.', 1)[-1]}(): {need}"
        )
    return values


def _args_json(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--args-json: cannot read {text[1:]}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args-json is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError('--args-json must be a JSON object: {"name": value, ...}')
    return data


def _known(key: str, params: dict[str, Any]) -> None:
    if key not in params:
        import difflib

        close = difflib.get_close_matches(key, list(params), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        names = ", ".join(params) or "none"
        raise UsageError(f"unknown argument '{key}' (parameters: {names}){hint}")


def parse_value(key: str, text: str, t: IRType) -> Any:
    """A command-line string as a value of the parameter type `t`."""
    if t.kind == "optional":
        return None if text in ("None", "null") else parse_value(key, text, t.args[0])
    if t.kind == "None":
        if text in ("None", "null"):
            return None
        raise UsageError(f"argument '{key}' must be None, got {text!r}")
    if t.kind == "choice":
        if text not in t.choices:
            raise UsageError(
                f"argument '{key}' must be one of {', '.join(map(repr, t.choices))}, got {text!r}"
            )
        return text
    if t.kind in ("str", "any"):
        return text
    if t.kind in _SCALAR_PARSERS:
        return _SCALAR_PARSERS[t.kind](key, text)
    if t.kind == "list" and not text.lstrip().startswith("["):
        raise UsageError(
            f"argument '{key}' must be a {t} written as JSON, e.g. {key}='[\"a\", \"b\"]'"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"argument '{key}' must be a {t} written as JSON, got {text!r}") from None
    check_json_value(key, value, t)
    return value


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"argument '{key}' must be an int, got {text!r}") from None


def _float(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"argument '{key}' must be a float, got {text!r}") from None


def _bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise UsageError(f"argument '{key}' must be true or false, got {text!r}")


_SCALAR_PARSERS = {"int": _int, "float": _float, "bool": _bool}


def check_json_value(key: str, value: Any, t: IRType) -> None:
    """A JSON argument must have the shape of its parameter type (a schema's: an object)."""
    if not fits(value, t):
        raise UsageError(f"argument '{key}' must be a {t}, got {json.dumps(value)[:60]}")


def fits(value: Any, t: IRType) -> bool:
    """Does a JSON value have the shape of type `t`?"""
    if t.kind in _IS_SCALAR:
        return _IS_SCALAR[t.kind](value)
    if t.kind == "optional":
        return value is None or fits(value, t.args[0])
    if t.kind == "list":
        return isinstance(value, list) and all(fits(v, t.args[0]) for v in value)
    if t.kind == "dict":
        return isinstance(value, dict) and all(fits(v, t.args[1]) for v in value.values())
    if t.kind == "choice":
        return value in t.choices
    return isinstance(value, dict)  # a schema: an object (its fields are not checked)


_IS_SCALAR: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
    "json": lambda v: True,
    "any": lambda v: True,
}


# -- errors ------------------------------------------------------------------------------------------
def _guard(body: Any) -> int:
    """Run a command; turn every user-facing failure into a message and an exit code."""
    from sglc.program import CompileError
    from sglc.runtime.core import EngineError
    from sglc.runtime.executor.errors import SGLRuntimeError
    from sglc.runtime.executor.host import ToolsFileError

    try:
        return body()
    except CompileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except SGLRuntimeError as exc:
        print(exc.render(exc.sources or {}), file=sys.stderr)
        return EXIT_ERROR
    except UsageError as exc:
        print(f"sglc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"sglc: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return EXIT_ERROR
    except (EngineError, ToolsFileError, ValueError, OSError) as exc:
        print(f"sglc: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, not a traceback
        if os.environ.get("SGLC_DEBUG"):
            raise
        print(
            f"sglc: internal error: {type(exc).__name__}: {exc} "
            "(set SGLC_DEBUG=1 for a traceback; please report it)",
            file=sys.stderr,
        )
        return 3


def main(argv: list[str] | None = None) -> int:
    """These three commands alone (`python -m sglc.cli_run run FILE ...`); `sglc` itself
    wires them in through `add_program_commands`."""
    parser = argparse.ArgumentParser(prog="sglc")
    add_program_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
