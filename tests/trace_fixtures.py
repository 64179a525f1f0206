"""The program the trace viewer's tests trace (tests/trace_view): fns, forks, parallel-for
items, a regex gen that jump-forward completes, logprobs, a select, and a gen that fails."""

from __future__ import annotations

import pytest

import sglc.program as api
from sglc.runtime.executor import SGLRuntimeError, Trace

PROGRAM = '''
fn item(word: str) -> str:
    "Say {word}: " gen said(max_tokens=2, logprobs=2, ignore_eos=True)
    return said

fn code() -> str:
    "Code: " gen c: /ID-[0-9]{2}-OK/(max_tokens=12)
    return c

fn main() -> str:
    "Once upon a time there was a quick brown fox. "
    fork 2 as f:
        " then" gen t(max_tokens=2, ignore_eos=True)
    let words = parallel for w in ["red", "blue"]:
        item(w)
    let c = code()
    "Pick: " select p in ["yes", "no"]
    return c

fn broken() -> str:
    "A number: " gen n: /[0-9]{40}/(max_tokens=3)
    return n
'''


def failing_trace(runtime) -> dict:
    prog = api.compile(PROGRAM, "viewer_demo.sgl")
    trace = Trace()
    with pytest.raises(SGLRuntimeError):
        prog.broken(runtime=runtime, trace=trace)
    return trace.to_json()
