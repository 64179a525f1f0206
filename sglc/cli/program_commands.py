"""`sglc run`, `sglc check`, `sglc compile`: SGL programs from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from sglc.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    add_endpoint_options,
    add_engine_options,
    make_runtime,
)
from sglc.cli.mux_commands import add_mux_options, mux_config
from sglc.cli.program_args import parse_arguments, parse_defaults, read_args_file
from sglc.constraints.errors import ConstraintError
from sglc.constraints.grammar import route_grammar
from sglc.frontend import check_program, has_errors, render, render_all, to_json
from sglc.frontend.models import check_model_names, multiplexed_notes
from sglc.ir import print_program
from sglc.lang import AUTO_MODEL
from sglc.program import Program, compile_checked, load, save_trace
from sglc.runtime.executor import ProgramEvents, Trace
from sglc.runtime.executor.host import load_tools_file


def add_commands(sub: Any) -> None:
    """Register run, check and compile on the `sglc` subparsers."""
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
        "--args-file",
        metavar="FILE",
        help="one run per record, run together as a batch: a .jsonl file (a JSON object of "
        "arguments a line), a .json file (an object, or a list of them) or a text file (a "
        "line each, the fn's first parameter); -a/--args-json go to every run; with several "
        "runs each result is printed as a line of JSON",
    )
    p.add_argument(
        "-s",
        "--sampling",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a gen parameter as a default for every gen of the run (repeatable), e.g. "
        "-s temperature=0.7 -s max_tokens=64; a gen's own parameters and a fn's `with` "
        "defaults win; without any, gens are greedy with max_tokens=128",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream each gen's text to stderr token by token as the engine decodes it "
        "(and each select's choice)",
    )
    p.add_argument(
        "--trace",
        metavar="TRACE.json",
        help="write every model call (prompt, params, output, timing; a failed one with its "
        "error and partial output) as JSON",
    )
    p.add_argument(
        "--trace-html",
        metavar="TRACE.html",
        help="write the run's trace as the trace viewer's page (one self-contained HTML "
        "file: call tree, timeline, prompts and outputs); see also `sglc trace view`",
    )
    p.add_argument(
        "--tools",
        metavar="TOOLS.py",
        action="append",
        default=[],
        help="a Python file whose functions implement the `extern fn`s",
    )
    _add_spec_options(p)
    add_engine_options(p, with_endpoint=True, several_models=True)
    add_mux_options(p)
    add_endpoint_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check",
        help="report all diagnostics of an SGL program",
        description="Parse and check a program without running it; exit 1 when it has errors.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--models", metavar="NAME,...",
                   help="the model names the program will run with (sglc run --model "
                        "NAME=PATH): a model=\"...\" naming another is an error")
    _add_spec_options(p)
    p.add_argument("--llm", action="store_true",
                   help="also ask a model whether docstrings and specs agree (Clover's loop: "
                   "specs written from the docstring, compared exactly; a docstring written "
                   "from the specs, judged YES/NO); advisory")
    p.add_argument("--model", metavar="PATH",
                   help="with --llm: a local Hugging Face model directory (default: the "
                   "embedded default model)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "compile",
        help="show what the compiler produces",
        description="Compile a program and print its AST, IR or saved JSON.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--emit", choices=["ast", "ir", "json"], default="ir")
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    _add_spec_options(p)
    p.set_defaults(func=cmd_compile)


# -- check ---------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    checked, diags = check_program(Path(args.file), filename=args.file)
    _, diags = compile_checked(checked, diags, _skipped(args))
    if args.models is not None and checked.ok:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        diags = [*diags, *check_model_names(checked, [*names, AUTO_MODEL])]
    if checked.ok:
        diags = [*diags, *multiplexed_notes(checked)]
    if args.model and not args.llm:
        raise UsageError("--model goes with --llm")
    if args.llm and not has_errors(diags):
        diags = [*diags, *_clover(checked, args.model)]
    if args.format == "json":
        print(to_json(diags))
    else:
        if diags:
            print(render_all(diags, checked.sources), file=sys.stderr)
        for span, refusal in checked.grammar_path_schemas:
            print(f"{span.file}:{span.line}:{span.col}: note: this schema decodes on the "
                  f"grammar path (llguidance), not as a regex: {refusal}", file=sys.stderr)
        for span in _regular_grammars(checked):
            print(f"{span.file}:{span.line}:{span.col}: note: this grammar is regular: it "
                  "decodes on the regex path (as its regex), not on llguidance", file=sys.stderr)
        num_errors = sum(d.is_error for d in diags)
        num_notes = sum(d.severity == "note" for d in diags)
        num_warnings = len(diags) - num_errors - num_notes
        status = "ok" if not num_errors else "failed"
        notes = f", {_plural(num_notes, 'note')}" if num_notes else ""
        print(
            f"{args.file}: {status} ({_plural(num_errors, 'error')}, "
            f"{_plural(num_warnings, 'warning')}{notes})",
            file=sys.stderr,
        )
    return EXIT_ERROR if has_errors(diags) else EXIT_OK


def _regular_grammars(checked: Any) -> list[Any]:
    """The spans of the `grammar(...)` constraints that take the regex path."""
    spans = []
    for ref, text in checked.grammars.items():
        try:
            if route_grammar(text).path == "regex":
                spans.append(ref.span)
        except ConstraintError:  # reported as the grammar's error already
            continue
    return spans


def _clover(checked: Any, model: str | None) -> list[Any]:
    from sglc.clover import run_clover
    from sglc.runtime.backends import Runtime

    with Runtime(model_path=model) as runtime:
        return run_clover(checked, runtime)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# -- compile ---------------------------------------------------------------------------------------
def cmd_compile(args: argparse.Namespace) -> int:
    if args.emit == "ast":
        checked, diags = check_program(Path(args.file), filename=args.file)
        if checked.main is None:
            print(render_all(diags, checked.sources), file=sys.stderr)
            return EXIT_ERROR
        text = json.dumps(ast_to_data(checked.main.module), indent=2, ensure_ascii=False)
    else:
        prog = _load(args.file, args)
        if args.emit == "ir":
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
    runtime = make_runtime(args, mux_config(args))  # engines start with the first model call
    prog = _load(args.file, args, None if runtime.endpoint else runtime.model_names)
    for diag in prog.diagnostics:  # warnings of a successful compile (notes are for check)
        if diag.severity == "note":
            continue
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
    schemas = prog.ir.schemas
    rows = read_args_file(args.args_file, fn, schemas) if args.args_file else None
    runs = parse_arguments(fn, args.arg, args.args_json, schemas, rows)
    defaults = parse_defaults(args.sampling)
    for path in args.tools:
        prog.bind(**load_tools_file(path))
    trace = Trace() if args.trace or args.trace_html else None
    events = _StreamPrinter() if args.stream else None
    try:
        with runtime:
            results = asyncio.run(
                prog.batch_async(
                    fn_name, runs, runtime=runtime, trace=trace, events=events,
                    out=_write_stdout, **defaults,
                )
            )
    finally:
        if args.trace:
            save_trace(trace, args.trace)
        if args.trace_html:
            save_trace(trace, args.trace_html, prog.sources)
    if rows is None:
        (result,) = results
        if result is not None:
            print(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))
    else:
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
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


def _load(path: str, args: argparse.Namespace | None = None,
          models: list[str] | None = None) -> Program:
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return load(path, skip_passes=_skipped(args), models=models)
def _skipped(args: argparse.Namespace | None) -> tuple[str, ...]:
    return ("spec_pushdown",) if getattr(args, "no_spec_pushdown", False) else ()


def _add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-spec-pushdown", action="store_true",
                   help="leave regular ensures/assert specs out of the gens' constraints "
                   "(they are then checked at run time, unless the constraint already "
                   "proves them)")
