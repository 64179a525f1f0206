"""sglc: a compiler and runtime for structured language-model programs.

Heavy parts (torch, the engine) load on first use, so `import sglc` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Engine": "sglc.runtime.engine",
    "ScoreResult": "sglc.runtime.engine",
    "default_model_path": "sglc.runtime.engine",
    "SamplingParams": "sglc.runtime.core",
    "Output": "sglc.runtime.core",
    "StreamDelta": "sglc.runtime.core",
    "FinishReason": "sglc.runtime.core",
    "EngineError": "sglc.runtime.core",
    "InvalidRequest": "sglc.runtime.core",
    "EngineConfig": "sglc.runtime.config",
    "compile": "sglc.program",
    "load": "sglc.program",
    "Program": "sglc.program",
    "Runtime": "sglc.runtime.backends",
    "MuxConfig": "sglc.runtime.mux",
    "CompileError": "sglc.program",
    "ProgramEvents": "sglc.runtime.executor.events",
    "SGLRuntimeError": "sglc.runtime.executor.errors",
    "SpecViolation": "sglc.runtime.executor.errors",
    "Trace": "sglc.runtime.executor.trace",
    "CallState": "sglc.runtime.executor.frames",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sglc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
