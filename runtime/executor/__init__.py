"""The SGL executor: runs IR programs on a model with asyncio.

interpreter.py     the frame loop, control flow, calls, fork / parallel for, host calls, specs
value_ops.py       the value instructions (operators, containers, builtins, methods)
frames.py          Frame (variables, prompt, gen defaults, meta), CallState, text()/meta(x)
model_ops.py       gen / select / prefetch: healing, values, meta, trace records, events
choices.py         how a select ranks its options (choices_method) and picks one
model_calls.py     ModelCalls: ready gens of all branches go to the model as one wave
model_choice.py    ModelChoice: which named model a gen, select or call runs on
client.py          ModelClient: the protocol a model implements for the executor
events.py          ProgramEvents: gen text as it is decoded, gen and select values
generation.py      sampling params, constraint checks, prompt-boundary healing
prompt_stream.py   PromptStream: a call's prompt, chat turns + raw text, as token ids
arguments.py       a program's callable fns, binding arguments to parameters
builtins.py        value ops and builtins with SGL-level error messages
host.py            extern fn bindings, --tools files, the built-in calculator
errors.py          SGLRuntimeError & co: .sgl location + SGL call stack, rendered
trace.py           --trace: one JSON record per model call

The executor imports no engine: a model is whatever implements `ModelClient`
(`sglc.runtime.backends` has the in-process one).
"""

from sglc.runtime.executor.client import ModelClient, OptionScore, Tokenizer
from sglc.runtime.executor.errors import (
    ArgumentError,
    GenError,
    HostError,
    SGLRuntimeError,
    SpecViolation,
)
from sglc.runtime.executor.events import ProgramEvents
from sglc.runtime.executor.frames import CallState
from sglc.runtime.executor.interpreter import Interpreter
from sglc.runtime.executor.prompt_stream import PromptStream
from sglc.runtime.executor.trace import Trace

__all__ = [
    "ArgumentError",
    "CallState",
    "GenError",
    "HostError",
    "Interpreter",
    "ModelClient",
    "OptionScore",
    "ProgramEvents",
    "PromptStream",
    "SGLRuntimeError",
    "SpecViolation",
    "Tokenizer",
    "Trace",
]
