"""The official JSON-Schema-Test-Suite (draft 2020-12, vendored under
tests/data/json_schema_test_suite, see its README) against a schema -> regex compiler.

A group is one schema with its test instances. For a group whose schema compiles:

    soundness   no invalid instance is accepted in any of the ways a generator could write it
                (`spellings`: compact JSON with and without \\u escapes, every key order),
                and every text sampled from the regex (`sample_texts`) is JSON that the
                reference validator (`jsonschema`, format assertion on) accepts
    coverage    how many valid instances are accepted as sglc writes them (`sglc_text`:
                compact, keys in the instance's order, no escapes beyond JSON's own)

Shared by the conformance test and benchmarks/json_schema_coverage.py.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

SUITE_DIR = Path(__file__).resolve().parent.parent / "data" / "json_schema_test_suite"
_MAX_SPELLINGS = 64  # key orders tried per instance
_VALIDATOR = jsonschema.Draft202012Validator
_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


@dataclass(frozen=True)
class Instance:
    description: str
    data: Any
    valid: bool


@dataclass(frozen=True)
class Group:
    path: str  # relative to SUITE_DIR
    index: int
    description: str
    schema: Any
    instances: tuple[Instance, ...]

    @property
    def name(self) -> str:
        return f"{self.path}#{self.index}: {self.description}"

    @property
    def asserts_format(self) -> bool:
        """The optional format files test format as an assertion; elsewhere it annotates."""
        return self.path.startswith("optional/format/")


def load_groups(suite_dir: Path = SUITE_DIR) -> list[Group]:
    """Every group of every vendored suite file, in file order."""
    groups = []
    for path in sorted(suite_dir.rglob("*.json")):
        rel = path.relative_to(suite_dir).as_posix()
        for index, raw in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            instances = tuple(Instance(t["description"], t["data"], t["valid"])
                              for t in raw["tests"])
            groups.append(Group(rel, index, raw["description"], raw["schema"], instances))
    return groups


def sglc_text(value: Any) -> str:
    """An instance written the way sglc generates JSON (compact whitespace)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def spellings(value: Any) -> list[str]:
    """Compact spellings of an instance a generator might produce: with and without \\u
    escapes, the keys of each object in every order (at most _MAX_SPELLINGS in all)."""
    out: dict[str, None] = {}
    for shape in itertools.islice(_orders(value), _MAX_SPELLINGS):
        for ascii_only in (False, True):
            out[json.dumps(shape, ensure_ascii=ascii_only, separators=(",", ":"))] = None
    return list(out)


