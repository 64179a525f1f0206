"""The SGL executor: runs IR programs on an engine with asyncio.

interpreter.py   frames, control flow, calls, fork / parallel for, host calls, specs
model_ops.py     gen / select / prefetch against the engine (healing, schema fields)
model_calls.py   EngineClient: ready gens of all branches go to the engine as one wave
generation.py    sampling params, constraint checks, prompt-boundary healing
streams.py       a call's prompt: chat turns + raw text, incremental token ids
builtins.py      value ops and builtins with SGL-level error messages
host.py          extern fn bindings, --tools files, the built-in calculator
errors.py        SGLRuntimeError & co: .sgl location + SGL call stack, rendered
trace.py         --trace: one JSON record per model call
"""

from sglc.runtime.executor.errors import (
    ArgumentError,
    GenError,
    HostError,
    SGLRuntimeError,
    SpecViolation,
)
from sglc.runtime.executor.interpreter import Interpreter
from sglc.runtime.executor.model_calls import EngineClient
from sglc.runtime.executor.streams import Stream
from sglc.runtime.executor.trace import Trace

__all__ = [
    "ArgumentError",
    "EngineClient",
    "GenError",
    "HostError",
    "Interpreter",
    "SGLRuntimeError",
    "SpecViolation",
    "Stream",
    "Trace",
]
