"""Data-parallel routing: which replica serves a request.

`CacheAwareRouter` keeps, per replica, an approximate radix tree of the prompts it has
sent there (approximate: the replica's own cache may have evicted some, and the tree forgets
least-recently-used branches past `max_tree_tokens`). A request goes to the replica whose
tree holds the longest prefix of its prompt, if that covers at least `cache_threshold` of
it, unless the replicas' loads (requests in flight) differ by more than
`balance_threshold`; otherwise to the least loaded replica (ties: the smaller tree, then the
lower index). This is the policy of SGLang's router, written from its description.
`RoundRobinRouter` is the baseline.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from sglc.runtime.core import EngineError


class NoReplica(EngineError):
    """Every replica has exited."""


@dataclass(frozen=True)
class Route:
    """Where a request went, and why: "cache" (longest prefix), "balance" (loads too
    uneven for the cache to decide), "least_loaded" (no replica held enough of the
    prompt), "round_robin"."""

    replica: int
    reason: str
    num_matched_tokens: int = 0


class _Node:
    __slots__ = ("children", "last_used", "parent", "token")

    def __init__(self, last_used: int, parent: _Node | None = None, token: int = -1) -> None:
        self.children: dict[int, _Node] = {}
        self.last_used = last_used
        self.parent, self.token = parent, token  # the root has no parent


class ApproxRadixTree:
    """Token sequences sent to one replica, one node per token, at most `max_tokens`
    nodes (the least recently used leaves go first)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.root = _Node(0)
        self.num_tokens = 0
        self._clock = itertools.count(1)

    def match_len(self, ids: Sequence[int]) -> int:
        """Tokens of `ids`' longest prefix in the tree."""
        node, n = self.root, 0
        for token in ids:
            node = node.children.get(token)
            if node is None:
                break
            n += 1
        return n

    def insert(self, ids: Sequence[int]) -> None:
        now = next(self._clock)
        node = self.root
        for token in ids:
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node(now, node, token)
                self.num_tokens += 1
            child.last_used = now
            node = child
        if self.num_tokens > self.max_tokens:
            self._evict(self.max_tokens * 9 // 10)

    def _evict(self, target: int) -> None:
        """Drop least recently used leaves until at most `target` tokens remain (a node is
        never used later than its parent, so parents become leaves in order)."""
        order = itertools.count()
        heap: list[tuple[int, int, _Node]] = []
        stack = [self.root]
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            if not node.children and node.parent is not None:
                heap.append((node.last_used, next(order), node))
        heapq.heapify(heap)
        while self.num_tokens > target and heap:
            _, _, leaf = heapq.heappop(heap)
            parent = leaf.parent
            del parent.children[leaf.token]
            self.num_tokens -= 1
            if not parent.children and parent.parent is not None:
                heapq.heappush(heap, (parent.last_used, next(order), parent))

    def clear(self) -> None:
        self.root, self.num_tokens = _Node(0), 0


class BaseRouter(ABC):
    """Contract: `route(ids, loads, alive)` picks a replica i with alive[i] (NoReplica if
    none is), given each replica's load (requests in flight); `forget(i)` drops what is
    known of replica i's cache (it exited)."""

    def __init__(self, num_replicas: int) -> None:
        self.num_replicas = num_replicas
        self.counts: dict[str, int] = {}  # routes by reason

    @abstractmethod
    def _pick(self, ids: Sequence[int], loads: Sequence[int], alive: list[int]) -> Route: ...

    def route(self, ids: Sequence[int], loads: Sequence[int], alive: Sequence[bool]) -> Route:
        candidates = [i for i in range(self.num_replicas) if alive[i]]
        if not candidates:
            raise NoReplica("every data-parallel replica has exited; restart the engine")
        route = self._pick(ids, loads, candidates)
        self.counts[route.reason] = self.counts.get(route.reason, 0) + 1
        return route

    def forget(self, replica: int) -> None:  # noqa: B027 - optional for routers without state
        """Replica `replica` exited: drop what is known of it."""


class RoundRobinRouter(BaseRouter):
    def __init__(self, num_replicas: int) -> None:
        super().__init__(num_replicas)
        self._next = 0

    def _pick(self, ids, loads, alive):
        while self._next % self.num_replicas not in alive:
            self._next += 1
        replica = self._next % self.num_replicas
        self._next += 1
        return Route(replica, "round_robin")


class CacheAwareRouter(BaseRouter):
    def __init__(self, num_replicas: int, balance_threshold: int, cache_threshold: float,
                 max_tree_tokens: int = 1 << 20) -> None:
        super().__init__(num_replicas)
        self.balance_threshold = balance_threshold
        self.cache_threshold = cache_threshold
        self.trees = [ApproxRadixTree(max_tree_tokens) for _ in range(num_replicas)]

    def _pick(self, ids, loads, alive):
        least = min(alive, key=lambda i: (loads[i], self.trees[i].num_tokens, i))
        spread = max(loads[i] for i in alive) - loads[least]
        if spread > self.balance_threshold:
            route = Route(least, "balance")
        else:
            matched = {i: self.trees[i].match_len(ids) for i in alive}
            best = max(alive, key=lambda i: (matched[i], -loads[i], -i))
            if matched[best] and matched[best] >= self.cache_threshold * len(ids):
                route = Route(best, "cache", matched[best])
            else:
                route = Route(least, "least_loaded", matched[least])
        self.trees[route.replica].insert(ids)
        return route

    def forget(self, replica: int) -> None:
        self.trees[replica].clear()


def make_router(name: str, num_replicas: int, balance_threshold: int,
                cache_threshold: float) -> BaseRouter:
    if name == "round_robin":
        return RoundRobinRouter(num_replicas)
    if name == "cache_aware":
        return CacheAwareRouter(num_replicas, balance_threshold, cache_threshold)
    raise ValueError(f"unknown router {name!r}; choose cache_aware or round_robin")
