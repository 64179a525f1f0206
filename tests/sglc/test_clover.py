"""`sglc check --llm` (Clover's loop): the spec grammar, parsing the model's spec, exact
comparison by automata, and the whole loop on a tiny random-weight model."""

from __future__ import annotations

import re

import pytest
from model_fixtures import make_model_dir

import sglc.program as api
from sglc.clover import SPEC_GRAMMARS, parse_spec, run_clover, targets
from sglc.frontend import check_program
from sglc.ir.specs.agreement import compare_terms

SOURCE = '''
fn title(doc: str) -> str:
    """A title of at most 40 characters."""
    ensures len(result) <= 40
    user "Title for {doc}"
    assistant: gen t: /[A-Z][a-z ]{0,30}/
    return t

fn count() -> int:
    """A count between 0 and 9."""
    ensures result >= 0 and result <= 9
    assistant: gen n: int
    return n

fn person() -> json:
    """Anyone."""
    ensures len(text()) > 0
    return {}
'''


@pytest.mark.parametrize("domain, text", [
    ("str", "len(result) <= 40"), ("str", 'result.startswith("A") and len(result) < 9'),
    ("str", "matches(result, /ab+/)"), ("str", 'result in ["yes", "no"]'),
    ("int", "result >= 0 and result <= 9"),
])
def test_the_spec_grammar_admits_parseable_regular_specs(domain, text):
    assert re.fullmatch(SPEC_GRAMMARS[domain], text)
    term = parse_spec(text)
    assert term is not None and compare_terms(term, term, domain).equivalent


def test_specs_are_compared_exactly():
    written = parse_spec("len(result) <= 40")
    same = compare_terms(written, parse_spec("len(result) < 41"), "str")
    assert same.equivalent
    other = compare_terms(written, parse_spec("len(result) <= 3"), "str")
    assert not other.equivalent and other.only_other is None
    assert len(other.only_written) == 4  # a shortest value the written spec allows, not it
    ints = compare_terms(parse_spec("result >= 0 and result <= 9"),
                         parse_spec("result != 0"), "int")
    assert (ints.only_written, ints.only_other) == ("0", "10")
    assert parse_spec("result +") is None


def test_the_loop_runs_on_a_model_and_only_advises(tmp_path):
    checked, diags = check_program(SOURCE, filename="c.sgl")
    assert checked.ok, diags
    found, skipped = targets(checked)
    assert [t.sig.node.name for t in found] == ["title", "count"]
    assert [d.code for d in skipped] == ["clover-skipped"]
    make_model_dir(tmp_path, "llama")
    with api.Runtime(model_path=tmp_path, max_total_tokens=8192) as runtime:
        out = run_clover(checked, runtime)
    assert not any(d.is_error for d in out)
    codes = [d.code for d in out]
    assert codes.count("clover-doc2spec") == 2 and codes.count("clover-spec2doc") == 2
    for d in out:
        if d.code == "clover-doc2spec":
            spec = re.search(r"`ensures (.*)`", d.message, re.S).group(1)
            grammar = SPEC_GRAMMARS["str" if "title" in d.message else "int"]
            assert re.fullmatch(grammar, spec)  # decoded under the spec grammar
