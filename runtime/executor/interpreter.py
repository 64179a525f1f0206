"""The asyncio interpreter of IR functions.

Each SGL call runs as a coroutine over its frame (variables + one stream). Fork branches,
parallel-for items and the calls they make are tasks of one event loop, so every `gen` that
is ready in any of them reaches the engine in the same wave (see `model_calls`): the
program's parallelism becomes the engine's batch.

    run_fn: for each instruction of the current block
        value op      -> computed inline (builtins.py)
        stream op     -> the frame's Stream (streams.py)
        gen / select  -> awaited model call (generation.py, model_calls.py)
        fork / map    -> child coroutines on copies of the stream, gathered in order
        call          -> child coroutine with a fresh stream
        terminator    -> next block, or the frame's value

Every failure leaves as an SGLRuntimeError carrying the instruction's span and the SGL call
stack; Python exceptions from user-visible operations are translated, never leaked.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sglc import ir
from sglc.runtime.core import EngineError
from sglc.runtime.executor import builtins as B
from sglc.runtime.executor.errors import (
    ArgumentError,
    GenError,
    HostError,
    SGLRuntimeError,
    SpecViolation,
)
from sglc.runtime.executor.errors import (
    Frame as StackFrame,
)
from sglc.runtime.executor.host import call_host, resolve_host
from sglc.runtime.executor.model_calls import EngineClient
from sglc.runtime.executor.model_ops import ModelOps
from sglc.runtime.executor.streams import Stream, StreamError
from sglc.runtime.executor.trace import Trace

MAX_CALL_DEPTH = 200


@dataclass
class _Frame:
    fn: ir.IRFunction
    label: str  # how the call stack names it: "react", "solve (fork branch 2 of 3)"
    vars: dict[str, Any]
    stream: Stream
    callers: tuple[StackFrame, ...]
    just_prefetched: bool = False

    def here(self, span: Any) -> tuple[StackFrame, ...]:
        return (*self.callers, StackFrame(self.label, span))


@dataclass
class Interpreter(ModelOps):
    """Runs one IR program on an engine. One interpreter may serve many concurrent calls.

    `hosts` binds extern fns by short or qualified name; `out` receives `print` output;
    `on_gen` (if set) is told each gen's text as soon as it is generated; `on_token` (if
    set) gets each gen's text piece by piece while the engine decodes it.
    """

    program: ir.IRProgram
    client: EngineClient
    hosts: dict[str, Callable[..., Any]] = field(default_factory=dict)
    trace: Trace | None = None
    out: Callable[[str], None] | None = None
    on_gen: Callable[[str, str, str], None] | None = None  # (fn label, gen name, text)
    on_token: Callable[[str, str, str], None] | None = None  # (fn label, gen name, delta)
    normalized_select: bool = True

    # -- entry points -----------------------------------------------------------------------
    async def call(
        self, fn_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Call an SGL fn by user-facing name (`react` or `agent.react`) with a new stream."""
        try:
            fn = self.program.functions[self.program.resolve(fn_name)]
        except KeyError:
            names = ", ".join(sorted(public_functions(self.program))) or "none"
            raise ArgumentError(f"the program has no fn '{fn_name}' (fns: {names})") from None
        values = bind_arguments(fn, list(args), dict(kwargs or {}))
        return await self._run(fn, values, Stream(self.client.tokenizer), (), short_name(fn))

    def _write(self, text: str) -> None:
        if self.out is not None:
            self.out(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    # -- the frame loop ---------------------------------------------------------------------
    async def _run(
        self,
        fn: ir.IRFunction,
        values: dict[str, Any],
        stream: Stream,
        callers: tuple[StackFrame, ...],
        label: str,
    ) -> Any:
        if len(callers) >= MAX_CALL_DEPTH:
            raise SGLRuntimeError(
                f"calls are nested more than {MAX_CALL_DEPTH} deep (unbounded recursion?)",
                stack=callers,
            )
        frame = _Frame(fn, label, values, stream, callers)
        blocks = fn.labels
        block = fn.blocks[0]
        while True:
            for instr in block.instrs:
                try:
                    if isinstance(instr, ir.Branch):
                        taken = bool(self._val(instr.cond, frame))
                        block = blocks[instr.then_label if taken else instr.else_label]
                        break
                    if isinstance(instr, ir.Jump):
                        block = blocks[instr.label]
                        break
                    if isinstance(instr, ir.Return):
                        return None if instr.value is None else self._val(instr.value, frame)
                    handler = _HANDLERS[type(instr)]
                    result = handler(self, instr, frame)
                    if result is not None:
                        await result
                    frame.just_prefetched = isinstance(instr, ir.Prefetch)
                except SGLRuntimeError as exc:
                    raise exc.with_context(instr.span, frame.here(instr.span)) from None
                except B.ValueOpError as exc:
                    raise SGLRuntimeError(
                        str(exc), instr.span, stack=frame.here(instr.span)
                    ) from None
                except StreamError as exc:
                    raise SGLRuntimeError(
                        str(exc), instr.span, stack=frame.here(instr.span)
                    ) from None
                except EngineError as exc:
                    raise GenError(
                        f"the engine failed: {exc}", instr.span, stack=frame.here(instr.span)
                    ) from None
            else:
                raise SGLRuntimeError(
                    f"block '{block.label}' of {fn.name} has no terminator", stack=frame.here(None)
                )

    def _val(self, operand: ir.Operand, frame: _Frame) -> Any:
        if isinstance(operand, ir.Const):
            return operand.value
        try:
            return frame.vars[operand.name]
        except KeyError:
            raise SGLRuntimeError(f"variable '{operand.name}' has no value here") from None

    def _kwargs(self, kwargs: ir.KwArgs, frame: _Frame) -> dict[str, Any]:
        return {name: self._val(v, frame) for name, v in kwargs}

    # -- value ops ----------------------------------------------------------------------------
    def _copy(self, i: ir.Copy, f: _Frame) -> None:
        f.vars[i.dest] = self._val(i.src, f)

    def _binop(self, i: ir.BinOp, f: _Frame) -> None:
        left, right = self._val(i.left, f), self._val(i.right, f)
        f.vars[i.dest] = B.guarded(
            f"{B.type_name(left)} {i.op} {B.type_name(right)}", lambda: B.BINOPS[i.op](left, right)
        )

    def _unop(self, i: ir.UnaryOp, f: _Frame) -> None:
        value = self._val(i.operand, f)
        f.vars[i.dest] = B.guarded(f"{i.op} {B.type_name(value)}", lambda: B.UNARY[i.op](value))

    def _compare(self, i: ir.Compare, f: _Frame) -> None:
        left, right = self._val(i.left, f), self._val(i.right, f)
        f.vars[i.dest] = B.guarded(
            f"{B.type_name(left)} {i.op} {B.type_name(right)}",
            lambda: B.COMPARES[i.op](left, right),
        )

    def _build_list(self, i: ir.BuildList, f: _Frame) -> None:
        f.vars[i.dest] = [self._val(x, f) for x in i.items]

    def _build_dict(self, i: ir.BuildDict, f: _Frame) -> None:
        keys = [self._val(k, f) for k in i.keys]
        f.vars[i.dest] = B.guarded(
            "dict", lambda: dict(zip(keys, (self._val(v, f) for v in i.values), strict=True))
        )

    def _index(self, i: ir.Index, f: _Frame) -> None:
        f.vars[i.dest] = B.index(self._val(i.obj, f), self._val(i.index, f))

    def _slice(self, i: ir.Slice, f: _Frame) -> None:
        obj = self._val(i.obj, f)
        start = None if i.start is None else self._val(i.start, f)
        stop = None if i.stop is None else self._val(i.stop, f)
        f.vars[i.dest] = B.guarded("slice", lambda: obj[start:stop])

    def _attr(self, i: ir.Attr, f: _Frame) -> None:
        f.vars[i.dest] = B.attr(self._val(i.obj, f), i.name)

    def _pluck(self, i: ir.Pluck, f: _Frame) -> None:
        f.vars[i.dest] = [B.attr(item, i.name) for item in self._val(i.obj, f)]

    def _call_builtin(self, i: ir.CallBuiltin, f: _Frame) -> None:
        result = B.call_builtin(
            i.name, [self._val(a, f) for a in i.args], self._kwargs(i.kwargs, f), self._write
        )
        if i.dest is not None:
            f.vars[i.dest] = result

    def _call_method(self, i: ir.CallMethod, f: _Frame) -> None:
        result = B.call_method(self._val(i.obj, f), i.method, [self._val(a, f) for a in i.args])
        if i.dest is not None:
            f.vars[i.dest] = result

    def _format(self, i: ir.Format, f: _Frame) -> None:
        f.vars[i.dest] = "".join(ir.to_text(self._val(p, f)) for p in i.parts)

    # -- stream ops ---------------------------------------------------------------------------
    def _append(self, i: ir.Append, f: _Frame) -> None:
        f.stream.append(ir.to_text(self._val(i.value, f)))

    def _role_begin(self, i: ir.RoleBegin, f: _Frame) -> None:
        f.stream.begin_role(i.role)

    def _role_end(self, i: ir.RoleEnd, f: _Frame) -> None:
        f.stream.end_role()

    # -- calls and branches ---------------------------------------------------------------------
    async def _fork(self, i: ir.Fork, f: _Frame) -> None:
        n = self._val(i.count, f)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SGLRuntimeError(f"fork needs a count of at least 1, got {n!r}")
        body = self.program.functions[i.body]
        captured = {name: f.vars[name] for name in i.captures if name in f.vars}
        await self._fan_out(f, i.span, n)
        here = f.here(i.span)
        f.vars[i.dest] = await _gather(
            [
                self._run(
                    body,
                    dict(captured),
                    f.stream.fork(),
                    here,
                    f"{f.label} (fork branch {k + 1} of {n})",
                )
                for k in range(n)
            ]
        )

    async def _parallel_map(self, i: ir.ParallelMap, f: _Frame) -> None:
        items = self._val(i.items, f)
        try:
            items = list(items)
        except TypeError:
            raise SGLRuntimeError(f"parallel for needs a list, got {B.type_name(items)}") from None
        body = self.program.functions[i.body]
        item_param = body.params[0].name
        captured = {name: f.vars[name] for name in i.captures if name in f.vars}
        await self._fan_out(f, i.span, len(items))
        here = f.here(i.span)
        f.vars[i.dest] = await _gather(
            [
                self._run(
                    body,
                    {**captured, item_param: item},
                    f.stream.fork(),
                    here,
                    f"{f.label} (parallel for item {k + 1} of {len(items)})",
                )
                for k, item in enumerate(items)
            ]
        )

    async def _call(self, i: ir.Call, f: _Frame) -> None:
        fn = self.program.functions[i.fn]
        values = bind_arguments(fn, [self._val(a, f) for a in i.args], self._kwargs(i.kwargs, f))
        result = await self._run(
            fn, values, Stream(self.client.tokenizer), f.here(i.span), short_name(fn)
        )
        if i.dest is not None:
            f.vars[i.dest] = result

    async def _host_call(self, i: ir.HostCall, f: _Frame) -> None:
        sig = self.program.externs.get(i.fn)
        short = sig.name if sig is not None else i.fn.rsplit(".", 1)[-1]
        host = resolve_host(i.fn, short, self.hosts)
        if host is None:
            raise HostError(
                f"no host function is bound for extern fn '{short}'",
                hint=f"bind one: prog.bind({short}=my_function), or "
                f"`sglc run --tools tools.py` with `def {short}(...)` in it",
            )
        args, kwargs = [self._val(a, f) for a in i.args], self._kwargs(i.kwargs, f)
        try:
            result = await call_host(host, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's host code: report, don't leak
            raise HostError(f"'{short}' raised {type(exc).__name__}: {exc}") from None
        if i.dest is not None:
            f.vars[i.dest] = result

    def _assert_spec(self, i: ir.AssertSpec, f: _Frame) -> None:
        if bool(self._val(i.cond, f)):
            return
        message = None if i.message is None else ir.to_text(self._val(i.message, f))
        hint = None
        if i.kind == "requires":
            args = ", ".join(f"{p.name}={f.vars.get(p.name)!r:.60}" for p in f.fn.params)
            message = message or "the precondition does not hold"
            hint = f"called with {args}" if args else None
        elif i.kind == "ensures":
            message = message or "the postcondition does not hold"
            hint = f"result = {f.vars.get('result')!r:.120}" if "result" in f.vars else None
        else:
            message = message or "the assertion does not hold"
        raise SpecViolation(f"{i.kind} failed: {message}", hint=hint)


_HANDLERS: dict[type, Callable[[Interpreter, Any, _Frame], Awaitable[None] | None]] = {
    ir.Copy: Interpreter._copy,
    ir.BinOp: Interpreter._binop,
    ir.UnaryOp: Interpreter._unop,
    ir.Compare: Interpreter._compare,
    ir.BuildList: Interpreter._build_list,
    ir.BuildDict: Interpreter._build_dict,
    ir.Index: Interpreter._index,
    ir.Slice: Interpreter._slice,
    ir.Attr: Interpreter._attr,
    ir.Pluck: Interpreter._pluck,
    ir.CallBuiltin: Interpreter._call_builtin,
    ir.CallMethod: Interpreter._call_method,
    ir.Format: Interpreter._format,
    ir.Append: Interpreter._append,
    ir.RoleBegin: Interpreter._role_begin,
    ir.RoleEnd: Interpreter._role_end,
    ir.Gen: Interpreter._gen,
    ir.Select: Interpreter._select,
    ir.Prefetch: Interpreter._prefetch_hint,
    ir.Fork: Interpreter._fork,
    ir.ParallelMap: Interpreter._parallel_map,
    ir.Call: Interpreter._call,
    ir.HostCall: Interpreter._host_call,
    ir.AssertSpec: Interpreter._assert_spec,
}


async def _gather(coros: list[Awaitable[Any]]) -> list[Any]:
    """Run concurrently, results in order; the first failure cancels the rest."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def short_name(fn: ir.IRFunction) -> str:
    return fn.name.rsplit(".", 1)[-1]


def public_functions(program: ir.IRProgram) -> dict[str, ir.IRFunction]:
    """The user-callable fns of the main module, by short name."""
    prefix = f"{program.module}."
    return {
        name[len(prefix) :]: fn
        for name, fn in program.functions.items()
        if name.startswith(prefix) and fn.kind == "fn"
    }


def bind_arguments(fn: ir.IRFunction, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Parameter values for a call: positional, then by name, then (copied) defaults."""
    params = fn.params
    name = short_name(fn)
    if len(args) > len(params):
        raise ArgumentError(
            f"{name}() takes {len(params)} argument{'s' * (len(params) != 1)}, got {len(args)}"
        )
    values = {p.name: a for p, a in zip(params, args, strict=False)}
    known = {p.name for p in params}
    for key, value in kwargs.items():
        if key not in known:
            hint = ", ".join(p.name for p in params) or "none"
            raise ArgumentError(f"{name}() has no parameter '{key}'", hint=f"parameters: {hint}")
        if key in values:
            raise ArgumentError(f"{name}() got two values for '{key}'")
        values[key] = value
    for p in params:
        if p.name not in values:
            if not p.has_default:
                raise ArgumentError(f"{name}() is missing the argument '{p.name}' ({p.type})")
            values[p.name] = copy.deepcopy(p.default)
    return values
