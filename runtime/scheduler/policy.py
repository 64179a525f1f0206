"""Scheduling policies: the order in which waiting requests are admitted."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from sglc.runtime.req import Req

# Beyond this many waiting requests, LPM's prefix matching costs more than it saves.
LPM_MAX_QUEUE = 256


class BasePolicy(ABC):
    """Contract: `order` returns the waiting requests (all of them, each once) in the
    order admission should try them. `match_len(req)` gives the cached prefix length
    of a request without changing the cache's LRU order or statistics."""

    @abstractmethod
    def order(self, waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]: ...


class FCFSPolicy(BasePolicy):
    """First come, first served (retracted requests were re-queued at the front)."""

    def order(self, waiting, match_len):  # noqa: D102
        return list(waiting)


class LPMPolicy(BasePolicy):
    """Longest prefix match first: the cache-aware policy of the SGLang paper."""

    def order(self, waiting, match_len):  # noqa: D102
        if len(waiting) > LPM_MAX_QUEUE:
            return list(waiting)
        # stable sort: ties keep arrival order
        return sorted(waiting, key=lambda r: -match_len(r))


POLICIES: dict[str, Callable[[], BasePolicy]] = {"fcfs": FCFSPolicy, "lpm": LPMPolicy}


def make_policy(name: str) -> BasePolicy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}") from None
