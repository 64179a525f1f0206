"""Hover on a multiplexed gen (`model="auto"`) says that a predictor picks its model, and
`sglc check`'s notes mark it; a gen on a named model says nothing of the kind."""

from __future__ import annotations

from sglc.editor.analysis import analyze
from sglc.editor.describe import hover_markdown

SOURCE = '''fn main() -> str:
    "Q: 12*7?" gen a(model="auto", max_tokens=4)
    " again:" gen b(model="judge", max_tokens=4)
    return a + b
'''


def hover(needle: str) -> str:
    a = analyze(SOURCE, "/tmp/mux.sgl")
    line = next(n for n, text in enumerate(SOURCE.splitlines(), 1) if needle in text)
    col = SOURCE.splitlines()[line - 1].index(needle) + 1
    occ = a.index.module(a.filename).at(line, col)
    assert occ is not None, needle
    return hover_markdown(occ, {"/tmp/mux.sgl": SOURCE}) or ""


def test_hover_says_a_gen_is_multiplexed() -> None:
    assert "(gen) a: str" in hover("a(model")
    assert "**multiplexed**" in hover("a(model")
    assert "multiplexed" not in hover("b(model")


def test_check_notes_the_multiplexed_gen() -> None:
    notes = [d for d in analyze(SOURCE, "/tmp/mux.sgl").diagnostics if d.code == "multiplexed"]
    assert [(d.severity, d.span.line) for d in notes] == [("note", 2)]
