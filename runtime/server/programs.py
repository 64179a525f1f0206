"""`/v1/programs`: SGL programs run server-side (the SGLang "program on the server" path).

`POST /v1/programs/run` with `{"program": NAME}` (registered at start with `--program FILE`,
named by the file's stem) or `{"source": "..."}` (compiled per request, unless uploads are
off), `fn` (default: the entry, `main`), `args` (a JSON object of named arguments or a list
of positional ones) and `trace` (default true). It answers

    {"program", "fn", "value", "output": what the program printed, "trace": {...} | null}

A compile or argument error is a 400 with the rendered diagnostics as the message; a
failure while running (a spec violation, a failed gen) a 422; a run past the server's
`program_timeout_s` a 504. `GET /v1/programs` lists the registered programs and their fns.

Uploaded source can never read the server's files: it compiles in an empty folder, may not
`import "path"`, and a program that still pulled in a file outside the standard library is
refused without showing any of it. Each run gets its own event loop in a worker thread, so
a program's host-side work never stalls the server's loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from pydantic import JsonValue

import sglc
from sglc.runtime.server.config import ServerConfig
from sglc.runtime.server.connection import unless_disconnected
from sglc.runtime.server.engine_api import ServingEngine
from sglc.runtime.server.errors import APIError, bad_request
from sglc.runtime.server.protocol import ProgramRunRequest
from sglc.runtime.server.state import ServerState

_PATH_IMPORT = re.compile(r"^\s*(from\s+\S+\s+)?import\s+[\"']", re.MULTILINE)
_UPLOAD_NAME = "<upload>"
JsonArgs = dict[str, JsonValue] | list[JsonValue]


def load_registered(paths: Mapping[str, Path]) -> dict[str, sglc.Program]:
    """Compile the `--program` files at start; a broken one stops the server (CompileError)."""
    return {name: sglc.load(path) for name, path in paths.items()}


class ProgramRunner:
    """Compiles uploads safely and runs programs on the server's engine."""

    def __init__(self, engine: ServingEngine, config: ServerConfig) -> None:
        self.runtime = sglc.Runtime(engine=engine)
        self.config = config
        self.registered = load_registered(config.programs)
        self._pool = ThreadPoolExecutor(config.max_program_runs, "sglc-program")
        self._running = 0  # program threads busy (event loop only)
        self._upload_dir = Path(tempfile.mkdtemp(prefix="sglc-uploads-"))
        self._stdlib = Path(str(resources.files("sglc.stdlib"))).resolve()
        self.upload_filename = str(self._upload_dir / "program.sgl")

    def redact(self, text: str) -> str:
        """Uploads are named `<upload>` in messages and traces, not by the server's path."""
        return text.replace(self.upload_filename, _UPLOAD_NAME)

    def program(self, body: ProgramRunRequest) -> tuple[str, sglc.Program]:
        if (body.program is None) == (body.source is None):
            raise bad_request("give exactly one of program (a registered name) or source",
                              "program")
        if body.program is not None:
            if body.program not in self.registered:
                names = ", ".join(sorted(self.registered)) or "none"
                raise APIError(404, f"no registered program '{body.program}' "
                                    f"(registered: {names})", param="program",
                               code="program_not_found")
            return body.program, self.registered[body.program]
        if not self.config.allow_program_upload:
            raise APIError(403, "this server runs registered programs only "
                                "(started with --disable-program-upload)",
                           param="source", code="upload_disabled")
        return _UPLOAD_NAME, self._compile_upload(body.source or "")

    def _compile_upload(self, source: str) -> sglc.Program:
        if _PATH_IMPORT.search(source):
            raise bad_request("uploaded programs may import standard-library modules only, "
                              'not files (import "path")', "source", "import_not_allowed")
        filename = self.upload_filename
        try:
            program = sglc.compile(source, filename=filename)
        except sglc.CompileError as exc:
            self._check_sources(exc.sources, filename)
            message = self.redact(str(exc))
            raise bad_request(message, "source", "compile_error") from None
        self._check_sources(program.sources, filename)
        return program

    def _check_sources(self, sources: Mapping[str, str], filename: str) -> None:
        for name in sources:
            if name == filename:
                continue
            path = Path(name).resolve()
            if not path.is_relative_to(self._stdlib):
                raise bad_request("uploaded programs may import standard-library modules only",
                                  "source", "import_not_allowed")

    async def run(self, program: sglc.Program, fn: str | None, args: JsonArgs,
                  want_trace: bool) -> dict[str, Any]:
        """Run fn on a program thread with its own event loop; returns value, output, trace.

        NOTE: a program is cancelled at its next await (a model call); one computing without
        any cannot be stopped. Past the timeout the client gets 504 at once, and the run keeps
        its program thread (so counts against max_program_runs) until it really ends."""
        if self._running >= self.config.max_program_runs:
            raise APIError(503, f"the server is running its limit of "
                                f"{self.config.max_program_runs} programs; retry shortly",
                           code="overloaded", headers={"Retry-After": "1"})
        trace = sglc.Trace() if want_trace else None
        printed: list[str] = []
        positional = list(args) if isinstance(args, list) else []
        named = dict(args) if isinstance(args, dict) else {}
        call = _ProgramCall(lambda: program.run_async(
            fn, *positional, runtime=self.runtime, trace=trace, out=printed.append, **named))
        future = asyncio.get_running_loop().run_in_executor(self._pool, call.run)
        self._running += 1
        future.add_done_callback(self._ended)
        try:
            value = await asyncio.wait_for(asyncio.shield(future), self.config.program_timeout_s)
        except asyncio.TimeoutError:
            call.cancel()
            raise APIError(504, f"the program ran longer than {self.config.program_timeout_s:g} "
                                "s and was stopped", code="program_timeout") from None
        except asyncio.CancelledError:  # the client left: stop the program too
            call.cancel()
            raise
        except sglc.SGLRuntimeError as exc:
            code = "argument_error" if exc.kind == "argument error" else "program_error"
            status = 400 if code == "argument_error" else 422
            raise APIError(status, self.redact(str(exc)),
                           param="args" if status == 400 else None, code=code) from None
        traced = None
        if trace is not None:
            traced = json.loads(self.redact(json.dumps(trace.to_json(), ensure_ascii=False)))
        return {"value": _jsonable(value), "output": "".join(printed), "trace": traced}

    def _ended(self, future: asyncio.Future[Any]) -> None:
        self._running -= 1
        if not future.cancelled():
            future.exception()  # retrieved: a timed-out run's error is not worth a warning


class _ProgramCall:
    """One program run on its own event loop in a program thread; `cancel` from any thread."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self.make = make
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._is_cancelled = False

    def run(self) -> Any:
        async def main() -> Any:
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            if self._is_cancelled:
                raise asyncio.CancelledError
            return await self.make()

        return asyncio.run(main())

    def cancel(self) -> None:
        self._is_cancelled = True
        if self._loop is not None and self._task is not None:
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:  # its loop has closed: the run is over
                pass


def _jsonable(value: Any) -> Any:
    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return repr(value)


def programs_router(state: ServerState, runner: ProgramRunner) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/programs")
    async def list_programs() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"name": name, "functions": prog.functions, "entry": prog.entry}
            for name, prog in sorted(runner.registered.items())]}

    @router.post("/v1/programs/run")
    async def run_program(body: ProgramRunRequest, request: Request) -> dict[str, Any]:
        name, program = await asyncio.to_thread(runner.program, body)
        with state.jobs.admission.hold(1):
            result = await unless_disconnected(
                request, runner.run(program, body.fn, body.args, body.trace))
        return {"program": name, "fn": body.fn or program.entry or "main", **result}

    return router
