"""Deficit Longest Prefix Match (DLPM), the locality-aware fair policy of "Locality-aware Fair
Scheduling in LLM Serving" (Cao et al., 2025): deficit round robin over clients, with the
waiting requests tried in longest-cached-prefix order.

Each client has a deficit: service it may still receive this round. Admission walks the
waiting requests in LPM order and first takes those whose client has a positive deficit
(each charging its client as it goes), then the others, still in LPM order, so that memory
left over is used (work conserving; their deficits go negative and are paid back in later
rounds). When no waiting client has a positive deficit, a new round gives each waiting
client ``dlpm_quantum x its weight``. A client whose queue was empty rejoins with no credit
(its deficit capped at 0). Cache hits keep LPM's order within the fairness bound the quantum
sets; the larger the quantum, the more locality and the looser the fairness.
"""

from __future__ import annotations

from collections.abc import Callable

from sglc.runtime.config import EngineConfig
from sglc.runtime.req import Req
from sglc.runtime.scheduler.policy_base import BasePolicy, client_of, lpm_order


class DLPMPolicy(BasePolicy):
    is_fair = True

    def __init__(self, config: EngineConfig | None = None) -> None:
        super().__init__(config)
        self.quantum = (config or EngineConfig()).dlpm_quantum
        self.deficits: dict[str, float] = {}
        self.num_rounds = 0

    def on_arrival(self, req: Req, waiting: list[Req]) -> None:  # noqa: D102
        super().on_arrival(req, waiting)
        client = client_of(req)
        if all(client_of(r) != client for r in waiting):
            self.deficits[client] = min(self.deficits.get(client, 0.0), 0.0)

    def charge(self, client: str, cost: float) -> None:  # noqa: D102
        super().charge(client, cost)
        self.deficits[client] = self.deficits.get(client, 0.0) - cost

    def order(self, waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]:
        clients = {client_of(r) for r in waiting}
        if clients and all(self.deficits.get(c, 0.0) <= 0 for c in clients):
            self._new_round(clients)
        left = {c: self.deficits.get(c, 0.0) for c in clients}
        first, rest = [], []
        for req in lpm_order(waiting, match_len):
            client = client_of(req)
            if left[client] > 0:
                first.append(req)
                left[client] -= self.input_cost(req)
            else:
                rest.append(req)
        return first + rest

    def _new_round(self, clients: set[str]) -> None:
        """Refill the waiting clients until one has credit (a deep debt takes rounds)."""
        while all(self.deficits.get(c, 0.0) <= 0 for c in clients):
            self.num_rounds += 1
            for client in clients:
                self.deficits[client] = self.deficits.get(client, 0.0) + \
                    self.quantum * self.weight(client)
