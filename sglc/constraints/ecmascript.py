"""JSON Schema `pattern`s (ECMAScript regexes, searched, not anchored) as regexes of the
dialect over the text between a JSON string's quotes (`string_pattern_regex`).

ECMAScript semantics, as JSON Schema (and its test suite) reads them: \\d is [0-9], \\w is
[A-Za-z0-9_] (ASCII only, unlike Python), \\s is ECMAScript's white space and line terminators,
. is any character but \\n \\r \\u2028 \\u2029, $ matches only at the very end (Python's also
matches before a trailing newline), \\cX is a control character, \\0 is NUL, (?<name>...) a named
group. A pattern matches a string when it matches a part of it: without a leading ^ or a
trailing $, any text may come before or after.

The regex only ever generates characters a JSON string holds without escaping (not '"', '\\\\'
or a control character): every class is narrowed to them, so what it accepts is a JSON string's
raw text whose value the pattern matches (a subset of the pattern's strings).

\\p{..} / \\P{..}: the general categories L Lu Ll N Nd P S Z (and their long names), from
Python's Unicode tables.

Refused, each with its position in the pattern: other Unicode properties, \\D \\W \\S \\P
inside a class, backreferences (\\1 \\k<name>), lookarounds, anchors other than a
leading ^ and a trailing $, [] and [^], and escapes ECMAScript does not define (\\a, \\A, \\Z...).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sglc.constraints.charsets import CHAR_OPS, Intervals, charset, complement, merge, sre
from sglc.constraints.errors import ConstraintError
from sglc.constraints.regex import parse_pattern

_JSON_UNSAFE: Intervals = ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C))
JSON_SAFE: Intervals = complement(_JSON_UNSAFE)
"""The characters a JSON string holds as themselves (no escape)."""
_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _SPACE}
_PLAIN_ESCAPES = {"t": "\\t", "n": "\\n", "v": "\\x0b", "f": "\\x0c", "r": "\\r", "0": "\\x00"}
_ANY = "[^\\n\\r\\u2028\\u2029]"
_SYNTAX = frozenset("^$\\.*+?()[]{}|/-")


def string_pattern_regex(pattern: str) -> str:
    """The dialect regex of the raw JSON string texts (between the quotes, unescaped
    characters only) whose value an ECMAScript `pattern` finds a match in. ConstraintError
    with the position in `pattern` when it is outside what is supported or matches no such
    text."""
    if not isinstance(pattern, str):
        raise ConstraintError("pattern must be a string")
    python, origin = _translate(pattern)
    branches = [b for b in (_branch_regex(python, start, end, origin)
                            for start, end in _top_level_branches(python)) if b is not None]
    if not branches:
        raise ConstraintError("the pattern matches no string made of characters that need no "
                              "escape in JSON", position=0,
                              hint="a pattern must match some text without \", \\ or control "
                                   "characters")
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _top_level_branches(p: str) -> list[tuple[int, int]]:
    """The spans of the alternatives of `p` outside any group or class."""
    spans, start, depth, i, in_class = [], 0, 0, 0, False
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            spans.append((start, i))
            start = i + 1
        i += 1
    return [*spans, (start, len(p))]


def _branch_regex(python: str, start: int, end: int, origin: list[int]) -> str | None:
    """One top-level alternative: its own leading ^ / trailing $ anchor it, otherwise any
    text may come before / after (search semantics). None: it matches no JSON-safe text."""
    text = python[start:end]
    starts, ends = text.startswith("^"), _ends_with_dollar(text)
    body = text[1 if starts else 0: len(text) - 1 if ends else len(text)]
    offset = start + (1 if starts else 0)
    try:
        tree = parse_pattern(body) if body else None
    except ConstraintError as exc:
        position = None if exc.position is None else origin[min(exc.position + offset,
                                                                len(origin) - 1)]
        raise type(exc)(exc.message, position=position, hint=exc.hint) from None
    emitted = "" if tree is None else _emit_seq(tree.data)
    if emitted is None:
        return None
    any_text = "[^\"\\\\\\x00-\\x1f]*"
    return (("" if starts else any_text) + (f"(?:{emitted})" if emitted else "")
            + ("" if ends else any_text)) or "(?:)"


def _ends_with_dollar(p: str) -> bool:
    backslashes = len(p[:-1]) - len(p[:-1].rstrip("\\"))
    return p.endswith("$") and backslashes % 2 == 0 and len(p) > 0


def _translate(p: str) -> tuple[str, list[int]]:
    """ECMAScript pattern text -> Python pattern text with ASCII classes, and for each
    character of the result the position in `p` it came from."""
    out: list[str] = []
    origin: list[int] = []
    i, in_class = 0, False

    def put(text: str, at: int) -> None:
        out.append(text)
        origin.extend([at] * len(text))

    while i < len(p):
        c = p[i]
        if c == "\\":
            if i + 1 == len(p):
                raise ConstraintError("the pattern ends in a lone backslash", position=i)
            put(_escape(p, i, in_class), i)
            i += 2 + _escape_len(p, i)
            continue
        if in_class:
            in_class = c != "]"
            put(c, i)
        elif c == "[":
            if p.startswith(("[]", "[^]"), i):
                raise ConstraintError("empty classes [] and [^] are not supported", position=i,
                                      hint="write [\\s\\S] for any character")
            in_class = True
            put(c, i)
        elif c == ".":
            put(_ANY, i)
        elif p.startswith("(?<", i) and not p.startswith(("(?<=", "(?<!"), i):
            put("(?P<", i)
            i += 3
            continue
        elif p.startswith(("(?P", "(?#"), i):
            raise ConstraintError(f"{p[i:i + 3]} is not ECMAScript syntax", position=i)
        elif p.startswith("{,", i):  # Python: a quantifier; ECMAScript: literal text
            raise ConstraintError("{,n} is not an ECMAScript quantifier", position=i,
                                  hint="write {0,n}, or \\{ for a literal brace")
        else:
            put(c, i)
        i += 1
    return "".join(out), origin


def _escape_len(p: str, i: int) -> int:
    """How many characters after the escape letter an escape at `i` spans."""
    letter = p[i + 1]
    if letter == "c":
        return 1
    if (letter == "u" or letter in "pP") and p.startswith("{", i + 2):
        return p.index("}", i) - i - 1
    return {"x": 2, "u": 4}.get(letter, 0)


def _escape(p: str, i: int, in_class: bool) -> str:
    letter = p[i + 1]
    if letter in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[letter] if in_class else f"[{_CLASS_ESCAPES[letter]}]"
    if letter.lower() in _CLASS_ESCAPES:
        if in_class:
            raise ConstraintError(f"\\{letter} inside a class is not supported", position=i,
                                  hint="list the characters the class allows instead")
        return f"[^{_CLASS_ESCAPES[letter.lower()]}]"
    if letter in _PLAIN_ESCAPES and not (letter == "0" and p[i + 2: i + 3].isdigit()):
        return _PLAIN_ESCAPES[letter]
    if letter == "b" and in_class:
        return "\\x08"
    if letter == "c":
        control = p[i + 2: i + 3]
        if not (control.isascii() and control.isalpha()):
            raise ConstraintError("\\c must be followed by a letter", position=i)
        return f"\\x{ord(control) % 32:02x}"
    if letter == "u" and p.startswith("{", i + 2):
        return f"\\U{int(p[i + 3: p.index('}', i)], 16):08x}"
    if letter in "xu":
        return p[i: i + 2 + _escape_len(p, i)]
    if letter in "pP":
        ranges = _property_ranges(p, i)
        if letter == "P":
            if in_class:
                raise ConstraintError("\\P inside a class is not supported", position=i,
                                      hint="list the characters the class allows instead")
            return f"[^{ranges}]"
        return ranges if in_class else f"[{ranges}]"
    if letter == "k" or letter.isdigit():
        raise ConstraintError("backreferences are not supported", position=i,
                              hint="a regular language cannot repeat a captured text")
    if letter in "bB":
        return "\\" + letter  # the dialect refuses it, with its hint
    if letter in _SYNTAX:
        return "\\" + letter if letter != "/" else "/"
    raise ConstraintError(f"\\{letter} is not an ECMAScript escape", position=i,
                          hint="escape only syntax characters; write the character itself")


_CATEGORIES = {"L": "L", "Letter": "L", "Lu": "Lu", "Uppercase_Letter": "Lu", "Ll": "Ll",
               "Lowercase_Letter": "Ll", "N": "N", "Number": "N", "Nd": "Nd",
               "Decimal_Number": "Nd", "P": "P", "Punctuation": "P", "Z": "Z",
               "Separator": "Z", "S": "S", "Symbol": "S"}


def _property_ranges(p: str, i: int) -> str:
    """The class ranges of \\p{Category} (a Unicode general category, from Python's
    unicodedata tables)."""
    end = p.find("}", i)
    name = p[i + 3: end] if p.startswith("{", i + 2) and end != -1 else ""
    if name.startswith(("gc=", "General_Category=")):
        name = name.split("=", 1)[1]
    if name not in _CATEGORIES:
        raise ConstraintError(f"Unicode property {name or p[i:i + 3]!r} is not supported",
                              position=i, hint="use a general category such as \\p{L} or "
                                               "\\p{Nd}, or list the characters")
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}"
                   for lo, hi in _category(_CATEGORIES[name]))


@lru_cache(maxsize=16)
def _category(prefix: str) -> Intervals:
    import unicodedata

    found = [(cp, cp) for cp in range(0x110000)
             if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)).startswith(prefix)]
    return merge(found)


# -- emitting, every class narrowed to JSON_SAFE ------------------------------------------------
def _esc(cp: int) -> str:
    ch = chr(cp)
    if ch in "\\.^$|?*+()[]{}-/#&~ ":
        return "\\" + ch
    if " " < ch < "\x7f":
        return ch
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def _emit_set(ivs: Intervals) -> str | None:
    ivs = merge([(max(lo, slo), min(hi, shi)) for lo, hi in ivs for slo, shi in JSON_SAFE
                 if lo <= shi and hi >= slo])
    if not ivs:
        return None
    if len(ivs) == 1 and ivs[0][0] == ivs[0][1]:
        return _esc(ivs[0][0])
    return "[" + "".join(_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}"
                         for lo, hi in ivs) + "]"


def _emit_seq(items: Sequence[Any]) -> str | None:
    parts = []
    for op, av in items:
        part = _emit_item(op, av)
        if part is None:
            return None
        parts.append(part)
    return "".join(parts)


def _emit_item(op: Any, av: Any) -> str | None:
    if op in CHAR_OPS:
        return _emit_set(charset(op, av))
    if op is sre.SUBPATTERN:
        inner = _emit_seq(av[3].data)
        return None if inner is None else f"(?:{inner})"
    if op is sre.BRANCH:
        kept = [b for b in (_emit_seq(branch.data) for branch in av[1]) if b is not None]
        return f"(?:{'|'.join(kept)})" if kept else None
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        lo, hi, sub = av
        body = _emit_seq(sub.data)
        if body is None or hi == 0:
            return "" if lo == 0 else None
        top = "" if hi == sre.MAXREPEAT else str(hi)
        return f"(?:{body}){{{lo},{top}}}"
    raise ConstraintError(f"unsupported regex construct {op}")  # pragma: no cover - dialect


__all__ = ["JSON_SAFE", "string_pattern_regex"]
