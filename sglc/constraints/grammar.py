"""Context-free constraints: Lark grammars, and JSON schemas no regex can express.

A gen or a request may be constrained by a grammar in Lark syntax (llguidance's dialect of
it: `start` is the start rule, terminals in capitals, `/regex/` and `"literal"` terminals,
`%ignore`, `%import common.X`). Such constraints are decoded by llguidance, not by the regex
automata: this module checks the grammar text (an error at its own line and column) and
turns it into the llguidance grammar the engine compiles.

JSON schemas take the regex path when `to_regex` accepts them (it is faster and feeds
jump-forward); a schema it refuses (recursive `$ref`, `patternProperties`, unbounded nesting)
takes the grammar path when llguidance accepts it, with the same compact layout (no
whitespace, `,` and `:` separators) as the regex path. `route_schema` says which path a
schema takes, and why. Likewise a Lark grammar whose language is regular, in a way the lexer
cannot blur (`lark_regex.grammar_regex`: rules that never recurse, terminals that split where
the rules do), takes the regex path; `route_grammar` says which path a grammar takes.

    lark_grammar(text)              the llguidance grammar of a Lark text; GrammarError
    schema_grammar(schema_text)     the llguidance grammar of a JSON schema; ConstraintError
    route_schema(schema_text)       SchemaRoute: regex or grammar (and the regex refusal)
    route_grammar(text)             GrammarRoute: regex (a regular Lark grammar) or grammar
    request_constraint(...)         an engine request's constraint: a regex or a grammar
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from llguidance import LLMatcher

from sglc.constraints.canonical import Constraint, request_regex, to_regex
from sglc.constraints.errors import ConstraintError
from sglc.constraints.lark_regex import NotRegular, grammar_regex
from sglc.constraints.schema import recursion_cut
from sglc.constraints.schema_subset import DEFAULT_MAX_REF_DEPTH

__all__ = [
    "GrammarError",
    "GrammarRoute",
    "RequestConstraint",
    "SchemaRoute",
    "is_llguidance_grammar",
    "lark_grammar",
    "request_constraint",
    "route_grammar",
    "route_schema",
    "schema_grammar",
]

# the JSON layout of the regex path's "compact" whitespace, as llguidance options
_COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
# llguidance's error messages start with "at LINE(COL): " or "LINE(COL): "
_LOCATED = re.compile(r"^(?:at )?(\d+)\((\d+)\):\s*")


class GrammarError(ConstraintError):
    """A grammar llguidance rejects: `line` and `column` (1-based, in the grammar text) of
    the offending construct where llguidance names one, else None."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (grammar line {self.line}, column {self.column})"


def is_llguidance_grammar(text: str) -> bool:
    """Whether `text` is already an llguidance grammar (its JSON form), not Lark text."""
    return text.lstrip().startswith("{")


def lark_grammar(text: str) -> str:
    """The llguidance grammar of a Lark grammar text (an llguidance grammar is returned as
    it is, once valid); GrammarError where llguidance rejects it."""
    if not text.strip():
        raise GrammarError("the grammar is empty", hint='write at least a start rule, e.g. '
                           'start: "yes" | "no"')
    grammar = text if is_llguidance_grammar(text) else LLMatcher.grammar_from_lark(text)
    _check(grammar)
    return grammar


def _check(grammar: str) -> None:
    try:
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    except ValueError as exc:  # not JSON, or not an llguidance grammar object
        raise GrammarError(f"not a grammar: {exc}") from None
    if is_error:
        raise _grammar_error(messages[0] if messages else "invalid grammar")


def _grammar_error(message: str) -> GrammarError:
    """llguidance's message, without its source excerpt, and its position."""
    first = message.strip().splitlines()[0] if message.strip() else "invalid grammar"
    found = _LOCATED.match(first)
    if found is None:
        return GrammarError(first)
    text = first[found.end():].strip()
    if text.endswith("(in regex): regex parse error:"):  # the regex's own error follows
        detail = next((ln.strip() for ln in message.splitlines()
                       if ln.strip().startswith("error:")), "")
        text = text.removesuffix(" (in regex): regex parse error:") + (f": {detail}" if detail else "")
    return GrammarError(text, line=int(found.group(1)), column=int(found.group(2)))


