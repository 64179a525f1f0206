"""Build the viewer's page: the template with the trace and source lines filled in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

_DATA_SLOT = "/*@TRACE_DATA@*/null"
_LOCATION = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+)$")


class TraceFileError(ValueError):
    """A file that is not a trace `--trace` wrote (unreadable, not JSON, no calls list)."""


def load_trace(path: str | Path) -> dict[str, Any]:
    """The trace JSON in `path`; TraceFileError naming the file if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TraceFileError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("calls"), list):
        raise TraceFileError(f"{path}: not an sglc trace (expected an object with a \"calls\" "
                             "list, as `sglc run --trace` writes)")
    return data


def render_html(trace: Mapping[str, Any], sources: Mapping[str, str] | None = None,
                title: str = "sglc trace") -> str:
    """The viewer's page for `trace` (the JSON `Trace.to_json` makes). With `sources` (file
    name -> text) it also shows the SGL line each call and error points at."""
    template = resources.files("sglc.trace_view").joinpath("viewer.html").read_text("utf-8")
    payload = {"trace": dict(trace), "lines": _source_lines(trace, sources or {}),
               "title": title}
    # NOTE: "</" would end the <script> element early; "<\/" is the same string in JS
    data = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    return template.replace(_DATA_SLOT, data, 1).replace("@TITLE@", _escape(title))


def write_html(trace: Mapping[str, Any], path: str | Path,
               sources: Mapping[str, str] | None = None) -> None:
    """Write the viewer's page for `trace` to `path`."""
    page = render_html(trace, sources, title=f"sglc trace: {Path(path).stem}")
    Path(path).write_text(page, encoding="utf-8")


def _source_lines(trace: Mapping[str, Any], sources: Mapping[str, str]) -> dict[str, str]:
    """"file:line" -> that line's text, for every location the trace names."""
    locations = [c.get("location") for c in trace.get("calls", []) if isinstance(c, dict)]
    error = trace.get("error")
    if isinstance(error, dict):
        locations.append(error.get("location"))
    lines: dict[str, str] = {}
    for location in locations:
        match = _LOCATION.match(location or "")
        if match is None or match["file"] not in sources:
            continue
        text = sources[match["file"]].splitlines()
        number = int(match["line"])
        if 1 <= number <= len(text):
            lines[f"{match['file']}:{number}"] = text[number - 1]
    return lines


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
