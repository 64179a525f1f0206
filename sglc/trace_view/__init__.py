"""The trace viewer: one self-contained HTML page (inline CSS and JS, nothing fetched) that
shows a `--trace` JSON as a call tree on a timeline, each model call's prompt, output and
timings, with search, filters and a summary.

    sglc trace view t.json -o t.html      sglc run prog.sgl --trace-html t.html
    prog.main(..., trace="t.html")        write_html(trace.to_json(), "t.html")

The page is `viewer.html` (package data) with the trace, and the source lines its locations
point at, embedded as JSON. This package reads JSON only: it never imports the runtime.
"""

from sglc.trace_view.page import TraceFileError, load_trace, render_html, write_html

__all__ = ["TraceFileError", "load_trace", "render_html", "write_html"]
