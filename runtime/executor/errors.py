"""Runtime errors of SGL programs, located in the `.sgl` source with an SGL call stack.

    agent.sgl:14:9: runtime error: gen 'n' produced text that does not match /[0-9]+/
            "Answer: " gen n: int(max_tokens=4)
                       ^~~~~~~~~~~~~~~~~~~~~~~~
      hint: the model wrote 'twelve'
      call stack (most recent call last):
        agent.sgl:22:5 in main
        agent.sgl:14:9 in solve

Rendering reuses the front end's diagnostic renderer, so runtime errors read like
compile errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from sglc.source import Diagnostic, Span, render


@dataclass(frozen=True)
class CallSite:
    """One entry of an SGL call stack: the function, and where in it the error is (or the
    call that led on)."""

    fn: str
    span: Span | None

    def __str__(self) -> str:
        where = str(self.span) if self.span is not None else "<unknown>"
        return f"{where} in {self.fn}"


class SGLRuntimeError(Exception):
    """A failure while running an SGL program, reported in SGL terms, never as a Python
    traceback. `span` is where it happened; `stack` the SGL calls that led there, outermost
    first (the last frame is the function the error is in)."""

    kind = "runtime error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        stack: tuple[CallSite, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.stack = stack
        self.sources: dict[str, str] | None = None  # set by Program: str() then renders all

    def with_context(self, span: Span | None, stack: tuple[CallSite, ...]) -> SGLRuntimeError:
        """Fill in the location and call stack where they are still missing."""
        if self.span is None:
            self.span = span
        if not self.stack:
            self.stack = stack
        return self

    def render(self, sources: dict[str, str] | None = None) -> str:
        sources = sources or {}
        if self.span is None:
            lines = [f"error: {self.kind}: {self.message}"]
            if self.hint:
                lines.append(f"  hint: {self.hint}")
        else:
            diag = Diagnostic("error", f"{self.kind}: {self.message}", self.span, self.hint)
            lines = [render(diag, sources.get(self.span.file)).replace(": error: ", ": ", 1)]
        if self.stack:
            lines.append("  call stack (most recent call last):")
            lines += fold_frames(self.stack)
        return "\n".join(lines)

    def __str__(self) -> str:
        if self.sources is not None:
            return self.render(self.sources)
        where = f"{self.span}: " if self.span is not None else ""
        return f"{where}{self.kind}: {self.message}"


def fold_frames(stack: tuple[CallSite, ...], max_period: int = 8) -> list[str]:
    """The call stack's lines, a run of 3 or more repeats of the same frames (recursion)
    shown once with a count."""
    lines: list[str] = []
    i = 0
    while i < len(stack):
        for period in range(1, min(max_period, (len(stack) - i) // 3) + 1):
            block = stack[i:i + period]
            reps = 1
            while stack[i + reps * period:i + (reps + 1) * period] == block:
                reps += 1
            if reps >= 3:
                lines += [f"    {frame}" for frame in block]
                frames = f"the {period} frames above repeat" if period > 1 else \
                    "the frame above repeats"
                lines.append(f"    ... {frames} {reps - 1} more times")
                i += period * reps
                break
        else:
            lines.append(f"    {stack[i]}")
            i += 1
    return lines


class SpecViolation(SGLRuntimeError):
    """A `requires`, `ensures` or `assert` that evaluated to false. An `ensures ... retry N`
    sets `retries` (N) and `frame` (the call it may re-run), which the interpreter reads."""

    kind = "spec violation"
    retries: int = 0
    frame: object | None = None


class HostError(SGLRuntimeError):
    """A host (`extern fn`) function that is missing, or that raised."""

    kind = "host function error"


class GenError(SGLRuntimeError):
    """A `gen` whose output does not fit its constraint, or a failed model call."""

    kind = "generation error"


class ArgumentError(SGLRuntimeError):
    """Arguments that do not fit a function's parameters (from Python, the CLI or SGL)."""

    kind = "argument error"
