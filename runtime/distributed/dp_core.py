"""DataParallelCore: the front end of `Engine(dp_size=N)`. It stands where an EngineCore
stands (the Engine's loop thread calls add, abort, step, ...), but its "step" is routing
requests to N replica processes and handing their results to the callers' sinks.

A replica that exits is reported (logged, and in `stats()`), the router stops sending it
requests, and its requests in flight fail with an error naming it: they are not retried
elsewhere (a retried request could run twice, with side effects a caller cannot see).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import EngineError, FinishReason, Output, StreamDelta, Usage
from sglc.runtime.distributed.dp_replica import run_replica
from sglc.runtime.distributed.router import NoReplica, make_router
from sglc.runtime.req import Req

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 600.0
_POLL_S = 0.005  # how long a step waits for a replica's message
_CLOSE_GRACE_S = 10.0


@dataclass
class _Flight:
    """One request id in flight on a replica."""

    replica: int
    sink: Any  # engine.delivery.Sink: on_delta, on_output, on_done
    reqs: list[Req]
    reported: set[int] = field(default_factory=set)  # sample indices with an Output


class _Replica:
    def __init__(self, index: int, process: mp.process.BaseProcess, conn: Connection) -> None:
        self.index, self.process, self.conn = index, process, conn
        self.is_alive = True
        self.send_lock = threading.Lock()

    def send(self, message: tuple) -> bool:
        """False if the replica is gone."""
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, EOFError, BrokenPipeError):
            return False


class DataParallelCore:
    def __init__(self, engine_type: Callable[..., Any], model_path: Path,
                 options: dict, config: EngineConfig) -> None:
        self.config = config
        self.router = make_router(config.dp_router, config.dp_size, config.dp_balance_threshold,
                                  config.dp_cache_threshold)
        self._events: queue.Queue[tuple[int, tuple]] = queue.Queue()
        self._flights: dict[str, _Flight] = {}
        self._stats_replies: dict[int, dict] = {}
        self._tokens = itertools.count()
        self.exited: list[str] = []  # one line per replica that exited
        context = mp.get_context("spawn")
        replica_options = {**options, "dp_size": 1}
        self.replicas: list[_Replica] = []
        try:
            for i in range(config.dp_size):
                mine, theirs = context.Pipe()
                proc = context.Process(target=run_replica, name=f"sglc-dp-replica{i}",
                                       args=(engine_type, str(model_path), replica_options, theirs),
                                       daemon=True)
                proc.start()
                theirs.close()
                self.replicas.append(_Replica(i, proc, mine))
            self.capacity = self._wait_ready()
        except BaseException:
            self._stop_processes()
            raise
        for replica in self.replicas:
            threading.Thread(target=self._read, args=(replica,), daemon=True,
                             name=f"sglc-dp-read{replica.index}").start()

    @property
    def replica_pids(self) -> list[int]:
        return [r.process.pid for r in self.replicas]

    def _wait_ready(self) -> tuple[int, int]:
        """(max_context_len, KV slots) every replica offers; EngineError if one fails."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        ready = []
        for replica in self.replicas:
            while not replica.conn.poll(0.5):
                if not replica.process.is_alive() or time.monotonic() > deadline:
                    raise EngineError(f"data-parallel replica {replica.index} did not start "
                                      f"(exit code {replica.process.exitcode})")
            message = replica.conn.recv()
            if message[0] == "error":
                raise EngineError(f"data-parallel replica {replica.index} failed to start: "
                                  f"{message[1]}")
            ready.append(message[1:])
        return min(r[0] for r in ready), min(r[1] for r in ready)

    def _read(self, replica: _Replica) -> None:
        """A reader thread: the replica's messages into the event queue, then its exit."""
        try:
            while True:
                self._events.put((replica.index, replica.conn.recv()))
        except (EOFError, OSError):
            replica.process.join(5.0)
            self._events.put((replica.index, ("exited", replica.process.exitcode)))

    # -- the EngineCore interface -------------------------------------------------------------
    def add(self, reqs: list[Req], sink: Any) -> None:
        rid = reqs[0].rid
        if rid in self._flights:
            self._fail(reqs, sink, f"request id {rid!r} is already in flight: give each request "
                                   "its own id", closes=False)  # the id stays the other's
            return
        loads = [0] * len(self.replicas)
        for flight in self._flights.values():
            loads[flight.replica] += 1
        try:
            route = self.router.route(reqs[0].prompt_ids, loads,
                                      [r.is_alive for r in self.replicas])
        except NoReplica as exc:
            self._fail(reqs, sink, str(exc))
            return
        self._flights[rid] = _Flight(route.replica, sink, reqs)
        if not self.replicas[route.replica].send(("add", [reqs])):
            self._fail_flight(rid, self._exit_message(route.replica))

    def abort(self, rid: str, error: str | None = None) -> None:
        flight = self._flights.get(rid)
        if flight is None:
            return
        self.replicas[flight.replica].send(("abort", rid))
        if error is not None:  # finish now, not when the replica answers
            self._fail_flight(rid, error)

    def abort_all(self, error: str) -> None:
        for rid in list(self._flights):
            self.abort(rid, error)

    def prebuild(self, regexes: Sequence[str]) -> None:
        for replica in self.replicas:
            if replica.is_alive:
                replica.send(("prebuild", list(regexes)))

    def close(self) -> None:
        self.abort_all("the engine was shut down")
        for replica in self.replicas:
            replica.send(("close",))
        self._stop_processes()

    @property
    def is_idle(self) -> bool:
        return not self._flights

    def step(self) -> None:
        """Hand on what the replicas sent (waiting a moment for the first message)."""
        try:
            event = self._events.get(timeout=_POLL_S)
        except queue.Empty:
            return
        while True:
            self._dispatch(*event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def stats(self) -> DataParallelStats:
        """Every live replica's stats (summed, and each), with the routes taken."""
        token = next(self._tokens)
        asked = [r.index for r in self.replicas if r.is_alive and r.send(("stats", token))]
        deadline = time.monotonic() + 30.0
        while not all(i in self._stats_replies for i in asked) and time.monotonic() < deadline:
            try:
                self._dispatch(*self._events.get(timeout=0.1))
            except queue.Empty:
                continue
        replies = [self._stats_replies.pop(i) for i in asked if i in self._stats_replies]
        return DataParallelStats(replies, dict(self.router.counts), list(self.exited))

    # -- replica messages ----------------------------------------------------------------------
    def _dispatch(self, index: int, message: tuple) -> None:
        kind = message[0]
        if kind == "delta":
            delta: StreamDelta = message[1]
            flight = self._flights.get(delta.rid)
            if flight is not None and flight.sink.on_delta is not None:
                _guarded(flight.sink.on_delta, delta)
        elif kind == "output":
            self._deliver(message[1], message[2])
        elif kind == "refused":
            self._fail_flight(message[1], message[2])
        elif kind == "stats":
            self._stats_replies[index] = message[2]
        elif kind == "exited":
            self._on_exit(index, message[1])

    def _deliver(self, output: Output, scored: list[float]) -> None:
        flight = self._flights.get(output.rid)
        if flight is None or output.index in flight.reported:
            return
        flight.reported.add(output.index)
        for req in flight.reqs:
            if req.index == output.index:
                req.out.scored_logprobs = list(scored)
        if len(flight.reported) == len(flight.reqs):
            del self._flights[output.rid]
            if flight.sink.on_done is not None:
                _guarded(flight.sink.on_done, output.rid)
        _guarded(flight.sink.on_output, output)

    def _on_exit(self, index: int, exitcode: int | None) -> None:
        replica = self.replicas[index]
        if not replica.is_alive:
            return
        replica.is_alive = False
        self.router.forget(index)
        message = self._exit_message(index, exitcode)
        self.exited.append(message)
        log.error("%s", message)
        for rid in [rid for rid, f in self._flights.items() if f.replica == index]:
            self._fail_flight(rid, message)

    def _exit_message(self, index: int, exitcode: int | None = None) -> str:
        replica = self.replicas[index]
        code = replica.process.exitcode if exitcode is None else exitcode
        return (f"data-parallel replica {index} (pid {replica.process.pid}) exited with code "
                f"{code}; its requests failed (they are not retried)")

    def _fail_flight(self, rid: str, error: str) -> None:
        flight = self._flights.pop(rid, None)
        if flight is None:
            return
        unreported = [r for r in flight.reqs if r.index not in flight.reported]
        self._fail(unreported, flight.sink, error)

    def _fail(self, reqs: list[Req], sink: Any, error: str, closes: bool = True) -> None:
        """Finish `reqs` with `error`; `closes`: their request id is then free (on_done)."""
        for k, req in enumerate(reqs):
            if closes and k == len(reqs) - 1 and sink.on_done is not None:
                _guarded(sink.on_done, req.rid)
            _guarded(sink.on_output, Output(
                rid=req.rid, index=req.index, text="", token_ids=[],
                finish_reason=FinishReason.ABORT, usage=Usage(len(req.prompt_ids), 0, 0),
                error=error, prompt_index=req.prompt_index))

    def _stop_processes(self) -> None:
        deadline = time.monotonic() + _CLOSE_GRACE_S
        for replica in self.replicas:
            replica.process.join(max(0.0, deadline - time.monotonic()))
        for replica in self.replicas:
            if replica.process.is_alive():
                replica.process.terminate()
                replica.process.join(2.0)
            if replica.process.is_alive():
                replica.process.kill()
                replica.process.join(2.0)


@dataclass(frozen=True)
class DataParallelStats:
    """`Engine.stats()` of a data-parallel engine: the replicas' counters summed (the cache
    hit rate recomputed from the sums), each replica's own, the router's routes by reason,
    and the replicas that exited."""

    replicas: list[dict]
    routes: dict[str, int]
    exited: list[str]

    def to_dict(self) -> dict:
        total: dict[str, Any] = {}
        for stats in self.replicas:
            for key, value in stats.items():
                if isinstance(value, dict):
                    inner = total.setdefault(key, {})
                    for k, v in value.items():
                        inner[k] = inner.get(k, 0) + v
                elif isinstance(value, (int, float)):
                    total[key] = total.get(key, 0) + value
        cache = total.get("cache")
        if cache and "requested_tokens" in cache:
            requested = cache["requested_tokens"]
            cache["hit_rate"] = cache["matched_tokens"] / requested if requested else 0.0
        return {**total, "replicas": self.replicas, "routes": self.routes,
                "exited_replicas": self.exited}


def _guarded(callback: Callable[[Any], None], arg: Any) -> None:
    try:
        callback(arg)
    except Exception:  # noqa: BLE001 - the caller's code; it must not stop the loop
        log.exception("a request callback raised")
