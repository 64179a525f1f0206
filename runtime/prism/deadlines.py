"""Deadlines of requests in flight and the earliest-deadline-first choice across models.

A request's deadline is when it was submitted plus its latency target (`slo_ms` of the
request, else of its model); one without a target has none and goes after every request
with one, oldest first. Each step, the model whose most urgent request is due first runs
its batch.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Due(NamedTuple):
    """When a request is due (inf: no target) and when it was submitted: the EDF order."""

    deadline: float
    submitted: float


class Deadlines:
    """Request id -> Due, written by callers' threads, read by the loop thread."""

    def __init__(self) -> None:
        self._due: dict[str, Due] = {}
        self._lock = threading.Lock()

    def set(self, rids: Sequence[str], submitted: float, slo_ms: float | None) -> None:
        deadline = math.inf if slo_ms is None else submitted + slo_ms / 1000
        with self._lock:
            for rid in rids:
                self._due[rid] = Due(deadline, submitted)

    def discard(self, rid: str) -> None:
        with self._lock:
            self._due.pop(rid, None)

    def get(self, rid: str) -> Due:
        return self._due.get(rid, Due(math.inf, math.inf))

    def earliest(self, rids: Iterable[str], by_deadline: bool = True) -> Due | None:
        """The most urgent of these requests, or with `by_deadline` False the oldest (None
        if there are none)."""
        dues = [self.get(rid) for rid in rids]
        if not by_deadline:
            return min(dues, key=lambda d: d.submitted, default=None)
        return min(dues, default=None)
