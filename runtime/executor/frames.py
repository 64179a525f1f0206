"""A running SGL call: its frame (variables, prompt, gen defaults, what its gens and selects
did), the view of it that `text()`, `messages()` and `meta(x)` read, and `CallState`, what
a call from Python can read back afterwards (`prog.f.state(...)`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sglc import ir
from sglc.lang import GEN_PARAMS
from sglc.lang.values import ValueOpError
from sglc.runtime.executor.errors import CallSite
from sglc.runtime.executor.prompt_stream import PromptStream
from sglc.source import Span


@dataclass
class Frame:
    """One SGL call being run: its variables, its prompt, the gen-parameter defaults in
    force (call-level ones with the `with` defaults of each fn on the call chain over them),
    and the meta info of each gen and select it ran, by name."""

    fn: ir.IRFunction
    label: str  # how the call stack names it: "react", "solve (fork branch 2 of 3)"
    vars: dict[str, Any]
    prompt: PromptStream
    callers: tuple[CallSite, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    just_prefetched: bool = False
    # the frames from the outermost call to this one, as (frame id, label): where the trace
    # puts this frame's model calls in the call tree
    path: tuple[tuple[int, str], ...] = ()
    attempt: int = 0  # how many times an `ensures ... retry N` re-ran this call so far

    def here(self, span: Span | None) -> tuple[CallSite, ...]:
        return (*self.callers, CallSite(self.label, span))

    def context(self) -> FrameContext:
        return FrameContext(self)


@dataclass(frozen=True)
class FrameContext:
    """The `CallContext` (sglc.lang.state) of a frame."""

    frame: Frame

    def text(self) -> str:
        return self.frame.prompt.text()

    def messages(self) -> list[dict[str, str]]:
        return stream_messages(self.frame.prompt)

    def meta(self, name: str) -> Any:
        if name not in self.frame.meta:
            raise ValueOpError(f"meta({name}): gen or select '{name}' has not run yet")
        return copy.deepcopy(self.frame.meta[name])


def stream_messages(prompt: PromptStream) -> list[dict[str, str]]:
    """The chat turns of a prompt, the open one (as written so far) included."""
    out = [dict(m) for m in prompt.messages]
    if prompt.turn is not None:
        out.append({"role": prompt.turn.role, "content": prompt.turn.content})
    return out


def frame_defaults(caller: dict[str, Any], fn: ir.IRFunction) -> dict[str, Any]:
    """The defaults of a call of `fn`: its caller's, with `fn`'s `with` defaults over them."""
    return {**caller, **dict(fn.defaults)} if fn.defaults else caller


def check_defaults(defaults: dict[str, Any]) -> str | None:
    """Why call-level defaults cannot be used (an unknown or non-inheritable parameter, a
    value of the wrong type or range), or None."""
    for name, value in defaults.items():
        param = GEN_PARAMS.get(name)
        problem = f"unknown gen parameter '{name}'" if param is None else \
            param.default_error(value)
        if problem is not None:
            return problem
    return None


@dataclass
class CallState:
    """What a call of an SGL fn left: its value, its prompt as text and as chat messages
    (at its return), and the meta info of each gen and select it ran (`meta(x)` in SGL),
    by name."""

    value: Any
    text: str
    messages: list[dict[str, str]]
    meta: dict[str, Any]

    @classmethod
    def of(cls, value: Any, frame: Frame) -> CallState:
        return cls(value, frame.prompt.text(), stream_messages(frame.prompt), dict(frame.meta))


__all__ = ["CallState", "Frame", "FrameContext", "check_defaults", "frame_defaults",
           "stream_messages"]
