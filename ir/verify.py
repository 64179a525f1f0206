"""The IR verifier: structural rules every pass must keep. Raises IRVerifyError.

Rules:
- a function has blocks with unique labels; every block ends in exactly one terminator
  (`branch`, `jump`, `return`) and has none before it; every label named exists;
- variables: in blocks reachable from the entry, each variable read must be bound on at
  least one path from the entry (a param, or an earlier instruction). NOTE: this is the
  weaker *may*-defined rule, matching the checker's source-order binding (a `let` in one arm
  of an `if` may be read after it); the executor reports the remaining case, an unbound
  read on the path actually taken, at run time;
- `call` names a function, `host_call` an extern, with known keyword names and enough
  arguments; `fork` / `parallel_map` name a body of the right kind whose params are the
  captures (after the item variable);
- `call_builtin` names a builtin and passes what its signature takes (sglc.lang.builtins);
  `call_method` names a method of str, list or dict; `gen` params are known gen parameters
  (sglc.lang.gen_params), its regex (if any) compiles, a schema constraint names a schema;
  `select` params are known select parameters; a fork's join mode is known; a fn's
  `defaults` name inheritable gen parameters; `prefetch` holds only constant appends and
  role begins/ends; the entry (if any) is a function.
"""

from __future__ import annotations

import re
from functools import singledispatch

from sglc.ir import instructions as I
from sglc.ir.analysis import maybe_defined_in, reachable
from sglc.ir.program import IRFunction, IRProgram, Param
from sglc.lang import BUILTINS, GEN_PARAMS, METHOD_NAMES, SELECT_PARAMS

SPEC_KINDS = ("requires", "ensures", "assert")


class IRVerifyError(Exception):
    """A broken IR program; the message names the function, block and instruction."""


def verify(prog: IRProgram) -> None:
    """Raise IRVerifyError on the first broken rule; return None when the program is sound."""
    if prog.entry is not None and prog.entry not in prog.functions:
        raise IRVerifyError(f"entry '{prog.entry}' is not a function")
    for name, fn in prog.functions.items():
        if name != fn.name:
            raise IRVerifyError(f"function '{fn.name}' is stored under '{name}'")
        verify_function(prog, fn)


def verify_function(prog: IRProgram, fn: IRFunction) -> None:
    _check_blocks(fn)
    _check_variables(fn)
    for name, _ in fn.defaults:
        param = GEN_PARAMS.get(name)
        if fn.kind != "fn" or param is None or not param.inheritable:
            raise IRVerifyError(f"{fn.name}: '{name}' cannot be a default here")
    for label, index, instr in fn.instructions():
        try:
            check_instr(instr, prog)
        except IRVerifyError as exc:
            raise IRVerifyError(f"{_where(fn, label, index, instr)}: {exc}") from None


def _where(fn: IRFunction, label: str, index: int, instr: I.Instr) -> str:
    at = f" ({instr.span})" if instr.span.line else ""
    return f"{fn.name}, block {label}, instruction {index} ({instr.opname}){at}"


def _check_blocks(fn: IRFunction) -> None:
    if not fn.blocks:
        raise IRVerifyError(f"{fn.name}: no blocks")
    labels = [b.label for b in fn.blocks]
    dupes = {x for x in labels if labels.count(x) > 1}
    if dupes:
        raise IRVerifyError(f"{fn.name}: duplicate block label(s) {sorted(dupes)}")
    for block in fn.blocks:
        if not block.instrs or not isinstance(block.instrs[-1], I.TERMINATORS):
            raise IRVerifyError(f"{fn.name}, block {block.label}: does not end in a "
                                "terminator (branch, jump or return)")
        for index, instr in enumerate(block.instrs[:-1]):
            if isinstance(instr, I.TERMINATORS):
                raise IRVerifyError(f"{_where(fn, block.label, index, instr)}: terminator "
                                    "before the end of the block")
        for target in _targets(block.instrs[-1]):
            if target not in labels:
                raise IRVerifyError(f"{fn.name}, block {block.label}: jump to missing "
                                    f"label '{target}'")


def _targets(instr: I.Instr) -> tuple[str, ...]:
    if isinstance(instr, I.Branch):
        return (instr.then_label, instr.else_label)
    if isinstance(instr, I.Jump):
        return (instr.label,)
    return ()


def _check_variables(fn: IRFunction) -> None:
    live = reachable(fn)
    bound_into = maybe_defined_in(fn)
    for block in fn.blocks:
        if block.label not in live:
            continue
        bound = set(bound_into[block.label])
        for index, instr in enumerate(block.instrs):
            for name in I.used_vars(instr):
                if name not in bound:
                    raise IRVerifyError(f"{_where(fn, block.label, index, instr)}: variable "
                                        f"'{name}' is used before it is defined")
            dest = I.defined_var(instr)
            if dest is not None:
                bound.add(dest)


# ---- per instruction ---------------------------------------------------------------------


@singledispatch
def check_instr(instr: I.Instr, prog: IRProgram) -> None:
    """Rules of one instruction against the program (callees, schemas, names)."""
    if type(instr) not in I.OPNAMES:
        raise IRVerifyError(f"unknown instruction {type(instr).__name__}")


