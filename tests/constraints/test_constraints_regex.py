"""The regex dialect: what `check_pattern` accepts, and the position and hint of each error."""

from __future__ import annotations

import re

import pytest

from sglc.constraints import ConstraintError, RegexSyntaxError, check_pattern, used_chars
from sglc.constraints.regex import strip_anchors

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # [[:alpha:]] reads as [[:alph]]

UNSUPPORTED = [
    ("ab(?=c)", 2, "lookaround"), ("a(?!b)", 1, "lookaround"), ("(?<=a)b", 0, "lookaround"),
    ("x(?<!a)b", 1, "lookaround"), (r"(a)\1", 3, "backreference"),
    ("(?P<x>a)(?P=x)", 8, "backreference"), ("a^b", 1, "anchor ^"), ("a$b", 1, "anchor $"),
    ("(a$)", 2, "anchor $"), (r"\bfoo", 0, r"anchor \b"), (r"fo\Z", 2, r"anchor \Z"),
    (r"\Afoo", 0, r"anchor \A"), ("(?i)abc", 0, "inline flags"), ("a(?s:.)", 1, "inline flags"),
    ("a*+", 2, "possessive"), ("a{2,3}+", 6, "possessive"), ("(?>ab)", 0, "atomic"),
    ("(a)?(?(1)b|c)", 4, "conditional"), (r"[^\s\S]", 0, "matches no text"),
    (r"x[^\d\D]y", 1, "matches no text"),
]
SYNTAX = [
    ("a{0}b{2,1}", 6, "min repeat greater"), ("a(b", 1, "missing )"),
    ("[a-", 0, "unterminated character set"), ("*a", 0, "nothing to repeat"),
    (r"a\q", 1, "bad escape"), ("a**", 2, "multiple repeat"),
]


@pytest.mark.parametrize("pattern,position,message", UNSUPPORTED + SYNTAX)
def test_unsupported_regexes_name_the_position(pattern: str, position: int, message: str) -> None:
    with pytest.raises(ConstraintError, match=re.escape(message)) as info:
        check_pattern(pattern)
    assert info.value.position == position and info.value.pointer is None
    assert f"position {position}" in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize("pattern,position,message", SYNTAX)
def test_what_python_rejects_is_a_regex_syntax_error(pattern, position, message) -> None:
    with pytest.raises(RegexSyntaxError, match="^invalid regex: "):
        check_pattern(pattern)


@pytest.mark.parametrize("pattern,position,message", UNSUPPORTED)
def test_what_python_accepts_is_not_a_syntax_error(pattern, position, message) -> None:
    with pytest.raises(ConstraintError) as info:
        check_pattern(pattern)
    assert not isinstance(info.value, RegexSyntaxError)


@pytest.mark.parametrize("pattern", ["x+?", "a??", "a{1,2}?", r"\$", r"\\$", "^a$", "^a", "a$",
                                     "[$^]", r"\(\?=", r"[(?=]", r"\0", r"\101", "[[:alpha:]]+",
                                     "(?#note)a", "(?P<n>a)", r"\N{BULLET}", "x{,2}", ""])
def test_supported_lookalikes_pass(pattern: str) -> None:
    check_pattern(pattern)


def test_a_pattern_must_be_text() -> None:
    with pytest.raises(ConstraintError, match="must be a string"):
        check_pattern(b"a")  # type: ignore[arg-type]


def test_used_chars_over_approximates_the_characters_of_every_text() -> None:
    assert used_chars("[a-c]x|y") == ((ord("a"), ord("c")), (ord("x"), ord("y")))
    assert used_chars("(?:ab)*") == ((ord("a"), ord("b")),)
    with pytest.raises(ConstraintError):
        used_chars("(?i)a")


@pytest.mark.parametrize("pattern,stripped", [("^a$", "a"), ("a", "a"), (r"a\$", r"a\$"),
                                              (r"a\\$", "a\\\\"), ("^", "")])
def test_strip_anchors_keeps_escaped_dollars(pattern: str, stripped: str) -> None:
    assert strip_anchors(pattern) == stripped
