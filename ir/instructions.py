"""The SGL IR instruction set: frozen dataclasses, one per instruction, with exact semantics.

Execution model (what every docstring below relies on):

- **Frames.** Each call of an `IRFunction` runs in a frame holding named variables (a flat,
  per-function namespace: user names as written, compiler temporaries `%1`, `%2`, ...) and
  exactly one **stream**: the prompt state of that call (chat messages with at most one open
  role turn, or raw text for base models).
  Stream instructions have no stream operand; they act on the frame's stream.
- **Operands.** A `Var` reads a variable; reading one that is unbound on the path taken is a
  runtime error reported at the instruction's span. A `Const` is a literal scalar (str, int,
  float, bool, None); lists and dicts are always built at run time (`BuildList`, `BuildDict`)
  so that no two executions share a mutable value.
- **Values** are Python values: str, int, float, bool, None, list, dict. A schema value is a
  dict keyed by field name. Assignment binds by reference (list methods mutate in place).
- **Control.** A function is a tuple of basic blocks; the first runs first; each block ends in
  exactly one terminator (`Branch`, `Jump`, `Return`) and holds no other terminator.
- **Text.** Where an instruction turns a value into text it uses `sglc.ir.values.to_text`
  (the builtin `str()`): strs unchanged, `True`/`False`, `None`, numbers and containers as
  Python prints them.
- **Spans.** Every instruction has a keyword-only `span` (file, line, col of the SGL source
  that produced it); runtime errors report it, with the SGL call stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from sglc.constraints import ConstraintKind
from sglc.lang import BUILTINS  # the builtins `CallBuiltin` may name: one record each
from sglc.source import Span

NO_SPAN = Span("<ir>", 0, 0, 0, 0)
"""The span of compiler-made instructions that no source line stands for."""

Scalar = str | int | float | bool | None


# ---- operands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Var:
    """Read the variable `name` of the current frame."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    """A literal scalar."""

    value: Scalar

    def __str__(self) -> str:
        from sglc.ir.values import const_repr

        return const_repr(self.value)


Operand = Var | Const
KwArgs = tuple[tuple[str, Operand], ...]


@dataclass(frozen=True)
class Instr:
    """Base of all instructions."""

    span: Span = field(default=NO_SPAN, kw_only=True, compare=False)

    @property
    def opname(self) -> str:
        return OPNAMES[type(self)]


# ---- value ops ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy(Instr):
    """`dest = src`: bind `dest` to the value of `src` (same object for lists and dicts)."""

    dest: str
    src: Operand


@dataclass(frozen=True)
class BinOp(Instr):
    """`dest = left OP right`, OP in `+ - * / // % **`, with Python semantics (`+` also
    concatenates str and list; `/` is true division; a ZeroDivisionError is a runtime error)."""

    dest: str
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class UnaryOp(Instr):
    """`dest = OP operand`, OP in `- + not` (Python semantics; `not` gives a bool)."""

    dest: str
    op: str
    operand: Operand


@dataclass(frozen=True)
class Compare(Instr):
    """`dest = left OP right` (a bool), OP in `== != < <= > >= in not in` (Python semantics).
    A chained comparison `a < b < c` is lowered to several `Compare`s joined by branches."""

    dest: str
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class BuildList(Instr):
    """`dest = [items...]`: a new list."""

    dest: str
    items: tuple[Operand, ...]


@dataclass(frozen=True)
class BuildDict(Instr):
    """`dest = {k: v, ...}`: a new dict, entries in order (a later equal key wins)."""

    dest: str
    keys: tuple[Operand, ...]
    values: tuple[Operand, ...]


@dataclass(frozen=True)
class Index(Instr):
    """`dest = obj[index]` (list/str by int, negative from the end; dict by key). A missing
    index or key is a runtime error."""

    dest: str
    obj: Operand
    index: Operand


@dataclass(frozen=True)
class Slice(Instr):
    """`dest = obj[start:stop]` on a list or str; a None bound means the end."""

    dest: str
    obj: Operand
    start: Operand | None
    stop: Operand | None


@dataclass(frozen=True)
class Attr(Instr):
    """`dest = obj.name` where obj is a schema value: `obj[name]` of the dict."""

    dest: str
    obj: Operand
    name: str


@dataclass(frozen=True)
class Pluck(Instr):
    """`dest = [item[name] for item in obj]`: reads `b.x` of a fork handle (a list of the
    branches' dicts, see `Fork`)."""

    dest: str
    obj: Operand
    name: str


@dataclass(frozen=True)
class CallBuiltin(Instr):
    """`dest = name(*args, **kwargs)` for a builtin of `BUILTINS` (the table says each one's
    semantics). `dest` is None when the value is discarded."""

    dest: str | None
    name: str
    args: tuple[Operand, ...]
    kwargs: KwArgs = ()


@dataclass(frozen=True)
class CallMethod(Instr):
    """`dest = obj.method(*args)` with Python semantics for the str, list and dict methods
    the checker allows (`strip`, `split`, `append`, `pop`, `get`, `keys`, ...). List methods
    mutate the list in place. `dest` is None when the value is discarded."""

    dest: str | None
    obj: Operand
    method: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class Format(Instr):
    """`dest = "".join(to_text(p) for p in parts)`: string interpolation as a value."""

    dest: str
    parts: tuple[Operand, ...]


# ---- stream ops --------------------------------------------------------------------------


@dataclass(frozen=True)
class Append(Instr):
    """Append `to_text(value)` to the stream: to the open role turn, or, when no turn is open,
    as raw text (a chat-template renderer puts raw text outside any message)."""

    value: Operand


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class RoleBegin(Instr):
    """Open a `role` turn on the stream. Opening one while a turn is open is a runtime error
    (the checker rejects nesting statically)."""

    role: str


@dataclass(frozen=True)
class RoleEnd(Instr):
    """Close the open `role` turn: its text becomes one message (the chat template adds the
    end-of-turn marker)."""

    role: str


@dataclass(frozen=True)
class Constraint:
    """What a `gen` may produce, as written (before the constraint pass makes it a regex).

    kind  str: any text (`max_len`, when set, bounds its length in characters); int, float,
          bool; regex: `pattern` as written between the slashes; choice: one of `choices`;
          schema: the JSON schema `IRProgram.schemas[schema]` (named schemas, and container
          types such as `list[int]` registered under their printed name); json: any JSON;
          grammar: `pattern` is a context-free grammar's Lark text.
    """

    kind: ConstraintKind
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    schema: str | None = None
    max_len: int | None = None


ValueType = Literal["str", "int", "float", "bool", "json"]

VALUE_TYPE_OF: dict[str, ValueType] = {
    "str": "str", "regex": "str", "choice": "str", "int": "int", "float": "float",
    "bool": "bool", "schema": "json", "json": "json", "grammar": "str",
}
"""A gen's value type follows from its constraint's kind."""


@dataclass(frozen=True)
class Gen(Instr):
    """Generate text from the model with the stream as the prompt, append the text to the
    stream, and bind `dest` to `values.parse_generated(value_type, text)`.

    `regex` is the one canonical regex the text must fullmatch (set by the constraint pass;
    None means unconstrained). `params` are gen parameters by name (`max_tokens`, `stop`, ...:
    the records of `sglc.lang.GEN_PARAMS`; a stop string is not part of the text), evaluated
    when the gen runs; a parameter not given takes the frame's default (see `IRFunction.
    defaults`), else the record's. With `n`, `dest` is bound to the list of the n samples'
    values and nothing is appended. What the gen did (finish reason, token counts, logprobs)
    is kept for `meta(dest)`. `constraint` keeps the source form for messages and tools.
    `narrowed_by` names the specs the spec pass intersected into `regex` (spec pushdown).
    `grammar` (set by the constraint pass instead of `regex`) is the text's context-free
    grammar: Lark text, or the llguidance grammar of a schema no regex expresses.
    """

    dest: str
    constraint: Constraint
    value_type: ValueType
    regex: str | None
    params: KwArgs = ()
    narrowed_by: tuple[str, ...] = ()
    grammar: str | None = None


@dataclass(frozen=True)
class Select(Instr):
    """Score each option (a list of str) as a continuation of the stream, in one batched pass
    sharing the prefix; rank them by `choices_method` (default: the length-normalized
    log-likelihood) and pick the best (the first on ties), or with a `temperature` sample one;
    append it to the stream and bind `dest` to it. `params` are select parameters by name
    (`sglc.lang.SELECT_PARAMS`); every option's score is kept for `meta(dest)`."""

    dest: str
    options: Operand
    params: KwArgs = ()


ForkJoin = Literal["gather", "append"]


@dataclass(frozen=True)
class Fork(Instr):
    """`fork N as dest`, fork and join in one instruction. Evaluate n = `count` (n < 1 is a
    runtime error); run the function `body` n times concurrently, branch i on its own copy of
    the current stream (open role turn included) with its first param (`dest.index`) bound to
    i and the params named in `captures` bound to this frame's same-named variables (by
    reference). The body returns a dict of the variables its branch bound; `dest` is bound to
    the list of the n dicts in branch order, each with "text" added: the branch's stream text
    at its end (so `b.x` is `Pluck(b, "x")`, `b.text` is `Pluck(b, "text")`). With `join`
    "gather" the current stream is unchanged; with "append", each branch's own text (what its
    stream gained after the fork) is appended to it, in branch order. Completes when all
    branches have returned."""

    dest: str
    count: Operand
    body: str
    captures: tuple[str, ...]
    join: ForkJoin = "gather"


@dataclass(frozen=True)
class ParallelMap(Instr):
    """`let dest = parallel for x in items`. Evaluate `items` (iterated as a list); for each
    item run the function `body` concurrently on its own copy of the current stream, its first
    param bound to the item and the params named in `captures` to this frame's same-named
    variables. `dest` is bound to the list of the bodies' return values, in item order. The
    current stream is unchanged."""

    dest: str
    items: Operand
    body: str
    captures: tuple[str, ...]


@dataclass(frozen=True)
class Call(Instr):
    """Call the SGL function `fn` (a qualified name in `IRProgram.functions`) with a NEW empty
    stream: args bind params in order, kwargs by name, missing params take their defaults
    (copied). `dest` (None when discarded) is bound to its return value (None if it returns
    nothing). Concurrent calls in parallel branches may batch."""

    dest: str | None
    fn: str
    args: tuple[Operand, ...]
    kwargs: KwArgs = ()


@dataclass(frozen=True)
class HostCall(Instr):
    """Call the extern function `fn` (a qualified name in `IRProgram.externs`; the host binds
    it by its short name) with these args; bind `dest` to what it returns. An exception in
    the host function is a runtime error at this span. No stream effect."""

    dest: str | None
    fn: str
    args: tuple[Operand, ...]
    kwargs: KwArgs = ()


@dataclass(frozen=True)
class Prefetch(Instr):
    """A hint, no effect on values or on the stream: every upcoming branch's (or callee's)
    prompt starts with the stream made by applying `prefix` (constant `Append`s and
    `RoleBegin`/`RoleEnd` only) to a copy of the current stream (or, when `fresh`, to a new
    empty stream, the head of a called fn); the runtime may prefill it into the prefix cache
    once before fanning out. A runtime may ignore it."""

    prefix: tuple[Instr, ...]
    fresh: bool = False


# ---- control -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Branch(Instr):
    """Terminator: go to `then_label` when `bool(cond)` is true, else to `else_label`."""

    cond: Operand
    then_label: str
    else_label: str


@dataclass(frozen=True)
class Jump(Instr):
    """Terminator: go to `label`."""

    label: str


@dataclass(frozen=True)
class Return(Instr):
    """Terminator: end the frame; its value is `value` (None when absent). The frame's stream
    is dropped (a caller sees only the value)."""

    value: Operand | None = None


# ---- specs -------------------------------------------------------------------------------

SpecKind = Literal["requires", "ensures", "assert"]


@dataclass(frozen=True)
class AssertSpec(Instr):
    """Check a spec: when `bool(cond)` is false, raise `SpecViolation(kind, message)` at this
    span. `message` is evaluated eagerly; None gives a default message naming the clause.
    `requires` checks sit at the entry of the fn; `ensures` checks just before each `Return`,
    with `result` bound to the returned value. An `ensures` with `retries` > 0 (`ensures C
    retry N`) that fails re-runs the fn's call from its start, up to `retries` times, before
    the violation is raised. `pred` is the condition's spec term (`sglc.ir.spec_terms`: its
    regular fragment, for the spec pass; None for a hand-built instruction); the spec pass
    removes the checks it proves."""

    cond: Operand
    kind: SpecKind
    message: Operand | None = None
    pred: tuple | None = None
    retries: int = 0


TERMINATORS = (Branch, Jump, Return)
Terminator = Branch | Jump | Return

OPNAMES: dict[type, str] = {
    Copy: "copy", BinOp: "binop", UnaryOp: "unop", Compare: "compare",
    BuildList: "build_list", BuildDict: "build_dict", Index: "index", Slice: "slice",
    Attr: "attr", Pluck: "pluck", CallBuiltin: "call_builtin", CallMethod: "call_method",
    Format: "format", Append: "append", RoleBegin: "role_begin", RoleEnd: "role_end",
    Gen: "gen", Select: "select", Fork: "fork", ParallelMap: "parallel_map", Call: "call",
    HostCall: "host_call", Prefetch: "prefetch", Branch: "branch", Jump: "jump",
    Return: "return", AssertSpec: "assert_spec",
}
INSTRUCTIONS: dict[str, type] = {name: cls for cls, name in OPNAMES.items()}



def defined_var(instr: Instr) -> str | None:
    """The variable an instruction binds, if any."""
    return getattr(instr, "dest", None)


def used_vars(instr: Instr) -> list[str]:
    """The variables an instruction reads, in field order (captures included)."""
    names: list[str] = []
    for f in fields(instr):
        if f.name == "span":
            continue
        _collect(getattr(instr, f.name), names)
    if isinstance(instr, (Fork, ParallelMap)):
        names.extend(instr.captures)
    return names


def _collect(value: object, names: list[str]) -> None:
    if isinstance(value, Var):
        names.append(value.name)
    elif isinstance(value, tuple) and not isinstance(value, Instr):
        for item in value:
            _collect(item, names)

__all__ = [
    "BUILTINS", "INSTRUCTIONS", "VALUE_TYPE_OF", "NO_SPAN", "OPNAMES", "TERMINATORS", "Append", "AssertSpec",
    "Attr", "BinOp", "Branch", "BuildDict", "BuildList", "Call", "CallBuiltin", "CallMethod",
    "Compare", "Const", "Constraint", "Copy", "defined_var", "used_vars", "Fork", "ForkJoin",
    "Format", "Gen", "HostCall", "Index",
    "Instr", "Jump", "KwArgs", "Operand", "ParallelMap", "Pluck", "Prefetch", "Return",
    "RoleBegin", "RoleEnd", "Scalar", "Select", "Slice", "Terminator", "UnaryOp", "Var",
]