@check_instr.register
def _(instr: I.Call, prog: IRProgram) -> None:
    fn = prog.functions.get(instr.fn)
    if fn is None or fn.kind != "fn":
        raise IRVerifyError(f"call of unknown function '{instr.fn}'")
    _check_args(instr.fn, fn.params, instr)


@check_instr.register
def _(instr: I.HostCall, prog: IRProgram) -> None:
    sig = prog.externs.get(instr.fn)
    if sig is None:
        raise IRVerifyError(f"host_call of unknown extern '{instr.fn}'")
    _check_args(instr.fn, sig.params, instr)


def _check_args(name: str, params: tuple[Param, ...], call: I.Call | I.HostCall) -> None:
    if len(call.args) > len(params):
        raise IRVerifyError(f"'{name}' takes {len(params)} arguments, got {len(call.args)}")
    given = {p.name for p in params[:len(call.args)]}
    names = {p.name for p in params}
    for key, _ in call.kwargs:
        if key not in names or key in given:
            raise IRVerifyError(f"'{name}' has no parameter '{key}' to pass by keyword")
        given.add(key)
    missing = [p.name for p in params if p.name not in given and not p.has_default]
    if missing:
        raise IRVerifyError(f"'{name}' is missing argument(s) {missing}")


@check_instr.register
def _(instr: I.Fork, prog: IRProgram) -> None:
    if instr.join not in ("gather", "append"):
        raise IRVerifyError(f"unknown join mode '{instr.join}'")
    _check_body(prog, instr.body, "fork_body", instr.captures, 1)


@check_instr.register
def _(instr: I.ParallelMap, prog: IRProgram) -> None:
    _check_body(prog, instr.body, "map_body", instr.captures, 1)


def _check_body(prog: IRProgram, body: str, kind: str, captures: tuple[str, ...],
                num_items: int) -> None:
    fn = prog.functions.get(body)
    if fn is None or fn.kind != kind:
        raise IRVerifyError(f"'{body}' is not a {kind} function")
    params = tuple(p.name for p in fn.params)
    if len(params) < num_items or params[num_items:] != captures:
        raise IRVerifyError(f"captures {list(captures)} do not match the params {list(params)} "
                            f"of '{body}'")


@check_instr.register
def _(instr: I.CallBuiltin, prog: IRProgram) -> None:
    builtin = BUILTINS.get(instr.name)
    if builtin is None:
        raise IRVerifyError(f"unknown builtin '{instr.name}'")
    if len(instr.args) > len(builtin.params) and builtin.rest is None:
        raise IRVerifyError(f"'{instr.name}' takes at most {_count(len(builtin.params))}, "
                            f"got {len(instr.args)}")
    required = sum(not p.has_default for p in builtin.params)
    if len(instr.args) < required:
        raise IRVerifyError(f"'{instr.name}' takes at least {_count(required)}, "
                            f"got {len(instr.args)}")
    for param, arg in zip(builtin.params, instr.args, strict=False):
        if param.form == "binding" and not (isinstance(arg, I.Const) and
                                            isinstance(arg.value, str)):
            raise IRVerifyError(f"'{instr.name}' takes the name of a gen or select as a "
                                f"constant string, got {arg}")
    keywords = {p.name for p in builtin.keywords}
    for key, _ in instr.kwargs:
        if key not in keywords:
            raise IRVerifyError(f"'{instr.name}' has no keyword parameter '{key}'")


def _count(n: int) -> str:
    return f"{n} argument{'s' * (n != 1)}"


@check_instr.register
def _(instr: I.CallMethod, prog: IRProgram) -> None:
    if instr.method not in METHOD_NAMES:
        raise IRVerifyError(f"unknown method '{instr.method}'")


@check_instr.register
def _(instr: I.Gen, prog: IRProgram) -> None:
    for name, _ in instr.params:
        if name not in GEN_PARAMS:
            raise IRVerifyError(f"gen has no parameter '{name}'")
    c = instr.constraint
    if I.VALUE_TYPE_OF.get(c.kind) != instr.value_type:
        raise IRVerifyError(f"gen value type '{instr.value_type}' does not fit a {c.kind} "
                            "constraint")
    if c.kind == "schema" and c.schema not in prog.schemas:
        raise IRVerifyError(f"gen constraint names unknown schema '{c.schema}'")
    if instr.regex is not None:
        try:
            re.compile(instr.regex)
        except re.error as exc:
            raise IRVerifyError(f"gen regex does not compile: {exc}") from None


@check_instr.register
def _(instr: I.Select, prog: IRProgram) -> None:
    for name, _ in instr.params:
        if name not in SELECT_PARAMS:
            raise IRVerifyError(f"select has no parameter '{name}'")


@check_instr.register
def _(instr: I.Prefetch, prog: IRProgram) -> None:
    for item in instr.prefix:
        constant = isinstance(item, I.Append) and isinstance(item.value, I.Const)
        if not (constant or isinstance(item, (I.RoleBegin, I.RoleEnd))):
            raise IRVerifyError(f"prefetch may hold only constant appends and roles, not "
                                f"{item.opname}")


@check_instr.register
def _(instr: I.AssertSpec, prog: IRProgram) -> None:
    if instr.kind not in SPEC_KINDS:
        raise IRVerifyError(f"assert_spec kind '{instr.kind}' is not one of {SPEC_KINDS}")


__all__ = ["IRVerifyError", "check_instr", "verify", "verify_function"]
