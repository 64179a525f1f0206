"""stdlib extract: node selection over a page's text nodes, on the default model (each value
is a node's text or None) and on a scripted model (exact precision/recall)."""

from __future__ import annotations

import re

from scripted import ScriptedClient

import sglc
from sglc.stdlib import dom
from sglc.stdlib.extraction import extract_attributes
from sglc.stdlib.loader import load

PAGES = [
    ("<html><body><h1>Acme Phone X</h1><p>Price: <span>$499</span></p>"
     "<p>Brand: <b>Acme</b></p></body></html>",
     {"name": "Acme Phone X", "price": "$499"}),
    ("<html><body><div><h2>Zed Watch</h2><i>only $89</i></div><span>$5 off</span></body></html>",
     {"name": "Zed Watch", "price": "only $89"}),
]


def test_extract_on_the_default_model_returns_node_texts(runtime):
    html, _ = PAGES[0]
    got = extract_attributes(html, ["name", "price"], runtime=runtime)
    texts = {n.text for n in dom.text_nodes(html)}
    assert set(got) == {"name", "price"}
    assert all(v is None or v in texts for v in got.values())


def test_read_fields_on_the_default_model_gives_strings(runtime):
    listing = dom.format_nodes(dom.text_nodes(PAGES[0][0]))
    values = load("extract").read_fields(listing, ["name"], runtime=runtime, max_tokens=12)
    assert len(values) == 1 and isinstance(values[0], str)


def first_node_with(words: dict[str, str]):
    """Picks, for the field the prompt asks about, the first node whose text has its word."""
    def choose(prompt: str, options: list[str]) -> str:
        field = re.search(r"Which node holds the (\w+)\?", prompt).group(1)
        for line in prompt.split("(index, XPath, text):\n", 1)[1].splitlines():
            index, _, text = line.partition(" ")
            if words[field] in text:
                return index
        return "none"
    return choose


def test_scripted_extraction_scores_exactly():
    client = ScriptedClient(lambda *_: "", first_node_with({"name": "Acme", "price": "$"}))
    rt = sglc.Runtime(client=client)
    predicted = [extract_attributes(html, ["name", "price"], runtime=rt) for html, _ in PAGES]
    # page 1: right name and price; page 2: no name node has "Acme", the first "$" is right
    assert predicted == [{"name": "Acme Phone X", "price": "$499"},
                         {"name": None, "price": "only $89"}]
    rows = {r.field: r for r in dom.attribute_scores(predicted, [g for _, g in PAGES],
                                                     ["name", "price"])}
    assert (rows["name"].precision, rows["name"].recall) == (1.0, 0.5)
    assert (rows["all"].precision, rows["all"].recall) == (1.0, 0.75)


def test_a_page_without_text_extracts_nothing():
    assert extract_attributes("<html><script>x</script></html>", ["name"]) == {"name": None}
