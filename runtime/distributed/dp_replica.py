"""A data-parallel replica process: one whole engine, serving the front end's requests
over a pipe.

    front ──("add", groups) ("abort", rid) ("prebuild", regexes) ("stats", token) ("close",)──►
    replica ──("ready", max_context_len, num_kv_slots) | ("error", message)
              ("delta", StreamDelta) ("output", Output, scored logprobs) ("stats", token, dict)──►

The engine class is passed in (`engine_type`) rather than imported: the engine builds its
front end from this package, so this package must not import the engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from sglc.runtime.distributed.lifecycle import exit_with_parent

log = logging.getLogger(__name__)


def run_replica(engine_type: Callable[..., Any], model_path: str, options: dict,
                conn: Connection) -> None:
    """The replica's process target: build the engine, report ready, serve until told to
    close or until the front end is gone."""
    exit_with_parent()
    try:
        engine = engine_type(model_path, **options)
    except Exception as exc:  # noqa: BLE001 - the front end raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    lock = threading.Lock()
    reqs: dict[tuple[str, int], Any] = {}  # (rid, index) -> Req, for scored logprobs

    def send(message: tuple) -> None:
        with lock:
            conn.send(message)

    def on_output(output: Any) -> None:
        req = reqs.pop((output.rid, output.index), None)
        send(("output", output, req.out.scored_logprobs if req is not None else []))

    def on_delta(delta: Any) -> None:
        send(("delta", delta))

    try:
        send(("ready", engine.max_context_len, engine.pool_capacity))
        while True:
            message = conn.recv()
            kind = message[0]
            if kind == "add":
                for group in message[1]:
                    reqs.update(((r.rid, r.index), r) for r in group)
                try:
                    engine.submit_requests(message[1], on_output=on_output, on_delta=on_delta)
                except Exception as exc:  # noqa: BLE001 - e.g. a request id in flight
                    for group in message[1]:
                        send(("refused", group[0].rid, f"{type(exc).__name__}: {exc}"))
            elif kind == "abort":
                engine.abort(message[1])
            elif kind == "prebuild":
                engine.prebuild_constraints(message[1])
            elif kind == "stats":
                send(("stats", message[1], engine.stats()))
            elif kind == "close":
                break
    except (EOFError, OSError):  # the front end is gone
        pass
    finally:
        engine.shutdown()
