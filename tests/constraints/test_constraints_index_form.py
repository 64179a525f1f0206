"""The Index form of a canonical regex, as text (tests/runtime/constrained/
test_constrained_regex.py walks real outlines-core automata built from it)."""

from __future__ import annotations

import pytest

from sglc.constraints import ConstraintError, IndexForm, index_form, index_regex, regex_for_schema


@pytest.mark.parametrize("pattern,regex,accepts_empty", [
    ("abc", "(?:abc)$", False),
    ("^a$", "(?:a)$", False),  # the anchors change nothing
    ("a*", "(?:(?:a+))$", True),  # the language minus the empty text, and the flag
    ("yes|no", "(?:(?:yes|no))$", False),
    ("", None, True),
    ("a{0}", None, True),
    (r"\d", None, False),  # only checks the shape below
])
def test_index_form_is_the_nonempty_language_anchored_at_the_end(pattern, regex, accepts_empty):
    form = index_form(pattern)
    assert isinstance(form, IndexForm) and form.accepts_empty == accepts_empty
    if regex is not None or pattern in ("", "a{0}"):
        assert form.regex == regex
    else:
        assert form.regex.startswith("(?:[") and form.regex.endswith(")$")  # explicit ranges


def test_index_regex_needs_a_nonempty_text() -> None:
    assert index_regex("a|b") == index_form("a|b").regex
    with pytest.raises(ConstraintError, match="only the empty text"):
        index_regex("(?:)")


def test_index_form_rejects_what_the_dialect_rejects() -> None:
    with pytest.raises(ConstraintError) as info:
        index_form("a(?=b)")
    assert info.value.position == 1
    with pytest.raises(ConstraintError, match="must be a string"):
        index_form(None)  # type: ignore[arg-type]


def test_json_regexes_put_dollar_only_after_number_alternatives() -> None:
    form = index_form(regex_for_schema({}))
    assert form.regex is not None and not form.regex.endswith(")$")
    assert "$" in form.regex and not form.accepts_empty
    number = index_form(regex_for_schema({"type": "integer"})).regex
    assert number is not None and number.endswith("$)")
