"""The Python API: compile or load SGL programs and call their fns.

    import sglc
    prog = sglc.load("examples/agent.sgl")            # or sglc.compile(source)
    rt = sglc.Runtime(model_path="path/to/model")     # or Runtime(engine=...), Runtime(client=...)
    prog.bind(search=my_search)                       # host fns for `extern fn`s
    answer = prog.react("What is 12*7?", runtime=rt)
    answers = prog.react.batch([("What is 2+2?",), {"question": "3*3?"}], runtime=rt)
    answer = await prog.react.async_("What is 12*7?", runtime=rt)
    answer = prog.react("What is 12*7?", temperature=0.7, max_tokens=64)  # gen defaults
    answers = prog.react.batch(["2+2?", "3*3?"], temperature=0.7)
    state = prog.react.state("What is 12*7?")  # .value, .text, .messages, .meta["thought"]
    prog.save("agent.json"); sglc.load("agent.json")  # no re-parsing

Every call may take `runtime=`, `trace=` (a Trace to record model calls into, or a file
path: `trace="t.json"` writes the trace there when the call ends, `trace="t.html"` the
trace viewer's page), `events=` (a ProgramEvents to hear gen text as it is decoded) and
`out=` (where `print` writes); without `runtime=` a program uses its own `Runtime()` on the
default model, made on first use.

Keyword arguments that name no parameter of the fn but a gen parameter (`temperature`,
`max_tokens`, `stop`, ...) are call-level defaults: every gen the call runs, in every fn it
calls, takes them unless the gen (or a fn's `with`) says otherwise. Without any, gens are
greedy with 128 new tokens (the defaults of the gen-parameter records, sglc.lang). Arguments
are checked against the fn's declared types before it runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sglc.frontend import Diagnostic, check_program, has_errors, render_all
from sglc.frontend.models import check_model_names
from sglc.frontend.symbols import CheckedProgram
from sglc.ir import IRFormatError, IRProgram, compile_program, program_from_json, program_to_json
from sglc.progress import progress
from sglc.runtime.backends import Runtime
from sglc.runtime.executor import CallState, Interpreter, ProgramEvents, SGLRuntimeError, Trace
from sglc.runtime.executor.arguments import public_functions
from sglc.runtime.executor.generation import program_regexes

SAVED_FORMAT = "sglc-program"
_T = TypeVar("_T")
TraceOption = Trace | str | Path | None  # `trace=`: a Trace, or a file to write one to


class CompileError(Exception):
    """A program with errors; `diagnostics` holds them all, `str()` renders them."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
        self.diagnostics = diagnostics
        self.sources = sources
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(render_all(errors, sources))


