"""The Python API: compile or load SGL programs and call their fns.

    import sglc
    prog = sglc.load("examples/agent.sgl")            # or sglc.compile(source)
    rt = sglc.Runtime(model_path="path/to/model")     # or Runtime(engine=an_engine)
    prog.bind(search=my_search)                       # host fns for `extern fn`s
    answer = prog.react("What is 12*7?", runtime=rt)
    answers = prog.react.batch([("What is 2+2?",), {"question": "3*3?"}], runtime=rt)
    answer = await prog.react.async_("What is 12*7?", runtime=rt)
    prog.save("agent.json"); sglc.load("agent.json")  # no re-parsing

Every call may take `runtime=` and `trace=` (a Trace to record model calls into); without
`runtime=` a program uses its own `Runtime()` on the default model, made on first use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sglc.frontend import Diagnostic, check_program, has_errors, render_all

SAVED_FORMAT = "sglc-program"
_RESERVED = ("runtime", "trace")


class CompileError(Exception):
    """A program with errors; `diagnostics` holds them all, `str()` renders them."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
        self.diagnostics = diagnostics
        self.sources = sources
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(render_all(errors, sources))


class Runtime:
    """Where programs run: an `sglc.Engine`, given or created on first use with
    `Engine(model_path, **engine_options)` (model_path None: the embedded default model)."""

    def __init__(
        self, engine: Any = None, model_path: str | Path | None = None, **engine_options: Any
    ) -> None:
        if engine is not None and (model_path is not None or engine_options):
            raise ValueError("give either an engine or model_path/engine options, not both")
        self._engine = engine
        self._owns_engine = engine is None
        self.model_path = model_path
        self.engine_options = engine_options

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from sglc.runtime.engine import Engine

            self._engine = Engine(self.model_path, **self.engine_options)
        return self._engine

    def close(self) -> None:
        """Shut down the engine if this runtime created it."""
        if self._owns_engine and self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Program:
    """A compiled SGL program: its IR, the sources (for error messages), bound host fns."""

    def __init__(
        self,
        ir_program: Any,
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
        from sglc.runtime.executor.interpreter import public_functions

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
        """Call fn (default: `main`) and wait for its value. Options: runtime=, trace=."""
        return _run_sync(self.run_async(fn, *args, **kwargs))

    async def run_async(
        self,
        fn: str | None = None,
        *args: Any,
        runtime: Runtime | None = None,
        trace: Any = None,
        out: Callable[[str], None] | None = None,
        on_gen: Callable[[str, str, str], None] | None = None,
        on_token: Callable[[str, str, str], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        interp = self.interpreter(runtime, trace, out, on_gen, on_token)
        return await self._call(interp, fn, args, kwargs)

    def batch(self, fn: str, calls: Iterable[Any], **options: Any) -> list[Any]:
        """Run fn once per argument set (a dict, a tuple, or a single value) concurrently;
        results in order. The engine batches the calls' model requests together."""
        return _run_sync(self.batch_async(fn, calls, **options))

    async def batch_async(
        self,
        fn: str,
        calls: Iterable[Any],
        *,
        runtime: Runtime | None = None,
        trace: Any = None,
        out: Callable[[str], None] | None = None,
    ) -> list[Any]:
        from sglc.runtime.executor.interpreter import _gather

        interp = self.interpreter(runtime, trace, out)
        jobs = []
        for call in calls:
            if isinstance(call, Mapping):
                jobs.append(self._call(interp, fn, (), dict(call)))
            elif isinstance(call, (tuple, list)):
                jobs.append(self._call(interp, fn, tuple(call), {}))
            else:
                jobs.append(self._call(interp, fn, (call,), {}))
        return await _gather(jobs)

    def interpreter(
        self,
        runtime: Runtime | None = None,
        trace: Any = None,
        out: Callable[[str], None] | None = None,
        on_gen: Callable[[str, str, str], None] | None = None,
        on_token: Callable[[str, str, str], None] | None = None,
    ) -> Any:
        """An Interpreter of this program on `runtime` (one per event loop)."""
        from sglc.runtime.executor.generation import program_regexes
        from sglc.runtime.executor.interpreter import Interpreter
        from sglc.runtime.executor.model_calls import EngineClient

        if runtime is None:
            if self.runtime is None:
                self.runtime = Runtime()
            runtime = self.runtime
        engine = runtime.engine
        if hasattr(engine, "prebuild_constraints"):  # the gens' automata build meanwhile
            engine.prebuild_constraints(program_regexes(self.ir))
        return Interpreter(
            self.ir,
            EngineClient(runtime.engine),
            hosts=dict(self.hosts),
            trace=trace,
            out=out,
            on_gen=on_gen,
            on_token=on_token,
        )

    async def _call(self, interp: Any, fn: str | None, args: tuple, kwargs: dict) -> Any:
        from sglc.runtime.executor.errors import SGLRuntimeError

        name = fn or self.entry or "main"
        try:
            return await interp.call(name, args, kwargs)
        except SGLRuntimeError as exc:
            exc.sources = self.sources
            raise

    # -- saving ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        from sglc.ir.serialize import program_to_json

        return {"format": SAVED_FORMAT, "ir": program_to_json(self.ir), "sources": self.sources}

    def save(self, path: str | Path) -> None:
        """Write the compiled program as JSON; `sglc.load` reads it back without parsing."""
        Path(path).write_text(
            json.dumps(self.to_json(), ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Program:
        from sglc.ir.serialize import IRFormatError, program_from_json

        if not isinstance(data, Mapping) or data.get("format") != SAVED_FORMAT:
            raise ValueError(
                "not a saved sglc program (expected the JSON that `sglc compile "
                "--emit json` and Program.save write)"
            )
        try:
            return cls(program_from_json(data["ir"]), data.get("sources") or {})
        except (IRFormatError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a damaged or incompatible saved program: {exc}") from None


class BoundFn:
    """`prog.react`: call it, `.async_(...)` it, or `.batch([...])` it."""

    def __init__(self, program: Program, name: str) -> None:
        self.program = program
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.program.run(self.name, *args, **kwargs)

    async def async_(self, *args: Any, **kwargs: Any) -> Any:
        return await self.program.run_async(self.name, *args, **kwargs)

    def batch(self, calls: Iterable[Any], **options: Any) -> list[Any]:
        return self.program.batch(self.name, calls, **options)

    async def batch_async(self, calls: Iterable[Any], **options: Any) -> list[Any]:
        return await self.program.batch_async(self.name, calls, **options)

    def __repr__(self) -> str:
        return f"<sgl fn {self.name}>"


def compile(  # noqa: A001 - the API name
    source: str, filename: str | None = None, *, skip_passes: tuple[str, ...] = ()
) -> Program:
    """Compile SGL source text (imports resolve next to `filename`, or the current folder).

    `skip_passes` names optional IR passes to leave out (e.g. `("prefix_sharing",)` for a
    baseline); see `sglc.ir.passes.PASSES`."""
    checked, diags = check_program(source, filename=filename or "<string>")
    return _finish(checked, diags, skip_passes)


def load(path: str | Path) -> Program:
    """Load a `.sgl` file (compiling it) or a saved compiled `.json` program."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        return Program.from_json(data)
    checked, diags = check_program(path)
    return _finish(checked, diags)


def compile_checked(
    checked: Any, diags: list[Diagnostic], skip_passes: tuple[str, ...] = ()
) -> tuple[Any, list[Diagnostic]]:
    """Front-end result -> (IRProgram or None, all diagnostics)."""
    if not checked.ok:
        return None, diags
    from sglc.ir import compile_program

    ir_program, ir_diags = compile_program(checked, skip=skip_passes)
    return ir_program, [*diags, *ir_diags]


def _finish(checked: Any, diags: list[Diagnostic], skip_passes: tuple[str, ...] = ()) -> Program:
    ir_program, diags = compile_checked(checked, diags, skip_passes)
    if ir_program is None or has_errors(diags):
        raise CompileError(diags, checked.sources)
    return Program(ir_program, checked.sources, diags)


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "a Program was called synchronously inside a running event loop; "
        "use `await prog.run_async(...)` or `await prog.fn.async_(...)`"
    )
