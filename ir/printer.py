"""The readable text form of the IR (`sglc compile --emit ir`). For people, not for parsing:
the JSON form (`serialize.py`) is the one that loads back.

    fn agent.react(question: str, max_steps: int = 4) -> str
    entry:
        %1 = builtin len(question)
        ...
        append "Question: "
        thought = gen str (stop="\\n", max_tokens=64)
"""

from __future__ import annotations

import json
from functools import singledispatch

from sglc.ir import instructions as I
from sglc.ir.program import IRFunction, IRProgram, Param
from sglc.ir.values import const_repr


def print_program(prog: IRProgram, spans: bool = False) -> str:
    """The whole program: header, schemas, externs, then functions in name order."""
    lines = [f"; sglc IR v{prog.version}, module {prog.module}, entry {prog.entry or '-'}"]
    for name, schema in sorted(prog.schemas.items()):
        lines.append(f"schema {name} = {json.dumps(schema, sort_keys=True)}")
    for name, sig in sorted(prog.externs.items()):
        lines.append(f"extern {name}({_params(sig.params)}) -> {sig.returns}")
    for name in sorted(prog.functions):
        lines.append("")
        lines.append(print_function(prog.functions[name], spans))
    return "\n".join(lines) + "\n"


def print_function(fn: IRFunction, spans: bool = False) -> str:
    kind = "" if fn.kind == "fn" else f"{fn.kind} "
    head = f"{kind}fn {fn.name}({_params(fn.params)}) -> {fn.returns}"
    if fn.defaults:
        head += " with " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                                     for k, v in fn.defaults)
    if fn.outputs:
        head += f" outputs({', '.join(fn.outputs)})"
    lines = [head]
    if fn.doc:
        lines.append(f"    ; {json.dumps(fn.doc, ensure_ascii=False)}")
    for block in fn.blocks:
        lines.append(f"{block.label}:")
        for instr in block.instrs:
            text = f"    {format_instr(instr)}"
            if spans and instr.span.line:
                text += f"    ; {instr.span}"
            lines.append(text)
    return "\n".join(lines)


def _params(params: tuple[Param, ...]) -> str:
    out = []
    for p in params:
        text = f"{p.name}: {p.type}"
        if p.has_default:
            text += f" = {json.dumps(p.default, ensure_ascii=False)}"
        out.append(text)
    return ", ".join(out)


def _op(value: I.Operand | None) -> str:
    if value is None:
        return ""
    return value.name if isinstance(value, I.Var) else const_repr(value.value)


def _args(args: tuple[I.Operand, ...], kwargs: I.KwArgs = ()) -> str:
    return ", ".join([*map(_op, args), *(f"{k}={_op(v)}" for k, v in kwargs)])


def _dest(dest: str | None) -> str:
    return "" if dest is None else f"{dest} = "


@singledispatch
def format_instr(instr: I.Instr) -> str:
    """One instruction on one line."""
    return f"<{type(instr).__name__}>"


@format_instr.register
def _(i: I.Copy) -> str:
    return f"{i.dest} = {_op(i.src)}"


@format_instr.register
def _(i: I.BinOp) -> str:
    return f"{i.dest} = {_op(i.left)} {i.op} {_op(i.right)}"


@format_instr.register
def _(i: I.UnaryOp) -> str:
    space = " " if i.op == "not" else ""
    return f"{i.dest} = {i.op}{space}{_op(i.operand)}"


@format_instr.register
def _(i: I.Compare) -> str:
    return f"{i.dest} = {_op(i.left)} {i.op} {_op(i.right)}"


@format_instr.register
def _(i: I.BuildList) -> str:
    return f"{i.dest} = [{_args(i.items)}]"


@format_instr.register
def _(i: I.BuildDict) -> str:
    entries = ", ".join(f"{_op(k)}: {_op(v)}" for k, v in zip(i.keys, i.values, strict=True))
    return f"{i.dest} = {{{entries}}}"


@format_instr.register
def _(i: I.Index) -> str:
    return f"{i.dest} = {_op(i.obj)}[{_op(i.index)}]"


