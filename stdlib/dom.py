"""Web pages as text nodes with their XPath (FreeDOM/SimpDOM's simplified DOM), and the
precision/recall of extracted attributes against labelled pages.

    nodes = text_nodes(html)            # [TextNode(index=0, xpath="/html/body/h1", text=...)]
    listing = format_nodes(nodes)       # what `extract.sgl` shows the model, one node a line
    scores = attribute_scores(predicted, gold, ["name", "price"])

Parsing uses Python's `html.parser` (lenient: an end tag closes the open elements above
its match; a stray one is ignored). Text inside script, style, noscript and template is
dropped, whitespace is collapsed, and empty text is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
SKIPPED_TAGS = frozenset(("script", "style", "noscript", "template"))
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class TextNode:
    """One run of visible text: its position in document order, the XPath of the element
    holding it (`/html/body/div[2]/span`: an index only where the parent has several
    children of that tag), the element's tag, and the text (whitespace collapsed)."""

    index: int
    xpath: str
    tag: str
    text: str


@dataclass
class _Element:
    tag: str
    parent: _Element | None
    position: int  # 1-based among the parent's children of the same tag
    child_counts: dict[str, int]

    def xpath(self) -> str:
        steps = []
        node: _Element | None = self
        while node is not None and node.parent is not None:
            many = node.parent.child_counts.get(node.tag, 0) > 1
            steps.append(f"{node.tag}[{node.position}]" if many else node.tag)
            node = node.parent
        return "/" + "/".join(reversed(steps))


class _TextNodeParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("", None, 1, {})
        self.stack = [self.root]
        self.found: list[tuple[_Element, str]] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1]
        parent.child_counts[tag] = parent.child_counts.get(tag, 0) + 1
        element = _Element(tag, parent, parent.child_counts[tag], {})
        if tag in VOID_TAGS:
            return
        self.stack.append(element)
        self.skipping += tag in SKIPPED_TAGS

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1]
        parent.child_counts[tag] = parent.child_counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                for closed in self.stack[depth:]:
                    self.skipping -= closed.tag in SKIPPED_TAGS
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        text = _SPACES.sub(" ", data).strip()
        if not text or self.skipping:
            return
        element = self.stack[-1]
        if self.found and self.found[-1][0] is element:  # the same run, split by a comment
            self.found[-1] = (element, f"{self.found[-1][1]} {text}")
        else:
            self.found.append((element, text))


def text_nodes(html: str) -> list[TextNode]:
    """The page's visible text nodes in document order."""
    parser = _TextNodeParser()
    parser.feed(html)
    parser.close()
    return [TextNode(i, element.xpath(), element.tag or "#document", text)
            for i, (element, text) in enumerate(parser.found)]


def format_nodes(nodes: Sequence[TextNode], *, max_text_chars: int = 80) -> str:
    """One line per node, `index xpath: text` (text cut to max_text_chars)."""
    return "\n".join(f"{n.index} {n.xpath}: {n.text[:max_text_chars]}" for n in nodes)


# -- scoring against labelled pages -----------------------------------------------------------------
def normalize(value: str) -> str:
    """How values are compared: lower case, whitespace collapsed, stripped."""
    return _SPACES.sub(" ", value).strip().lower()


@dataclass(frozen=True)
class FieldScore:
    """Counts over pages for one attribute: a wrong prediction is both a false positive
    and a false negative; an empty prediction (None or "") is no prediction."""

    field: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else float("nan")

    @property
    def recall(self) -> float:
        relevant = self.true_positives + self.false_negatives
        return self.true_positives / relevant if relevant else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


Gold = Mapping[str, "str | Sequence[str] | None"]


def _gold_values(value: str | Sequence[str] | None) -> set[str]:
    if value is None:
        return set()
    values = [value] if isinstance(value, str) else list(value)
    return {normalize(v) for v in values if normalize(v)}


def attribute_scores(predicted: Sequence[Mapping[str, str | None]], gold: Sequence[Gold],
                     fields: Sequence[str]) -> list[FieldScore]:
    """Per-field counts over pages, then a micro-averaged row named "all". A gold value may
    be a list of acceptable values; None or a missing key means the page lacks it."""
    if len(predicted) != len(gold):
        raise ValueError(f"attribute_scores needs one prediction per labelled page, got "
                         f"{len(predicted)} predictions for {len(gold)} pages")
    rows = []
    for name in fields:
        tp = fp = fn = 0
        for pred, truth in zip(predicted, gold, strict=True):
            guess = normalize(pred.get(name) or "")
            accepted = _gold_values(truth.get(name))
            if guess and guess in accepted:
                tp += 1
                continue
            fp += bool(guess)
            fn += bool(accepted)
        rows.append(FieldScore(name, tp, fp, fn))
    rows.append(FieldScore("all", sum(r.true_positives for r in rows),
                           sum(r.false_positives for r in rows),
                           sum(r.false_negatives for r in rows)))
    return rows


__all__ = ["FieldScore", "TextNode", "attribute_scores", "format_nodes", "normalize",
           "text_nodes"]
