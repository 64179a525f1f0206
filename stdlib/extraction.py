"""Web attribute extraction from Python: HTML in, one value per field out.

    from sglc.stdlib.extraction import extract_attributes
    extract_attributes(html, ["name", "price"], runtime=rt)   # {"name": "Acme X", "price": "$499"}

The page becomes text nodes with XPaths (sglc.stdlib.dom); `extract.sgl`'s `pick_nodes`
selects one node per field (or "none"), and the field's value is that node's exact text
(None for "none"). Score many pages with sglc.stdlib.dom.attribute_scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from sglc.program import Program
from sglc.runtime.backends import Runtime
from sglc.stdlib.dom import format_nodes, text_nodes
from sglc.stdlib.loader import load


def extract_attributes(html: str, fields: Sequence[str], *, runtime: Runtime | None = None,
                       program: Program | None = None, max_nodes: int = 200,
                       max_text_chars: int = 80) -> dict[str, str | None]:
    """Each field's value on the page, or None where the model picks no node. The first
    `max_nodes` text nodes are shown (each cut to `max_text_chars`)."""
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
    nodes = text_nodes(html)[:max_nodes]
    if not nodes:
        return dict.fromkeys(fields)
    prog = program or load("extract")
    picks = prog.pick_nodes(format_nodes(nodes, max_text_chars=max_text_chars), list(fields),
                            [str(n.index) for n in nodes], runtime=runtime)
    return {field: None if pick == "none" else nodes[int(pick)].text
            for field, pick in zip(fields, picks, strict=True)}


__all__ = ["extract_attributes"]
