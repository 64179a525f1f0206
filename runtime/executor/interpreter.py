"""The asyncio interpreter of IR functions.

Each SGL call runs as a coroutine over its frame (variables + one prompt stream). Fork
branches, parallel-for items and the calls they make are tasks of one event loop, so every
`gen` that is ready in any of them reaches the model in the same wave (see `model_calls`):
the program's parallelism becomes the engine's batch.

    run: for each instruction of the current block
        value op      -> computed inline (value_ops.py, builtins.py)
        prompt op     -> the frame's PromptStream (prompt_stream.py)
        gen / select  -> the operands' values to ModelOps (model_ops.py), awaited
        fork / map    -> child coroutines on copies of the prompt, gathered in order
        call          -> child coroutine with a fresh prompt
        terminator    -> next block, or the frame's value

Every failure leaves as an SGLRuntimeError carrying the instruction's span and the SGL call
stack; Python exceptions from user-visible operations are translated, never leaked.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import sglc.runtime.executor.builtins as B
from sglc import ir
from sglc.ir.spec_terms import subjects
from sglc.runtime.core import EngineError
from sglc.runtime.executor.arguments import (
    bind_arguments,
    check_arguments,
    public_functions,
    short_name,
    split_defaults,
)
from sglc.runtime.executor.client import ModelClient
from sglc.runtime.executor.errors import (
    ArgumentError,
    CallSite,
    GenError,
    HostError,
    SGLRuntimeError,
    SpecViolation,
)
from sglc.runtime.executor.events import ProgramEvents
from sglc.runtime.executor.frames import CallState, Frame, check_defaults, frame_defaults
from sglc.runtime.executor.host import call_host, resolve_host
from sglc.runtime.executor.model_calls import ModelCalls
from sglc.runtime.executor.model_choice import ModelChoice
from sglc.runtime.executor.model_ops import ModelOps
from sglc.runtime.executor.prompt_stream import PromptStream, PromptStreamError
from sglc.runtime.executor.trace import Trace, spec_record
from sglc.runtime.executor.value_ops import ValueOps
from sglc.runtime.mux import AUTO, Multiplexer
from sglc.source import Span

MAX_CALL_DEPTH = 200


class Interpreter(ValueOps):
    """Runs one IR program on a model. One interpreter may serve many concurrent calls, on
    one event loop.

    `hosts` binds extern fns by short or qualified name; `out` receives `print` output
    (default: stdout); `events` hears each gen's text as it is decoded and each gen's and
    select's value; `trace` records every model call.
    """

    def __init__(
        self,
        program: ir.IRProgram,
        client: ModelClient,
        *,
        hosts: Mapping[str, Callable[..., Any]] | None = None,
        trace: Trace | None = None,
        out: Callable[[str], None] | None = None,
        events: ProgramEvents | None = None,
        normalized_select: bool = True,
        models: Mapping[str, ModelClient] | None = None,
        default_model: str = "default",
        mux: Multiplexer | None = None,
    ) -> None:
        self.program = program
        self.client = client
        self.hosts = dict(hosts or {})
        self.out = out
        # `models`: the named models a gen, select or fn may pick (model_choice.py); the
        # default model (`client`) is also called `default_model`
        calls = ModelCalls(client)
        named = {name: calls if c is client else ModelCalls(c)
                 for name, c in (models or {}).items()}
        self.models = ModelChoice(calls, named, default_model)
        self.model = ModelOps(calls, trace, events, normalized_select, self.models, mux)

    # -- entry points -----------------------------------------------------------------------
    async def call(
        self, fn_name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call an SGL fn by user-facing name (`react` or `agent.react`) with a new prompt.
        Keyword arguments that name no param of the fn but a gen parameter, and `defaults`,
        are call-level gen defaults (`temperature=0.7`); the arguments are checked against
        the declared types."""
        return (await self.call_state(fn_name, args, kwargs, defaults)).value

    async def call_state(
        self, fn_name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> CallState:
        """`call`, keeping what the call left: its prompt and each gen's and select's meta."""
        frame = self._entry_frame(fn_name, args, kwargs or {}, defaults or {})
        value, frame = await self._exec_retrying(frame)
        return CallState.of(value, frame)

    async def call_many(
        self, fn_name: str, calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
        defaults: Mapping[str, Any] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> list[Any]:
        """`call` once per (args, kwargs), all concurrently; the results in order. The first
        failure cancels the other calls. `on_done` is called as each call returns."""

        async def one(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
            value = await self.call(fn_name, args, kwargs, defaults)
            if on_done is not None:
                on_done()
            return value

        return await gather_in_order([one(a, k) for a, k in calls])

    def _entry_frame(self, fn_name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
                     defaults: Mapping[str, Any]) -> Frame:
        try:
            fn = self.program.functions[self.program.resolve(fn_name)]
        except KeyError:
            names = ", ".join(sorted(public_functions(self.program))) or "none"
            raise ArgumentError(f"the program has no fn '{fn_name}' (fns: {names})") from None
        named, call_defaults = split_defaults(fn, kwargs)
        call_defaults = {**defaults, **call_defaults}
        problem = check_defaults(call_defaults)
        if problem is not None:
            raise ArgumentError(f"{short_name(fn)}(): {problem}")
        values = bind_arguments(fn, list(args), named)
        check_arguments(fn, values, self.program)
        return self._frame(fn, values, None, (), short_name(fn), call_defaults, None)

    def _new_prompt(self, model: str | None) -> PromptStream:
        """An empty prompt in the tokens of `model` (None or "auto": the default model;
        the multiplexer's candidates share its tokenizer, which each gen checks)."""
        if model == AUTO:
            model = None
        return PromptStream(self.models.calls(model, "a call").tokenizer)

    def _write(self, text: str) -> None:
        if self.out is not None:
            self.out(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    # -- the frame loop ---------------------------------------------------------------------
    def _frame(
        self,
        fn: ir.IRFunction,
        values: dict[str, Any],
        prompt: PromptStream | None,
        callers: tuple[CallSite, ...],
        label: str,
        defaults: dict[str, Any],
        parent: Frame | None,
    ) -> Frame:
        """A new frame for a call of `fn` (its `with` defaults over the caller's), called
        from `parent` (None: a call from Python); `prompt` None: a new one, for the model the
        call runs on."""
        if len(callers) >= MAX_CALL_DEPTH:
            raise SGLRuntimeError(
                f"calls are nested more than {MAX_CALL_DEPTH} deep (unbounded recursion?)",
                stack=callers,
            )
        defaults = frame_defaults(defaults, fn)
        if prompt is None:
            prompt = self._new_prompt(defaults.get("model"))
        trace = self.model.trace
        step = (trace.new_frame_id() if trace is not None else 0, label)
        path = (*parent.path, step) if parent is not None else (step,)
        return Frame(fn, label, values, prompt, callers, defaults, path=path)

    async def _run(
        self,
        fn: ir.IRFunction,
        values: dict[str, Any],
        prompt: PromptStream | None,
        callers: tuple[CallSite, ...],
        label: str,
        defaults: dict[str, Any],
        parent: Frame,
    ) -> Any:
        frame = self._frame(fn, values, prompt, callers, label, defaults, parent)
        return (await self._exec_retrying(frame))[0]

    async def _exec_retrying(self, frame: Frame) -> tuple[Any, Frame]:
        """Run a frame; when one of its `ensures ... retry N` fails, run the call again from
        its start (its arguments, a copy of its first prompt), up to N times."""
        if not any(isinstance(i, ir.AssertSpec) and i.retries for _, _, i in
                   frame.fn.instructions()):
            return await self._exec(frame), frame
        first_prompt, first_vars = frame.prompt.fork(), dict(frame.vars)
        attempt = 0
        while True:
            try:
                return await self._exec(frame), frame
            except SpecViolation as exc:
                if exc.frame is not frame or attempt >= exc.retries:
                    if exc.frame is frame and attempt:
                        exc.message += f" (after {attempt} {'retry' if attempt == 1 else 'retries'})"
                    raise
            attempt += 1
            frame = Frame(frame.fn, frame.label, dict(first_vars), first_prompt.fork(),
                          frame.callers, frame.defaults, path=frame.path, attempt=attempt)

    async def _exec(self, frame: Frame) -> Any:
        fn = frame.fn
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
                except (B.ValueOpError, PromptStreamError) as exc:
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

    # -- prompt ops ---------------------------------------------------------------------------
    def _append(self, i: ir.Append, f: Frame) -> None:
        f.prompt.append(ir.to_text(self._val(i.value, f)))

    def _role_begin(self, i: ir.RoleBegin, f: Frame) -> None:
        f.prompt.begin_role(i.role)

    def _role_end(self, i: ir.RoleEnd, f: Frame) -> None:
        f.prompt.end_role()

    # -- model calls: the operands' values go to ModelOps -----------------------------------
    async def _gen(self, i: ir.Gen, f: Frame) -> None:
        params = {**f.defaults, **self._kwargs(i.params, f)}
        done = await self.model.gen(i, params, f.prompt, f.label, f.path)
        f.vars[i.dest], f.meta[i.dest] = done.value, done.meta

    async def _select(self, i: ir.Select, f: Frame) -> None:
        options = self._val(i.options, f)
        params = self._kwargs(i.params, f)
        if "model" in f.defaults:  # the only default a select takes: its fn's model
            params.setdefault("model", f.defaults["model"])
        done = await self.model.select(i, options, params, f.prompt, f.label, f.path)
        f.vars[i.dest], f.meta[i.dest] = done.value, done.meta

    async def _prefetch(self, i: ir.Prefetch, f: Frame) -> None:
        """A prefix that the branches or calls right after this share, filled into the
        prefix cache once, from the current prompt or (`fresh`) a new one."""
        prompt = self._new_prompt(f.defaults.get("model")) if i.fresh else f.prompt.fork()
        for op in i.prefix:
            if isinstance(op, ir.Append):
                prompt.append(ir.to_text(self._val(op.value, f)))
            elif isinstance(op, ir.RoleBegin):
                prompt.begin_role(op.role)
            elif isinstance(op, ir.RoleEnd):
                prompt.end_role()
        await self.model.prefetch(prompt.prompt_ids(), f.label, i.span, f.path,
                                  f.defaults.get("model"))

    async def _fan_out(self, f: Frame, span: Span, n: int) -> None:
        """Before n >= 2 branches start from this prompt, fill it into the prefix cache once
        (unless a Prefetch hint just did), so they all extend a cached prefix together."""
        if n >= 2 and not f.just_prefetched:
            await self.model.prefetch(f.prompt.prompt_ids(), f.label, span, f.path,
                                      f.defaults.get("model"))

    # -- calls and branches ---------------------------------------------------------------------
    async def _fork(self, i: ir.Fork, f: Frame) -> None:
        n = self._val(i.count, f)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SGLRuntimeError(f"fork needs a count of at least 1, got {n!r}")
        index_param = self.program.functions[i.body].params[0].name
        prompts = [f.prompt.fork() for _ in range(n)]
        forked_text = f.prompt.text()
        inputs = [{index_param: k} for k in range(n)]
        values = await self._branches(i, f, inputs, "fork branch", prompts)
        for value, prompt in zip(values, prompts, strict=True):
            value["text"] = prompt.text()
        if i.join == "append":
            for prompt in prompts:
                f.prompt.append(_own_text(prompt.text(), forked_text))
        f.vars[i.dest] = values

    async def _parallel_map(self, i: ir.ParallelMap, f: Frame) -> None:
        items = self._val(i.items, f)
        try:
            items = list(items)
        except TypeError:
            raise SGLRuntimeError(f"parallel for needs a list, got {B.type_name(items)}") from None
        item_param = self.program.functions[i.body].params[0].name
        inputs = [{item_param: item} for item in items]
        f.vars[i.dest] = await self._branches(i, f, inputs, "parallel for item")

    async def _branches(
        self, i: ir.Fork | ir.ParallelMap, f: Frame, inputs: list[dict[str, Any]], what: str,
        prompts: list[PromptStream] | None = None,
    ) -> list[Any]:
        """Run the body once per input (plus the captures), concurrently, each on its own
        copy of the prompt (`prompts`, or new copies); the values in order."""
        body = self.program.functions[i.body]
        captured = {name: f.vars[name] for name in i.captures if name in f.vars}
        await self._fan_out(f, i.span, len(inputs))
        here, n = f.here(i.span), len(inputs)
        copies = prompts or [f.prompt.fork() for _ in inputs]
        return await gather_in_order(
            self._run(body, {**captured, **values}, copy, here,
                      f"{f.label} ({what} {k + 1} of {n})", f.defaults, f)
            for k, (values, copy) in enumerate(zip(inputs, copies, strict=True))
        )

    async def _call(self, i: ir.Call, f: Frame) -> None:
        fn = self.program.functions[i.fn]
        values = bind_arguments(fn, [self._val(a, f) for a in i.args], self._kwargs(i.kwargs, f))
        result = await self._run(fn, values, None, f.here(i.span), short_name(fn), f.defaults,
                                 f)
        if i.dest is not None:
            f.vars[i.dest] = result

    async def _host_call(self, i: ir.HostCall, f: Frame) -> None:
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

    def _assert_spec(self, i: ir.AssertSpec, f: Frame) -> None:
        holds = bool(self._val(i.cond, f))
        message = None if i.message is None else ir.to_text(self._val(i.message, f))
        trace = self.model.trace
        if trace is not None:
            trace.add_spec(spec_record(i, f.label, message, holds, f.vars, f.attempt))
        if holds:
            return
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
            names = sorted({s[0] for s in subjects(i.pred)} & set(f.vars)) if i.pred else []
            hint = ", ".join(f"{n} = {f.vars[n]!r:.80}" for n in names) or None
        violation = SpecViolation(f"{i.kind} failed: {message}", hint=hint)
        if i.retries:
            violation.retries, violation.frame = i.retries, f
        raise violation


_HANDLERS: dict[type, Callable[[Interpreter, Any, Frame], Awaitable[None] | None]] = {
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
    ir.Prefetch: Interpreter._prefetch,
    ir.Fork: Interpreter._fork,
    ir.ParallelMap: Interpreter._parallel_map,
    ir.Call: Interpreter._call,
    ir.HostCall: Interpreter._host_call,
    ir.AssertSpec: Interpreter._assert_spec,
}


def _own_text(branch_text: str, forked_text: str) -> str:
    """What a branch's prompt gained after the fork (its text starts with the parent's)."""
    if not branch_text.startswith(forked_text):
        raise SGLRuntimeError("join append: a branch's prompt no longer starts with the "
                              "prompt it was forked from (the chat template rewrote it)")
    return branch_text[len(forked_text):]


async def gather_in_order(coros: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run concurrently, results in order; the first failure cancels the rest."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
