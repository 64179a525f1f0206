"""Where a request's results go: each request id's `Sink` (the caller's callbacks), called on
the engine's loop thread.

Callbacks are the caller's code: one that raises must not take the loop down. `Receivers`
calls them guarded and says when one raised, so the core can fail that request alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sglc.runtime.core import FinishReason, Output, StreamDelta, Usage
from sglc.runtime.req import Req

log = logging.getLogger(__name__)


@dataclass
class Sink:
    """Where a request's results go; called on the loop thread. `on_done(rid)` comes just
    before the last Output of a request id (its samples are all reported; the id is free)."""

    on_delta: Callable[[StreamDelta], None] | None
    on_output: Callable[[Output], None]
    on_done: Callable[[str], None] | None = None


@dataclass
class Receiver:
    sink: Sink
    num_unfinished: int  # samples of the request id still to report an Output


class Receivers:
    """The sink of each request id in flight."""

    def __init__(self) -> None:
        self.by_rid: dict[str, Receiver] = {}  # read by the core on the hot path

    def open(self, rid: str, sink: Sink, num_samples: int) -> bool:
        """Start reporting `num_samples` samples of `rid` to `sink`; False if `rid` is in
        flight already (its results would mix)."""
        if rid in self.by_rid:
            return False
        self.by_rid[rid] = Receiver(sink, num_samples)
        return True

    def send_output(self, output: Output) -> None:
        """Report one sample's Output; with the rid's last one, close it (`on_done`, just
        before). A raising callback is logged: the request has finished already."""
        receiver = self.by_rid.get(output.rid)
        if receiver is None:
            return
        receiver.num_unfinished -= 1
        if receiver.num_unfinished == 0:  # free the id first: a caller woken by the last
            del self.by_rid[output.rid]  # Output may reuse it at once
            if receiver.sink.on_done is not None:
                call(receiver.sink.on_done, output.rid, "on_done")
        call(receiver.sink.on_output, output, "on_output")


def call(callback: Callable[[object], None], arg: object, name: str) -> str | None:
    """Run a caller's callback; the error, worded for the request, if it raised."""
    try:
        callback(arg)
    except Exception as exc:  # noqa: BLE001 - the caller's code; its request fails alone
        log.exception("%s callback raised", name)
        return f"the {name} callback raised {type(exc).__name__}: {exc}"
    return None


def refused_output(req: Req, error: str) -> Output:
    """An Output for a request that ends with `error`, built from the request alone (for
    when the usual path, or its inputs, failed)."""
    return Output(
        rid=req.rid, index=req.index, text=req.out.text if isinstance(req.out.text, str) else "",
        token_ids=list(req.output_ids), finish_reason=FinishReason.ABORT,
        usage=Usage(len(req.prompt_ids), req.num_cached_prompt_tokens, len(req.output_ids),
                    req.num_forward_passes),
        error=error, prompt_index=req.prompt_index,
    )