def _orders(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for keys in itertools.permutations(value):
            for values in itertools.product(*[list(itertools.islice(_orders(value[k]), 8))
                                              for k in keys]):
                yield dict(zip(keys, values, strict=True))
    elif isinstance(value, list):
        for items in itertools.product(*[list(itertools.islice(_orders(v), 8)) for v in value]):
            yield list(items)
    else:
        yield value


@dataclass
class GroupResult:
    """What one compiled regex did on one group."""

    violations: list[str] = field(default_factory=list)  # why each is a soundness violation
    num_valid: int = 0
    num_valid_accepted: int = 0


def check_group(group: Group, regex: str, num_samples: int = 20, seed: int = 0) -> GroupResult:
    """Soundness and coverage of `regex` (Python `re` fullmatch semantics) on `group`."""
    result = GroupResult()
    compiled = re.compile(regex)
    for inst in group.instances:
        if inst.valid:
            result.num_valid += 1
            result.num_valid_accepted += compiled.fullmatch(sglc_text(inst.data)) is not None
            continue
        for text in spellings(inst.data):
            if compiled.fullmatch(text):
                result.violations.append(f"accepts invalid instance {inst.description!r}: "
                                         f"{text!r}")
                break
    validator = _VALIDATOR(group.schema, format_checker=_FORMATS if group.asserts_format
                           or _uses_format(group.schema) else None)
    rng = random.Random(seed)
    # the suite outranks the reference validator, whose `pattern` is Python's re (it calls
    # "\ufeff" no match for ECMAScript's \s, which the suite says matches)
    suite_valid = {_key(inst.data) for inst in group.instances if inst.valid}
    for text in sample_texts(regex, num_samples, rng):
        try:
            value = json.loads(text)
        except ValueError:
            result.violations.append(f"sampled text is not JSON: {text!r}")
            continue
        if _key(value) in suite_valid:
            continue
        try:
            errors = [e for e in validator.iter_errors(value) if not _python_re_verdict(e)]
        except re.error:  # a pattern Python's re cannot read (\p{L}): the suite alone judges
            break
        error = jsonschema.exceptions.best_match(errors)
        if error is not None:
            result.violations.append(f"sampled text {text!r} is invalid: {error.message}")
    return result


_PYTHON_DIFFERS = re.compile(r"\\[dDwWsS]|(?<!\\)\.|\$")


def _python_re_verdict(error: jsonschema.ValidationError) -> bool:
    """Whether `error` only says that Python's re, which jsonschema matches `pattern` with,
    reads the pattern differently from ECMAScript (\\d \\w \\s and their negations are
    Unicode-wide in Python, . and $ differ on line terminators): the reference cannot judge
    it, the suite's own instances and tests/constraints do."""
    if error.context:
        return all(_python_re_verdict(e) for e in error.context)
    return error.validator in ("pattern", "patternProperties") and bool(
        _PYTHON_DIFFERS.search(json.dumps(error.schema)))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _uses_format(schema: Any) -> bool:
    return '"format"' in json.dumps(schema)


# -- random texts of a regex -------------------------------------------------------------------
try:  # Python 3.11+
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_MAX_EXTRA_REPEATS = 3
_CATEGORY_CHARS = {
    # a few members of each Python category, non-ASCII ones included: a sampled text must be
    # able to show that a pattern's \d or \w is wider than ECMAScript's
    _sre.CATEGORY_DIGIT: "05\u0660\uff19", _sre.CATEGORY_NOT_DIGIT: "a -\u00e9",
    _sre.CATEGORY_WORD: "aZ_9\u00e9\u0660", _sre.CATEGORY_NOT_WORD: " -!\u2028",
    _sre.CATEGORY_SPACE: " \t\u00a0\u2028\u3000", _sre.CATEGORY_NOT_SPACE: "a0\u00e9",
}


def sample_texts(regex: str, count: int, rng: random.Random) -> list[str]:
    """`count` random texts that fullmatch `regex` (repeats drawn short; each class draws
    from its ends and a random member, so edge characters show up)."""
    tree = _sre_parse.parse(regex)
    out = []
    for _ in range(count * 4):
        text = "".join(_walk(tree.data, rng))
        if re.fullmatch(regex, text):  # a class draw can miss a negated class; retry
            out.append(text)
        if len(out) == count:
            break
    return out


def _walk(items: Any, rng: random.Random) -> Iterator[str]:
    for op, av in items:
        if op is _sre.LITERAL:
            yield chr(av)
        elif op is _sre.ANY:
            yield rng.choice("a\u00e9 \u2028")
        elif op is _sre.IN:
            yield _class_char(av, rng)
        elif op is _sre.NOT_LITERAL:
            yield rng.choice([c for c in "a\u00e9 0\"\\\n" if ord(c) != av])
        elif op is _sre.SUBPATTERN:
            yield from _walk(av[-1].data, rng)
        elif op is _sre.BRANCH:
            yield from _walk(rng.choice(av[1]).data, rng)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, high, body = av
            top = low + _MAX_EXTRA_REPEATS if high == _sre.MAXREPEAT else min(
                high, low + _MAX_EXTRA_REPEATS)
            for _ in range(rng.randint(low, top) if rng.random() < 0.7 else low):
                yield from _walk(body.data, rng)
        elif op is _sre.AT:
            continue
        else:  # pragma: no cover - outside the dialect
            raise ValueError(f"cannot sample {op}")


def _class_char(items: Any, rng: random.Random) -> str:
    negate = any(item is _sre.NEGATE for item, _ in items)
    candidates: list[str] = []
    for item, value in items:
        if item is _sre.LITERAL:
            candidates.append(chr(value))
        elif item is _sre.RANGE:
            lo, hi = value
            candidates += [chr(lo), chr(hi), chr(rng.randint(lo, hi))]
        elif item is _sre.CATEGORY:
            candidates += list(_CATEGORY_CHARS.get(value, "a"))
    if negate:
        excluded = set(candidates)
        candidates = [c for c in "a\u00e9 0\u0660-\"\\\n\x7f\ud7ff" if c not in excluded]
    return rng.choice(candidates or ["a"])


__all__ = ["SUITE_DIR", "Group", "GroupResult", "Instance", "check_group", "load_groups",
           "sample_texts", "sglc_text", "spellings"]
