"""The supported regex dialect (`check_regex`, `ConstraintError`) and the form the engine's
token automaton (outlines-core `Index`) is built from. The canonical regex of each kind of
constraint is made in `canonical.py`.

A canonical regex means what Python's `re.fullmatch` says it means: the text must match it
whole.

Regex dialect (what `check_regex` accepts) -- Python `re` syntax restricted to regular
constructs, which outlines-core (Rust's regex-automata) can build an automaton for:

    literals and escapes   \\n \\t \\xHH \\uHHHH \\UHHHHHHHH \\N{name}, octal, escaped punctuation
    classes                [...] [^...] with ranges and \\d \\w \\s \\D \\W \\S (Unicode, as Python
                           defines them); . is any character except \\n ([\\s\\S] is any character)
    groups                 (...) (?:...) (?P<name>...), comments (?#...)
    alternation            |
    quantifiers            ? * + {m} {m,} {,n} {m,n}; the lazy forms (*? +? ?? {m,n}?) are
                           accepted and mean the same (a constraint is a set of whole texts)
    anchors                only a leading ^ and a trailing $, which change nothing

Rejected with `ConstraintError` carrying the 0-based `position` in the pattern: anchors elsewhere
(^ $ \\A \\Z \\b \\B), lookarounds (?= (?! (?<= (?<!, backreferences \\1 (?P=name),
conditionals (?(1)..), atomic groups (?>..), possessive quantifiers (*+ ++ ?+ {m,n}+), inline
flags (?i) (?s:..), and a regex that matches no text at all (e.g. [^\\s\\S]; the position is the
first class that matches no character). Python's own syntax errors keep Python's position.

The Index form (`index_form` / `index_regex`). The automaton is never built from the pattern as
written: the pattern is parsed with Python's `re` parser and re-emitted in the syntax of Rust's
regex crate -- every class as explicit code-point ranges computed from Python's tables, groups
as (?:...), lazy quantifiers as greedy ones -- so both engines accept exactly the same texts even
where their syntaxes disagree (\\w and \\s differ on some code points, Rust has no octal escapes,
no {,n}, reads [[:alpha:]] as a POSIX class, and so on).

Pitfall of outlines-core 0.2.14 (pinned by tests/runtime/constrained/test_constrained_regex.py).
`Index(regex, vocabulary)` builds a leftmost-first regex-automata DFA, anchored at the start but
not at the end, and keeps a token transition only when the state it reaches is not a match state
or is a match at end of input. Matches are reported one byte late, so once a proper prefix of a
text is itself a match, every continuation that is not itself a full match is dropped:
`[0-9]+(\\.[0-9]+)?` rejects "1.5" (after "1", the "." is dropped), `(yes|yesterday)` rejects
"yesterday". A trailing `$` fixes it: no state can match before the end of input, so no
transition is dropped. But whenever the empty text is in the language, `$` is reachable from the
start, the DFA has no context-independent ("universal") start state, and `Index` raises
("anchored universal start state doesn't exist"); a leading `^` (or \\A) fails the same way. No
regex form gives an `Index` that accepts the empty text correctly: the empty match is reported
at the first byte and kills every continuation that is not a full match.

So `index_form(pattern)` returns `(?:R)$`, where R is the pattern's language *minus the empty
text* (rewritten structurally: for a nullable sequence AB, (A minus "")B | (B minus "")), and
`accepts_empty`, which the matcher must honour itself (allow EOS before the first token); R is
None when the language is exactly {""}. `index_regex(pattern)` is `index_form(pattern).regex`.

Cost: regex-automata also determinizes the unanchored start (unused by `Index`), and with `$`
none of its threads ever ends early: for the any-JSON regex, `(?:R)$` takes over 30 s to build.
Regexes made by `regex_for_schema` (remembered in this process; the any-JSON ones always)
accept JSON texts only, and a JSON text that is not a number is never a proper prefix of another
JSON text, so their Index form puts `$` only after the top-level alternatives that can start a
number (0.3 s for any JSON). Without that knowledge (a schema regex from another process) the
plain form is used: the same language, built more slowly. Large bounds cost too: `[\\s\\S]{0,N}`
takes about 0.3 s to build for N = 1000 and 10 s for N = 5000.

JSON schemas: `sglc.constraints.schema` (`regex_for_schema`) compiles the supported
subset; its docstring lists it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

try:  # Python 3.11+
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]


class ConstraintError(ValueError):
    """A constraint that cannot become a regex: `pointer` is the JSON pointer of the offending
    schema keyword, `position` the 0-based offset of the offending construct in a regex (for a
    schema's `pattern`, both), `hint` a suggestion (or None)."""

    def __init__(self, message: str, *, pointer: str | None = None,
                 position: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.position = position
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.pointer is not None:
            where.append(f"at {self.pointer}" if self.pointer else "at the schema root")
        if self.position is not None:
            where.append(f"position {self.position}")
        return self.message + (f" ({', '.join(where)})" if where else "")


# ---------------------------------------------------------------------------------------------
# Regex dialect: the scanner (positions of unsupported constructs), Python's parser (structure).

_RE_HINTS = (
    ("unterminated character set", "close the class with ']' (write \\] for a literal bracket)"),
    ("missing )", "balance the parentheses (write \\( or \\) for literal ones)"),
    ("unbalanced parenthesis", "balance the parentheses (write \\( or \\) for literal ones)"),
    ("nothing to repeat", "escape the quantifier character to match it literally, e.g. \\*"),
    ("multiple repeat", "escape the quantifier character to match it literally, e.g. \\*"),
    ("bad escape", "remove the backslash or use a supported escape such as \\d, \\w, \\s, \\n"),
    ("min repeat greater", "write the smaller count first: {m,n} with m <= n"),
)
_ANCHOR_HINT = "a constraint always matches the whole text; drop the anchor"
_FLAGS_HINT = "spell the cases out, e.g. [aA], or [\\s\\S] for any character"
_REPEAT = re.compile(r"\{(?:\d+(?:,\d*)?|,\d*)\}")
_GROUP_ERRORS = (
    ("(?P=", "backreferences are not supported", "a regular language cannot repeat a text"),
    ("(?=", "lookaround assertions are not supported", None),
    ("(?!", "lookaround assertions are not supported", None),
    ("(?<=", "lookaround assertions are not supported", None),
    ("(?<!", "lookaround assertions are not supported", None),
    ("(?>", "atomic groups are not supported", "use a plain group (?:...)"),
    ("(?(", "conditional groups are not supported", "use an alternation (a|b)"),
)


def check_regex(pattern: str) -> None:
    """Raise ConstraintError (with `position`) unless `pattern` is in the supported dialect
    and matches at least one text."""
    _analyze(pattern)


def _analyze(pattern: str) -> Any:
    """Python's parse tree of a pattern in the dialect (raises ConstraintError otherwise)."""
    _require_text(pattern)
    return _analyze_text(pattern)


def _require_text(pattern: object) -> None:
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a string, not {type(pattern).__name__}")


@lru_cache(maxsize=512)
def _analyze_text(pattern: str) -> Any:
    tree = _python_parse(pattern)
    classes = list(_scan(pattern))
    if _emit_seq(tree.data) is None:
        raise ConstraintError("the regex matches no text", position=_empty_class(pattern, classes),
                              hint="a class such as [^\\s\\S] matches no character")
    return tree


def _python_parse(pattern: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning for [[ && -- ~~ || inside classes
        try:
            tree = _sre_parse.parse(pattern, 0)
        except re.error as exc:
            hint = next((h for key, h in _RE_HINTS if key in exc.msg), None)
            raise ConstraintError(f"invalid regex: {exc.msg}", position=exc.pos or 0,
                                  hint=hint) from None
    if tree.state.flags & ~_sre.SRE_FLAG_UNICODE:
        raise ConstraintError("inline flags are not supported", position=0, hint=_FLAGS_HINT)
    return tree


def _scan(p: str) -> Iterator[tuple[int, int]]:
    """Walk a pattern Python accepted; raise on unsupported constructs, yield class spans."""
    i, quantified = 0, False  # quantified: the previous token was a quantifier
    while i < len(p):
        c = p[i]
        repeat = _REPEAT.match(p, i) if c == "{" else None
        if c in "*+?" or repeat:
            if quantified and c == "+":
                raise ConstraintError("possessive quantifiers are not supported", position=i,
                                      hint="drop the + after the quantifier")
            i, quantified = (repeat.end() if repeat else i + 1), not quantified
            continue
        quantified = False
        if c == "\\":
            _check_escape(p, i)
            i = _escape_end(p, i)
        elif c == "[":
            end = _class_end(p, i)
            yield i, end
            i = end
        elif c == "(":
            i = _group_start(p, i)
        else:
            _check_anchor(p, i)
            i += 1


def _check_escape(p: str, i: int) -> None:
    nxt = p[i + 1]
    if nxt in "AZbB":
        raise ConstraintError(f"anchor \\{nxt} is not supported", position=i, hint=_ANCHOR_HINT)
    if nxt in "123456789" and not _is_octal(p, i + 1):
        raise ConstraintError("backreferences are not supported", position=i,
                              hint="a regular language cannot repeat a captured text")


def _is_octal(p: str, j: int) -> bool:
    """Python reads a backslash and three octal digits as an octal escape."""
    return len(p) >= j + 3 and all(ch in "01234567" for ch in p[j:j + 3])


def _escape_end(p: str, i: int) -> int:
    return p.index("}", i) + 1 if p.startswith("N{", i + 1) else i + 2


def _class_end(p: str, i: int) -> int:
    j = i + 1
    j += p.startswith("^", j)
    j += p.startswith("]", j)
    while p[j] != "]":
        j = _escape_end(p, j) if p[j] == "\\" else j + 1
    return j + 1


def _group_start(p: str, i: int) -> int:
    """Check a group opening at `i`; return where scanning goes on."""
    if not p.startswith("(?", i):
        return i + 1
    if p.startswith("(?:", i):
        return i + 3
    if p.startswith("(?P<", i):
        return p.index(">", i) + 1
    if p.startswith("(?#", i):
        return p.index(")", i) + 1
    for prefix, message, hint in _GROUP_ERRORS:
        if p.startswith(prefix, i):
            raise ConstraintError(message, position=i, hint=hint)
    raise ConstraintError("inline flags are not supported", position=i, hint=_FLAGS_HINT)


def _check_anchor(p: str, i: int) -> None:
    if (p[i] == "^" and i > 0) or (p[i] == "$" and i < len(p) - 1):
        where = "start" if p[i] == "^" else "end"
        raise ConstraintError(f"anchor {p[i]} is only allowed at the {where} of a constraint",
                              position=i, hint=_ANCHOR_HINT)


def _empty_class(pattern: str, classes: Sequence[tuple[int, int]]) -> int | None:
    """The position of the first class that matches no character."""
    for start, end in classes:
        data = _python_parse(pattern[start:end]).data
        if len(data) == 1 and not _charset(*data[0]):
            return start
    return None


def _strip_anchors(pattern: str) -> str:
    """A pattern in the dialect without its leading ^ and trailing $ (no-ops for fullmatch)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    if pattern.endswith("$") and backslashes % 2 == 0:
        pattern = pattern[:-1]
    return pattern


# ---------------------------------------------------------------------------------------------
# Character sets as sorted, disjoint code-point intervals over the Unicode scalar values.

Intervals = tuple[tuple[int, int], ...]
_UNIVERSE: Intervals = ((0, 0xD7FF), (0xE000, 0x10FFFF))
_CATEGORIES = {
    _sre.CATEGORY_DIGIT: ("d", False), _sre.CATEGORY_NOT_DIGIT: ("d", True),
    _sre.CATEGORY_SPACE: ("s", False), _sre.CATEGORY_NOT_SPACE: ("s", True),
    _sre.CATEGORY_WORD: ("w", False), _sre.CATEGORY_NOT_WORD: ("w", True),
}
_CHAR_OPS = frozenset({_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN})


def _merge(ivs: Sequence[tuple[int, int]]) -> Intervals:
    """Sort, merge and clip to the scalar values (no surrogates: they never occur in text)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ivs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple((max(lo, ulo), min(hi, uhi)) for lo, hi in out for ulo, uhi in _UNIVERSE
                 if lo <= uhi and hi >= ulo)


def _complement(ivs: Intervals) -> Intervals:
    out, nxt = [], 0
    for lo, hi in ivs:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= 0x10FFFF:
        out.append((nxt, 0x10FFFF))
    return _merge(out)


@lru_cache(maxsize=1)
def _category_sets() -> dict[str, Intervals]:
    """Python's \\d, \\s and \\w (str patterns: Unicode), as intervals."""
    text = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))

    def code_point(index: int) -> int:
        return index if index < 0xD800 else index + 0x800

    return {name: _merge([(code_point(m.start()), code_point(m.end() - 1))
                          for m in re.finditer(f"\\{name}+", text)]) for name in "dsw"}


def _charset(op: Any, av: Any) -> Intervals:
    """The characters one item of a parse tree matches (LITERAL, NOT_LITERAL, ANY, IN)."""
    if op is _sre.LITERAL:
        return _merge([(av, av)])
    if op is _sre.NOT_LITERAL:
        return _complement(_merge([(av, av)]))
    if op is _sre.ANY:
        return _complement(((10, 10),))
    negate, ivs = False, []
    for item, value in av:
        if item is _sre.NEGATE:
            negate = True
        elif item is _sre.LITERAL:
            ivs.append((value, value))
        elif item is _sre.RANGE:
            ivs.append(value)
        elif item is _sre.CATEGORY and value in _CATEGORIES:
            name, negated = _CATEGORIES[value]
            category = _category_sets()[name]
            ivs.extend(_complement(category) if negated else category)
        else:
            raise ConstraintError(f"unsupported class item {item}")
    merged = _merge(ivs)
    return _complement(merged) if negate else merged


# ---------------------------------------------------------------------------------------------
# Emission in Rust regex syntax (None: the empty language), and the language minus "".

_RUST_META = frozenset("\\.+*?()|[]{}^$#&-~")


def _esc(cp: int) -> str:
    ch = chr(cp)
    if ch in _RUST_META:
        return "\\" + ch
    return ch if " " < ch < "\x7f" else f"\\x{{{cp:X}}}"


def _ranges(ivs: Intervals) -> str:
    return "".join(_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}" for lo, hi in ivs)


def _emit_set(ivs: Intervals) -> str | None:
    if not ivs:
        return None
    if len(ivs) == 1 and ivs[0][0] == ivs[0][1]:
        return _esc(ivs[0][0])
    rest = _complement(ivs)
    if not rest:
        return "[\\x{0}-\\x{10FFFF}]"
    return f"[^{_ranges(rest)}]" if len(rest) < len(ivs) else f"[{_ranges(ivs)}]"


def _alt(alternatives: Sequence[str | None]) -> str | None:
    kept = [a for a in alternatives if a is not None]
    return f"(?:{'|'.join(kept)})" if kept else None


def _quantifier(lo: int, hi: int) -> str:
    if hi == _sre.MAXREPEAT:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) in ((0, 1), (1, 1)):
        return "?" if lo == 0 else ""
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _is_atom(items: Sequence[Any]) -> bool:
    """Whether `items` is one character or class (possibly in groups): no parentheses needed."""
    if len(items) != 1:
        return False
    op, av = items[0]
    return op in _CHAR_OPS or (op is _sre.SUBPATTERN and _is_atom(av[3].data))


def _repeat(body: str, items: Sequence[Any], lo: int, hi: int) -> str:
    return (body if _is_atom(items) else f"(?:{body})") + _quantifier(lo, hi)


def _emit_seq(items: Sequence[Any]) -> str | None:
    parts = []
    for op, av in items:
        part = _emit_item(op, av)
        if part is None:
            return None
        parts.append(part)
    return "".join(parts)


def _emit_item(op: Any, av: Any) -> str | None:
    if op in _CHAR_OPS:
        return _emit_set(_charset(op, av))
    if op is _sre.AT and av in (_sre.AT_BEGINNING, _sre.AT_END):
        return ""
    if op is _sre.SUBPATTERN and not av[1] and not av[2]:
        inner = _emit_seq(av[3].data)
        return inner if inner is None or _is_atom(av[3].data) else f"(?:{inner})"
    if op is _sre.BRANCH:
        return _alt([_emit_seq(branch.data) for branch in av[1]])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        lo, hi, sub = av
        body = _emit_seq(sub.data)
        if body is None or hi == 0 or body == "":
            return "" if lo == 0 or body == "" else None
        return _repeat(body, sub.data, lo, hi)
    raise ConstraintError(f"unsupported regex construct {op}")


def _nullable_seq(items: Sequence[Any]) -> bool:
    return all(_nullable(op, av) for op, av in items)


def _nullable(op: Any, av: Any) -> bool:
    if op in _CHAR_OPS:
        return False
    if op is _sre.SUBPATTERN:
        return _nullable_seq(av[3].data)
    if op is _sre.BRANCH:
        return any(_nullable_seq(branch.data) for branch in av[1])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        return av[0] == 0 or _nullable_seq(av[2].data)
    return True  # AT


def _nonempty_seq(items: Sequence[Any]) -> str | None:
    """The language of `items` minus the empty text, in Rust syntax (None: nothing left)."""
    if not _nullable_seq(items):
        return _emit_seq(items)
    if not items:
        return None
    (op, av), rest = items[0], items[1:]
    head, tail = _nonempty_item(op, av), _emit_seq(rest)  # here every item is nullable
    first = None if head is None or tail is None else head + tail
    return _alt([first, _nonempty_seq(rest)])


def _nonempty_item(op: Any, av: Any) -> str | None:
    if not _nullable(op, av):
        return _emit_item(op, av)
    if op is _sre.SUBPATTERN:
        return _nonempty_seq(av[3].data)
    if op is _sre.BRANCH:
        return _alt([_nonempty_seq(branch.data) for branch in av[1]])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        _, hi, sub = av
        body = _nonempty_seq(sub.data)
        return None if body is None or hi == 0 else _repeat(body, sub.data, 1, hi)
    return None  # AT


@dataclass(frozen=True)
class IndexForm:
    """What the engine builds its automaton from: `regex` for `outlines_core.Index` (the
    pattern's language minus the empty text, with the trailing `$` the Index needs; None when
    the language is exactly {""}), and whether the empty text is accepted (the Index cannot say
    so: the matcher must allow EOS before the first token itself)."""

    regex: str | None
    accepts_empty: bool


def index_form(pattern: str) -> IndexForm:
    """The Index form of a canonical regex (see the module docstring for why)."""
    _require_text(pattern)
    return _index_form(pattern)


@lru_cache(maxsize=512)
def _index_form(pattern: str) -> IndexForm:
    items = _analyze(pattern).data
    if _is_json_regex(pattern):
        return IndexForm(_json_index_regex(items), False)
    body = _nonempty_seq(items)
    return IndexForm(None if body is None else f"(?:{body})$", _nullable_seq(items))


_NUMBER_START: Intervals = ((0x2D, 0x2D), (0x30, 0x39))


def _is_json_regex(pattern: str) -> bool:
    from sglc.constraints.schema import is_json_regex  # schema.py builds on this module

    return is_json_regex(pattern)


def _json_index_regex(items: Sequence[Any]) -> str:
    """`$` only after the top-level alternatives that can start a number: a JSON text that is
    not a number is never a proper prefix of another JSON text, so those alternatives need no
    `$` -- and without it regex-automata's DFA stays small (with `$` after the whole any-JSON
    regex, building it takes over 30 s: the unanchored start it also builds never prunes)."""
    parts = []
    for branch in _alternatives(items):
        body = _emit_seq(branch)
        if body is not None:
            number = _overlaps(_first_chars(branch), _NUMBER_START)
            parts.append(body + "$" if number else body)
    return f"(?:{'|'.join(parts)})"


def _alternatives(items: Sequence[Any]) -> list[Sequence[Any]]:
    """The top-level alternatives of a parse tree, through groups and nested alternations."""
    if len(items) == 1 and items[0][0] is _sre.SUBPATTERN and not items[0][1][1]:
        return _alternatives(items[0][1][3].data)
    if len(items) == 1 and items[0][0] is _sre.BRANCH:
        return [alt for branch in items[0][1][1] for alt in _alternatives(branch.data)]
    return [items]


def _overlaps(a: Intervals, b: Intervals) -> bool:
    return any(lo <= bhi and hi >= blo for lo, hi in a for blo, bhi in b)


def _first_chars(items: Sequence[Any]) -> Intervals:
    """The characters a text of `items` can start with."""
    out: list[tuple[int, int]] = []
    for op, av in items:
        if op in _CHAR_OPS:
            out.extend(_charset(op, av))
        elif op is _sre.SUBPATTERN:
            out.extend(_first_chars(av[3].data))
        elif op is _sre.BRANCH:
            out.extend(iv for branch in av[1] for iv in _first_chars(branch.data))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[1] > 0:
            out.extend(_first_chars(av[2].data))
        if not _nullable(op, av):
            break
    return _merge(out)


def index_regex(pattern: str) -> str:
    """The regex to hand to `outlines_core.Index` for a canonical regex: it accepts exactly
    the non-empty texts `re.fullmatch(pattern, text)` accepts. Check `index_form(pattern)
    .accepts_empty` for the empty text; raises ConstraintError when only "" is accepted."""
    form = index_form(pattern)
    if form.regex is None:
        raise ConstraintError("the regex matches only the empty text; no automaton is needed",
                              hint="check index_form(pattern).accepts_empty first")
    return form.regex


__all__ = ["ConstraintError", "IndexForm", "check_regex", "index_form", "index_regex", "used_chars"]


def used_chars(pattern: str) -> Intervals:
    """Every character some text of `pattern` may contain (an over-approximation), as
    code-point intervals; the pattern must be in the dialect (`check_regex`)."""
    return _chars_of(_analyze(pattern).data)


def _chars_of(items: Any) -> Intervals:
    """The characters a parse tree's items may match anywhere (an over-approximation)."""
    found: list[tuple[int, int]] = []
    for op, av in items:
        if op in _CHAR_OPS:
            found.extend(_charset(op, av))
        elif op is _sre.SUBPATTERN:
            found.extend(_chars_of(av[-1]))
        elif op is _sre.BRANCH:
            for branch in av[1]:
                found.extend(_chars_of(branch))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            found.extend(_chars_of(av[2]))
    return _merge(found)