@format_instr.register
def _(i: I.Slice) -> str:
    return f"{i.dest} = {_op(i.obj)}[{_op(i.start)}:{_op(i.stop)}]"


@format_instr.register
def _(i: I.Attr) -> str:
    return f"{i.dest} = {_op(i.obj)}.{i.name}"


@format_instr.register
def _(i: I.Pluck) -> str:
    return f"{i.dest} = pluck {_op(i.obj)}.{i.name}"


@format_instr.register
def _(i: I.CallBuiltin) -> str:
    return f"{_dest(i.dest)}builtin {i.name}({_args(i.args, i.kwargs)})"


@format_instr.register
def _(i: I.CallMethod) -> str:
    return f"{_dest(i.dest)}method {_op(i.obj)}.{i.method}({_args(i.args)})"


@format_instr.register
def _(i: I.Format) -> str:
    return f"{i.dest} = format({_args(i.parts)})"


@format_instr.register
def _(i: I.Append) -> str:
    return f"append {_op(i.value)}"


@format_instr.register
def _(i: I.RoleBegin) -> str:
    return f"role_begin {i.role}"


@format_instr.register
def _(i: I.RoleEnd) -> str:
    return f"role_end {i.role}"


@format_instr.register
def _(i: I.Gen) -> str:
    text = f"{i.dest} = gen {format_constraint(i.constraint)}"
    if i.regex is not None:
        text += f" regex {json.dumps(i.regex, ensure_ascii=False)}"
    if i.grammar is not None and i.constraint.kind != "grammar":  # a schema's grammar path
        text += " on the grammar path"
    if i.params:
        text += f" ({_args((), i.params)})"
    if i.narrowed_by:
        text += f" narrowed by [{'; '.join(i.narrowed_by)}]"
    return text


def format_constraint(c: I.Constraint) -> str:
    if c.kind == "regex":
        return f"/{c.pattern}/"
    if c.kind == "choice":
        return " | ".join(const_repr(v) for v in c.choices)
    if c.kind == "schema":
        return f"schema {c.schema}"
    if c.kind == "grammar":
        return f"grammar <{len((c.pattern or '').splitlines())} lines>"
    if c.kind == "str" and c.max_len is not None:
        return f"str[..{c.max_len}]"
    return c.kind


@format_instr.register
def _(i: I.Select) -> str:
    text = f"{i.dest} = select {_op(i.options)}"
    return f"{text} ({_args((), i.params)})" if i.params else text


@format_instr.register
def _(i: I.Fork) -> str:
    text = f"{i.dest} = fork {_op(i.count)} {i.body}({', '.join(i.captures)})"
    return text if i.join == "gather" else f"{text} join {i.join}"


@format_instr.register
def _(i: I.ParallelMap) -> str:
    return f"{i.dest} = parallel_map {_op(i.items)} {i.body}({', '.join(i.captures)})"


@format_instr.register
def _(i: I.Call) -> str:
    return f"{_dest(i.dest)}call {i.fn}({_args(i.args, i.kwargs)})"


@format_instr.register
def _(i: I.HostCall) -> str:
    return f"{_dest(i.dest)}host_call {i.fn}({_args(i.args, i.kwargs)})"


@format_instr.register
def _(i: I.Prefetch) -> str:
    where = "fresh " if i.fresh else ""
    return f"prefetch {where}[{'; '.join(format_instr(p) for p in i.prefix)}]"


@format_instr.register
def _(i: I.Branch) -> str:
    return f"branch {_op(i.cond)}, {i.then_label}, {i.else_label}"


@format_instr.register
def _(i: I.Jump) -> str:
    return f"jump {i.label}"


@format_instr.register
def _(i: I.Return) -> str:
    return f"return {_op(i.value)}".rstrip()


@format_instr.register
def _(i: I.AssertSpec) -> str:
    message = "" if i.message is None else f", {_op(i.message)}"
    retries = f" retry {i.retries}" if i.retries else ""
    return f"assert_spec {i.kind} {_op(i.cond)}{message}{retries}"


__all__ = ["format_instr", "print_function", "print_program"]