def schema_grammar(schema_text: str) -> str:
    """The llguidance grammar of a JSON schema (JSON text), in the regex path's compact
    layout; ConstraintError where llguidance rejects the schema."""
    try:
        schema = json.loads(schema_text)
        grammar = LLMatcher.grammar_from_json_schema(schema, overrides=_COMPACT_JSON)
    except ValueError as exc:
        raise ConstraintError(f"not a JSON schema: {exc}") from None
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise ConstraintError(f"the grammar path refuses this schema too: "
                              f"{(messages or ['invalid schema'])[0].strip()}")
    return grammar


@dataclass(frozen=True)
class SchemaRoute:
    """How a JSON schema is decoded: under `regex` (the regex path) or under `grammar` (an
    llguidance grammar; `refusal` is why the regex path could not take it)."""

    regex: str | None = None
    grammar: str | None = None
    refusal: ConstraintError | None = None

    @property
    def path(self) -> str:
        return "grammar" if self.grammar is not None else "regex"


def route_schema(schema_text: str) -> SchemaRoute:
    """The regex path when `to_regex` takes the schema exactly, else the grammar path when
    llguidance takes it; otherwise the regex path's ConstraintError (with its JSON pointer).
    A recursive schema the regex path only bounds (its $refs expanded a few levels deep)
    takes the grammar path, which is exact, and keeps the bounded regex only where
    llguidance refuses it."""
    try:
        regex = to_regex(Constraint("schema", schema=schema_text))
    except ConstraintError as refusal:
        try:
            return SchemaRoute(grammar=schema_grammar(schema_text), refusal=refusal)
        except ConstraintError:
            raise refusal from None
    cut = recursion_cut(schema_text) if "$ref" in schema_text else None
    if cut is None:
        return SchemaRoute(regex=regex)
    bounded = ConstraintError(f"a recursive reference, which the regex path bounds at depth "
                              f"{DEFAULT_MAX_REF_DEPTH}", pointer=cut)
    try:
        return SchemaRoute(grammar=schema_grammar(schema_text), refusal=bounded)
    except ConstraintError:
        return SchemaRoute(regex=regex)


@dataclass(frozen=True)
class GrammarRoute:
    """How a grammar is decoded: under `regex` (the regex path: a regular Lark grammar) or
    under `grammar` (llguidance; `refusal` is why the regex path does not take it)."""

    regex: str | None = None
    grammar: str | None = None
    refusal: str | None = None

    @property
    def path(self) -> str:
        return "grammar" if self.grammar is not None else "regex"


@lru_cache(maxsize=256)
def route_grammar(text: str) -> GrammarRoute:
    """The regex path when the grammar (Lark text) is regular in the sense of
    `lark_regex.grammar_regex` and its regex is in the regex dialect, else the grammar path.
    GrammarError where llguidance rejects the grammar (either way: it is checked first)."""
    grammar = lark_grammar(text)
    if is_llguidance_grammar(text):
        return GrammarRoute(grammar=grammar, refusal="an llguidance grammar (JSON form)")
    try:
        regex = to_regex(Constraint("regex", pattern=grammar_regex(text)))
    except (NotRegular, ConstraintError) as refusal:
        message = refusal.message if isinstance(refusal, ConstraintError) else str(refusal)
        return GrammarRoute(grammar=grammar, refusal=message)
    return GrammarRoute(regex=regex)


@dataclass(frozen=True)
class RequestConstraint:
    """An engine request's constraint: a canonical `regex`, or an llguidance `grammar`."""

    regex: str | None = None
    grammar: str | None = None


def request_constraint(regex: str | None, json_schema: str | None,
                       choices: Sequence[str] | None,
                       grammar: str | None) -> RequestConstraint | None:
    """The constraint of a request as `SamplingParams` spells it (None: unconstrained).
    `grammar` (Lark text, or an llguidance grammar) takes the grammar path unless it is
    regular (`route_grammar`); a `json_schema` the regex path refuses takes the grammar path
    too. ConstraintError (GrammarError for a grammar)."""
    if grammar is not None:
        route = route_grammar(grammar)
        return RequestConstraint(regex=route.regex, grammar=route.grammar)
    if json_schema is not None:
        route = route_schema(json_schema)
        return RequestConstraint(regex=route.regex, grammar=route.grammar)
    found = request_regex(regex, None, choices)
    return None if found is None else RequestConstraint(regex=found)
