"""Scheduling policies: the order in which waiting requests are admitted, by name.

    fcfs  first come, first served
    lpm   longest cached prefix first (SGLang's cache-aware policy)
    vtc   the Virtual Token Counter (fair between clients)        runtime/scheduler/vtc.py
    dlpm  deficit longest-prefix-match (fair and cache-aware)     runtime/scheduler/dlpm.py
"""

from __future__ import annotations

from collections.abc import Callable

from sglc.runtime.config import EngineConfig
from sglc.runtime.req import Req
from sglc.runtime.scheduler.dlpm import DLPMPolicy
from sglc.runtime.scheduler.policy_base import BasePolicy, lpm_order
from sglc.runtime.scheduler.vtc import VTCPolicy


class FCFSPolicy(BasePolicy):
    """First come, first served (retracted requests were re-queued at the front)."""

    def order(self, waiting, match_len):  # noqa: D102
        return list(waiting)


class LPMPolicy(BasePolicy):
    """Longest prefix match first: the cache-aware policy of the SGLang paper."""

    def order(self, waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]:
        return lpm_order(waiting, match_len)


POLICIES: dict[str, Callable[[EngineConfig | None], BasePolicy]] = {
    "fcfs": FCFSPolicy, "lpm": LPMPolicy, "vtc": VTCPolicy, "dlpm": DLPMPolicy,
}


def make_policy(name: str, config: EngineConfig | None = None) -> BasePolicy:
    """The policy registered under `name`, with the fairness settings of `config`."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}") from None
    return factory(config)


__all__ = ["POLICIES", "BasePolicy", "DLPMPolicy", "FCFSPolicy", "LPMPolicy", "VTCPolicy",
           "make_policy"]
