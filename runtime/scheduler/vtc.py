"""The Virtual Token Counter (VTC) of "Fairness in Serving Large Language Models" (Sheng,
Cao, Li, Zhu, Li, Zhuo, Gonzalez, Stoica; OSDI'24).

Each client has a counter of the service it received, divided by its weight. Admission
repeatedly takes the head (oldest) request of the waiting client with the smallest counter,
charging its prompt as it goes, and stops at the first request that does not fit; decoding
charges each generated token. A client whose queue was empty joins with its counter lifted
to the smallest counter among the clients still waiting, so that idling banks no credit.
For two clients backlogged over an interval, their service differs by at most
``2 * max(input_weight * longest prompt, output_weight * tokens a batch holds)``.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

from sglc.runtime.config import EngineConfig
from sglc.runtime.req import Req
from sglc.runtime.scheduler.policy_base import BasePolicy, client_of


class VTCPolicy(BasePolicy):
    is_fair = True

    def __init__(self, config: EngineConfig | None = None) -> None:
        super().__init__(config)
        self.counters: dict[str, float] = {}

    def on_arrival(self, req: Req, waiting: list[Req]) -> None:  # noqa: D102
        super().on_arrival(req, waiting)
        client = client_of(req)
        backlogged = {client_of(r) for r in waiting}
        counter = self.counters.setdefault(client, 0.0)
        others = [self.counters[c] for c in backlogged if c != client]
        if client not in backlogged and others:
            self.counters[client] = max(counter, min(others))

    def charge(self, client: str, cost: float) -> None:  # noqa: D102
        super().charge(client, cost)
        self.counters[client] = self.counters.get(client, 0.0) + cost / self.weight(client)

    def order(self, waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]:
        """The order VTC admits in: smallest counter first, each client's requests oldest
        first, simulating the charges of the requests before (ties: the client that came
        first)."""
        queues: dict[str, deque[Req]] = {}
        for req in waiting:
            queues.setdefault(client_of(req), deque()).append(req)
        heap = [(self.counters.get(c, 0.0), rank, c) for rank, c in enumerate(queues)]
        heapq.heapify(heap)
        ordered = []
        while heap:
            counter, rank, client = heapq.heappop(heap)
            req = queues[client].popleft()
            ordered.append(req)
            if queues[client]:
                cost = self.input_cost(req) / self.weight(client)
                heapq.heappush(heap, (counter + cost, rank, client))
        return ordered
