"""Web attribute extraction: HTML -> text nodes with XPaths -> node selection (extract.sgl)
and a schema-constrained record (web_product.sgl), scored against labelled pages.

    python examples/stdlib/web_extract.py
"""

from __future__ import annotations

from pathlib import Path

import sglc
from sglc.stdlib import dom
from sglc.stdlib.extraction import extract_attributes

PAGES = [
    ("<html><body><h1>Acme Phone X</h1><p>Price: <span>$499</span></p>"
     "<p>Brand: <b>Acme</b></p><script>track()</script></body></html>",
     {"name": "Acme Phone X", "price": "$499", "brand": "Acme"}),
    ("<html><body><div><h2>Zed Watch</h2><p>Made by <i>Zed</i></p></div>"
     "<div class='buy'><span>$89</span></div></body></html>",
     {"name": "Zed Watch", "price": "$89", "brand": "Zed"}),
]
FIELDS = ["name", "price", "brand"]


def main(runtime: sglc.Runtime | None = None, **defaults: object) -> list[dom.FieldScore]:
    runtime = runtime or sglc.Runtime()
    by_node = [extract_attributes(html, FIELDS, runtime=runtime) for html, _ in PAGES]
    record = sglc.load(Path(__file__).with_name("web_product.sgl"))
    listings = [dom.format_nodes(dom.text_nodes(html)) for html, _ in PAGES]
    by_schema = record.product.batch(listings, runtime=runtime, **defaults)
    gold = [labels for _, labels in PAGES]
    for name, predicted in (("node selection", by_node), ("schema record", by_schema)):
        print(name, predicted)
        for row in dom.attribute_scores(predicted, gold, FIELDS):
            print(f"  {row.field:6} precision {row.precision:.2f} recall {row.recall:.2f}")
    return dom.attribute_scores(by_node, gold, FIELDS)


if __name__ == "__main__":
    main()
