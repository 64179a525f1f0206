"""`sglc trace view`: a `--trace` JSON as the trace viewer's HTML page (sglc.trace_view)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sglc.cli.common import EXIT_OK


def add_commands(sub: Any) -> None:
    """Register `trace` (with its `view` subcommand) on the `sglc` subparsers."""
    p = sub.add_parser("trace", help="look at a trace that `sglc run --trace` wrote",
                       description="Tools for the traces `sglc run --trace` writes.")
    actions = p.add_subparsers(dest="trace_command", metavar="ACTION", required=True)
    view = actions.add_parser(
        "view", help="write the trace as one self-contained HTML page",
        description="Write a trace as one self-contained HTML page (no network): the call "
        "tree on a timeline, each model call's prompt, output and timings, search and "
        "filters. Open it in any browser.",
    )
    view.add_argument("file", metavar="TRACE.json")
    view.add_argument("-o", "--output", metavar="OUT.html",
                      help="where to write the page (default: TRACE.html beside the trace)")
    view.add_argument("--source", action="append", default=[], metavar="FILE.sgl",
                      help="an SGL file the trace's locations point at, to show their lines "
                      "(repeatable; default: the files named in the trace, if they exist)")
    view.set_defaults(func=cmd_trace_view)


def cmd_trace_view(args: argparse.Namespace) -> int:
    from sglc.trace_view import load_trace, write_html

    trace = load_trace(args.file)
    output = Path(args.output) if args.output else Path(args.file).with_suffix(".html")
    write_html(trace, output, sources=_sources(trace, args.source))
    print(output)
    return EXIT_OK


def _sources(trace: dict[str, Any], named: list[str]) -> dict[str, str]:
    """The text of the SGL files: those named with --source (which must exist), else the
    ones the trace's locations name, where they can still be read."""
    if named:
        return {name: Path(name).read_text(encoding="utf-8") for name in named}
    files = {str(c.get("location", "")).rsplit(":", 2)[0] for c in trace["calls"]
             if isinstance(c, dict) and c.get("location")}
    sources = {}
    for name in files:
        try:
            sources[name] = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # moved or renamed since: the page shows locations without their lines
    return sources
