"""dom: text nodes with XPaths from real (messy) HTML, and attribute precision/recall."""

from __future__ import annotations

import math

import pytest

from sglc.stdlib import dom

PAGE = """<!doctype html><html><head><title>Acme Phone X</title>
<style>.p { color: red }</style><script>var price = "$1";</script></head>
<body><div class="nav"><a href="/">Home</a> <a href="/shop">Shop</a></div>
<div id="main"><h1>Acme  Phone
X</h1><img src="x.png"><p>Price: <span class="price">$499</span></p>
<p>Brand: <b>Acme</b><br>In stock &amp; ready<!-- hidden --> today</p>
<ul><li>5G<li>OLED</ul></div></body></html>"""


def test_text_nodes_have_xpaths_and_skip_scripts_and_styles():
    nodes = dom.text_nodes(PAGE)
    got = [(n.xpath, n.text) for n in nodes]
    assert got == [
        ("/html/head/title", "Acme Phone X"),
        ("/html/body/div[1]/a[1]", "Home"),
        ("/html/body/div[1]/a[2]", "Shop"),
        ("/html/body/div[2]/h1", "Acme Phone X"),
        ("/html/body/div[2]/p[1]", "Price:"),
        ("/html/body/div[2]/p[1]/span", "$499"),
        ("/html/body/div[2]/p[2]", "Brand:"),
        ("/html/body/div[2]/p[2]/b", "Acme"),
        ("/html/body/div[2]/p[2]", "In stock & ready today"),
        # an unclosed <li> nests the next one (html.parser builds no implied end tags)
        ("/html/body/div[2]/ul/li", "5G"),
        ("/html/body/div[2]/ul/li/li", "OLED"),
    ]
    assert [n.index for n in nodes] == list(range(len(nodes)))
    assert dom.format_nodes(nodes[:2], max_text_chars=4).splitlines() == \
        ["0 /html/head/title: Acme", "1 /html/body/div[1]/a[1]: Home"]


def test_stray_end_tags_are_ignored():
    nodes = dom.text_nodes("<div></span><p>a</p></div></div><p>b</p>")
    assert [(n.xpath, n.text) for n in nodes] == [("/div/p", "a"), ("/p", "b")]


def test_attribute_scores():
    gold = [{"name": "Acme Phone X", "price": "$499"},
            {"name": "Zed", "price": ["$5", "5 USD"]},
            {"name": "Quux", "price": None}]
    predicted = [{"name": "acme  phone x", "price": "$499"},   # normalized match
                 {"name": "Zed 2", "price": "5 usd"},          # wrong name; an accepted price
                 {"name": None, "price": "$9"}]                # missed name; price not on page
    rows = {r.field: r for r in dom.attribute_scores(predicted, gold, ["name", "price"])}
    assert (rows["name"].true_positives, rows["name"].false_positives,
            rows["name"].false_negatives) == (1, 1, 2)
    assert (rows["price"].precision, rows["price"].recall) == (2 / 3, 1.0)
    assert rows["all"].precision == 3 / 5 and rows["all"].recall == 3 / 5
    assert rows["name"].f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert math.isnan(dom.attribute_scores([{}], [{}], ["x"])[0].precision)
    with pytest.raises(ValueError, match="one prediction per labelled page"):
        dom.attribute_scores([], gold, ["name"])
