"""Eviction policies of the response cache: which entry goes when the cache is over its bytes.

Each policy gives an entry a `priority` whenever it is stored or hit; the store evicts the
entry with the lowest priority (ties: the least recently used). `inflation` is GDSF's clock L,
raised to the priority of each evicted entry; the other policies ignore it.

    lru    priority = the access clock (the baseline: recency only)
    lec    priority = frequency x cost: Least Expected Cost ("On Optimal Caching and Model
           Multiplexing for Large Model Inference", Zhu et al. 2023): keep the queries whose
           expected cost, estimated frequency times the cost of answering them, is largest
    gdsf   priority = L + frequency x cost / size: Greedy-Dual-Size-Frequency (Cherkasova
           1998), the paper's variant that accounts for entry sizes and ages entries by L

`frequency` counts the requests for an entry's key since the cache first saw it, misses
included (the store keeps a bounded history of keys), so a query asked often before it was
first stored starts with its count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class EntryStats:
    """What a policy may read about an entry."""

    frequency: int  # requests for the key so far (>= 1)
    cost: float  # the cost of answering the request with the model (> 0)
    size: int  # bytes the entry takes in the store (> 0)
    clock: int  # the store's access counter at this access


class BaseEvictionPolicy:
    """A policy's contract: `priority` of an entry at an access (lower is evicted first), and
    the clock L after evicting an entry (`inflation_after`). Pure functions of their inputs,
    so a store reopened later goes on where it stopped."""

    name = "base"

    def priority(self, entry: EntryStats, inflation: float) -> float:
        raise NotImplementedError

    def inflation_after(self, evicted_priority: float, inflation: float) -> float:
        return inflation


class LruPolicy(BaseEvictionPolicy):
    name = "lru"

    def priority(self, entry: EntryStats, inflation: float) -> float:
        return float(entry.clock)


class LecPolicy(BaseEvictionPolicy):
    name = "lec"

    def priority(self, entry: EntryStats, inflation: float) -> float:
        return entry.frequency * entry.cost


class GdsfPolicy(BaseEvictionPolicy):
    name = "gdsf"

    def priority(self, entry: EntryStats, inflation: float) -> float:
        return inflation + entry.frequency * entry.cost / entry.size

    def inflation_after(self, evicted_priority: float, inflation: float) -> float:
        return max(inflation, evicted_priority)


POLICIES: dict[str, Callable[[], BaseEvictionPolicy]] = {
    "lru": LruPolicy, "lec": LecPolicy, "gdsf": GdsfPolicy,
}
"""Policy name -> factory (the `response_cache_policy` option's values)."""


def make_policy(name: str) -> BaseEvictionPolicy:
    if name not in POLICIES:
        raise ValueError(f"unknown response cache policy {name!r}; choose one of "
                         f"{', '.join(POLICIES)}")
    return POLICIES[name]()