class Program:
    """A compiled SGL program: its IR, the sources (for error messages), bound host fns."""

    def __init__(
        self,
        ir_program: IRProgram,
        sources: dict[str, str] | None = None,
        diagnostics: list[Diagnostic] | None = None,
    ) -> None:
        self.ir = ir_program
        self.sources = dict(sources or {})
        self.diagnostics = list(diagnostics or [])  # warnings of a successful compile
        self.hosts: dict[str, Callable[..., Any]] = {}
        self.runtime: Runtime | None = None

    # -- introspection and binding ----------------------------------------------------------
    @property
    def functions(self) -> list[str]:
        """Names of the fns you can call (the main module's)."""
        return sorted(public_functions(self.ir))

    @property
    def entry(self) -> str | None:
        return self.ir.entry.rsplit(".", 1)[-1] if self.ir.entry else None

    def bind(self, **host_fns: Callable[..., Any]) -> Program:
        """Supply Python callables (sync or async) for `extern fn`s, by name; returns self."""
        for name, fn in host_fns.items():
            if not callable(fn):
                raise TypeError(f"bind({name}=...) needs a callable, got {type(fn).__name__}")
        self.hosts.update(host_fns)
        return self

    def __getattr__(self, name: str) -> BoundFn:
        if name.startswith("_") or name in ("ir", "sources", "diagnostics", "hosts", "runtime"):
            raise AttributeError(name)  # not set yet (copy, unpickling): no fn lookup
        if name not in self.functions:
            raise AttributeError(
                f"the program has no fn '{name}' (fns: {', '.join(self.functions) or 'none'})"
            )
        return BoundFn(self, name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.functions]

    # -- running -------------------------------------------------------------------------------
    def run(self, fn: str | None = None, *args: Any, **kwargs: Any) -> Any:
        """Call fn (default: `main`) and wait for its value. Options: runtime=, trace=,
        events=, out=; gen parameters as call-level defaults (temperature=0.7)."""
        return _run_sync(self.run_async(fn, *args, **kwargs))

    def state(self, fn: str | None = None, *args: Any, **kwargs: Any) -> CallState:
        """`run`, returning what the call left: `.value`, `.text` and `.messages` (its
        prompt at return), `.meta` (each gen's and select's meta info, by name)."""
        return _run_sync(self.state_async(fn, *args, **kwargs))

    async def state_async(
        self,
        fn: str | None = None,
        *args: Any,
        runtime: Runtime | None = None,
        trace: TraceOption = None,
        events: ProgramEvents | None = None,
        out: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> CallState:
        recorder = _recorder(trace)
        interp = self.interpreter(runtime, trace=recorder, events=events, out=out)
        return await self._located(interp.call_state(self._fn_name(fn), args, kwargs),
                                   recorder, trace)

    async def run_async(
        self,
        fn: str | None = None,
        *args: Any,
        runtime: Runtime | None = None,
        trace: TraceOption = None,
        events: ProgramEvents | None = None,
        out: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        recorder = _recorder(trace)
        interp = self.interpreter(runtime, trace=recorder, events=events, out=out)
        return await self._located(interp.call(self._fn_name(fn), args, kwargs), recorder,
                                   trace)

    def batch(self, fn: str, calls: Iterable[Any], **options: Any) -> list[Any]:
        """Run fn once per argument set (a dict, a tuple, or a single value) concurrently;
        results in order. The engine batches the calls' model requests together. Gen
        parameters among the options (temperature=0.7) are defaults for every call."""
        return _run_sync(self.batch_async(fn, calls, **options))

    async def batch_async(
        self,
        fn: str,
        calls: Iterable[Any],
        *,
        runtime: Runtime | None = None,
        trace: TraceOption = None,
        events: ProgramEvents | None = None,
        out: Callable[[str], None] | None = None,
        **defaults: Any,
    ) -> list[Any]:
        recorder = _recorder(trace)
        interp = self.interpreter(runtime, trace=recorder, events=events, out=out)
        arguments = [_call_arguments(call) for call in calls]
        name = self._fn_name(fn)
        # a bar on a terminal, over a second, for many runs; not under streamed gen text
        shown = len(arguments) > 1 and events is None
        with progress(desc=name, total=len(arguments), unit="run", delay=1.0,
                      enabled=shown) as bar:
            return await self._located(
                interp.call_many(name, arguments, defaults, on_done=bar.update), recorder,
                trace,
            )

    def interpreter(
        self,
        runtime: Runtime | None = None,
        *,
        trace: Trace | None = None,
        events: ProgramEvents | None = None,
        out: Callable[[str], None] | None = None,
    ) -> Interpreter:
        """An Interpreter of this program on `runtime` (one per event loop). The model starts
        building the automata of the program's constrained gens meanwhile."""
        if runtime is None:
            if self.runtime is None:
                self.runtime = Runtime()
            runtime = self.runtime
        client = runtime.client
        models = runtime.model_clients
        for c in {id(c): c for c in [client, *models.values()]}.values():
            c.prebuild(program_regexes(self.ir))
        return Interpreter(
            self.ir, client, hosts=self.hosts, trace=trace, out=out, events=events,
            models=models, default_model=runtime.default_model, mux=runtime.multiplexer,
        )

    def _fn_name(self, fn: str | None) -> str:
        return fn or self.entry or "main"

    async def _located(self, call: Coroutine[Any, Any, _T], recorder: Trace | None = None,
                       destination: TraceOption = None) -> _T:
        """Await a call; its SGLRuntimeError renders with this program's sources. The trace
        (if any) learns how the run ended, and is written if `destination` is a path."""
        error = None
        if recorder is not None:
            recorder.start()  # the model has loaded (making the interpreter loads it)
        try:
            return await call
        except SGLRuntimeError as exc:
            exc.sources = self.sources
            error = trace_error(exc)
            raise
        finally:
            if recorder is not None:
                recorder.finish(error)
                if isinstance(destination, (str, Path)):
                    save_trace(recorder, destination, self.sources)

    # -- saving ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": SAVED_FORMAT, "ir": program_to_json(self.ir), "sources": self.sources}

    def save(self, path: str | Path) -> None:
        """Write the compiled program as JSON; `sglc.load` reads it back without parsing."""
        Path(path).write_text(
            json.dumps(self.to_json(), ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Program:
        if not isinstance(data, Mapping) or data.get("format") != SAVED_FORMAT:
            raise ValueError(
                "not a saved sglc program (expected the JSON that `sglc compile "
                "--emit json` and Program.save write)"
            )
        try:
            return cls(program_from_json(data["ir"]), data.get("sources") or {})
        except (IRFormatError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a damaged or incompatible saved program: {exc}") from None


def _recorder(trace: TraceOption) -> Trace | None:
    """The Trace a call records into: the caller's own, or a new one for a path."""
    return Trace() if isinstance(trace, (str, Path)) else trace


def trace_error(exc: SGLRuntimeError) -> dict[str, Any]:
    """How a failed run is written in its trace: the message, the SGL location, the stack."""
    return {"message": exc.message, "hint": exc.hint,
            "location": None if exc.span is None else str(exc.span),
            "stack": [str(site) for site in exc.stack]}


def save_trace(trace: Trace, path: str | Path, sources: Mapping[str, str] | None = None) -> None:
    """Write `trace` to `path`: the viewer's HTML page for a `.html` path, else JSON."""
    if str(path).endswith((".html", ".htm")):
        from sglc.trace_view import write_html

        write_html(trace.to_json(), path, sources=sources)
    else:
        trace.save(path)


def _call_arguments(call: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One argument set of `batch`: a dict (by name), a tuple or list, or a single value."""
    if isinstance(call, Mapping):
        return (), dict(call)
    if isinstance(call, (tuple, list)):
        return tuple(call), {}
    return (call,), {}


class BoundFn:
    """`prog.react`: call it, `.async_(...)` it, or `.batch([...])` it."""

    def __init__(self, program: Program, name: str) -> None:
        self.program = program
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.program.run(self.name, *args, **kwargs)

    async def async_(self, *args: Any, **kwargs: Any) -> Any:
        return await self.program.run_async(self.name, *args, **kwargs)

    def state(self, *args: Any, **kwargs: Any) -> CallState:
        """The call's value, prompt (`.text`, `.messages`) and gens' `.meta`."""
        return self.program.state(self.name, *args, **kwargs)

    async def state_async(self, *args: Any, **kwargs: Any) -> CallState:
        return await self.program.state_async(self.name, *args, **kwargs)

    def batch(self, calls: Iterable[Any], **options: Any) -> list[Any]:
        return self.program.batch(self.name, calls, **options)

    async def batch_async(self, calls: Iterable[Any], **options: Any) -> list[Any]:
        return await self.program.batch_async(self.name, calls, **options)

    def __repr__(self) -> str:
        return f"<sgl fn {self.name}>"


def compile(  # noqa: A001 - the API name
    source: str, filename: str | None = None, *, skip_passes: tuple[str, ...] = (),
    models: Collection[str] | None = None,
) -> Program:
    """Compile SGL source text (imports resolve next to `filename`, or the current folder).

    `skip_passes` names optional IR passes to leave out (e.g. `("prefix_sharing",)` for a
    baseline); see `sglc.ir.passes.PASSES`. `models`: the model names the program will run
    with (`Runtime.model_names`); a constant `model="..."` naming another is an error."""
    checked, diags = check_program(source, filename=filename or "<string>")
    return _finish(checked, _with_models(checked, diags, models), skip_passes)


def load(path: str | Path, *, models: Collection[str] | None = None,
         skip_passes: tuple[str, ...] = ()) -> Program:
    """Load a `.sgl` file (compiling it, without the passes `skip_passes` names) or a saved
    compiled `.json` program. `models`: as `compile`'s (not checked for a `.json` program)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        return Program.from_json(data)
    checked, diags = check_program(path)
    return _finish(checked, _with_models(checked, diags, models), skip_passes)
def _with_models(checked: CheckedProgram, diags: list[Diagnostic],
                 models: Collection[str] | None) -> list[Diagnostic]:
    if models is None or not checked.ok:
        return diags
    return [*diags, *check_model_names(checked, models)]


def compile_checked(
    checked: CheckedProgram, diags: list[Diagnostic], skip_passes: tuple[str, ...] = ()
) -> tuple[IRProgram | None, list[Diagnostic]]:
    """Front-end result -> (IRProgram or None, all diagnostics)."""
    if not checked.ok:
        return None, diags
    ir_program, ir_diags = compile_program(checked, skip=skip_passes)
    return ir_program, [*diags, *ir_diags]


def _finish(
    checked: CheckedProgram, diags: list[Diagnostic], skip_passes: tuple[str, ...] = ()
) -> Program:
    ir_program, diags = compile_checked(checked, diags, skip_passes)
    if ir_program is None or has_errors(diags):
        raise CompileError(diags, checked.sources)
    return Program(ir_program, checked.sources, diags)


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "a Program was called synchronously inside a running event loop; "
        "use `await prog.run_async(...)` or `await prog.fn.async_(...)`"
    )
