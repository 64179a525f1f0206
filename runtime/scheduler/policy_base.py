"""The scheduling-policy contract, and the service every policy accounts per client.

A client's *service* is the weighted tokens the engine did for it (the measure of "Fairness
in Serving Large Language Models", Sheng et al., OSDI'24): ``input_weight`` per prompt token,
charged when the request is first scheduled (all of its prompt, cached or not), plus
``output_weight`` per generated token, charged by the pass that samples it. Every policy
counts it (`service`, in `Engine.stats()["client_service"]`), so fcfs and lpm can be
compared with the fair ones (with `track_client_service`; vtc and dlpm always count it,
they schedule by it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import ForwardMode
from sglc.runtime.req import Req, ScheduledBatch

ANONYMOUS = ""  # the client of requests that name none


def client_of(req: Req) -> str:
    return req.params.client or ANONYMOUS


class BasePolicy(ABC):
    """Contract: `order` returns the waiting requests (all of them, each once) in the order
    admission should try them; admission stops at the first that does not fit. `match_len(req)`
    gives the cached prefix length of a request without changing the cache's LRU order or
    statistics. The scheduler reports arrivals (`on_arrival`, before the request joins
    `waiting`), each batch it schedules (`on_scheduled`) and each batch's forward pass
    (`on_forward`); a policy that overrides them calls the base methods, which count service.
    """

    is_fair = False  # schedules by service, so always counts it

    def __init__(self, config: EngineConfig | None = None) -> None:
        config = config or EngineConfig()
        self.input_weight, self.output_weight = config.fair_token_weights
        self.client_weights = dict(config.client_weights or {})
        self.counts_service = self.is_fair or config.track_client_service
        self.service: dict[str, float] = {}  # weighted tokens served, per client

    @abstractmethod
    def order(self, waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]: ...

    def weight(self, client: str) -> float:
        return self.client_weights.get(client, 1.0)

    def input_cost(self, req: Req) -> float:
        """What scheduling the request charges now: its prompt, on its first pass only
        (a retracted request resumes free of charge)."""
        return self.input_weight * len(req.prompt_ids) if req.num_forward_passes == 0 else 0.0

    def on_arrival(self, req: Req, waiting: list[Req]) -> None:
        """A new request is about to join `waiting`."""
        if self.counts_service:
            self.service.setdefault(client_of(req), 0.0)

    def on_scheduled(self, batch: ScheduledBatch) -> None:
        """The batch was chosen: charge the prompts of requests on their first pass."""
        if batch.mode is ForwardMode.DECODE or not self.counts_service:
            return
        for req in batch.reqs:
            cost = self.input_cost(req)
            if cost:
                self.charge(client_of(req), cost)

    def on_forward(self, batch: ScheduledBatch) -> None:
        """The batch's pass ran: charge a generated token to each request that samples one."""
        if not self.counts_service:
            return
        for i, req in enumerate(batch.reqs):
            if batch.completes_fill(i) and len(req.output_ids) < req.params.max_new_tokens:
                self.charge(client_of(req), self.output_weight)

    def charge(self, client: str, cost: float) -> None:
        """Count `cost` weighted tokens of service to `client`."""
        self.service[client] = self.service.get(client, 0.0) + cost


# Beyond this many waiting requests, LPM's prefix matching costs more than it saves.
LPM_MAX_QUEUE = 256


def lpm_order(waiting: list[Req], match_len: Callable[[Req], int]) -> list[Req]:
    """Longest cached prefix first; ties (a stable sort) and long queues keep arrival order."""
    if len(waiting) > LPM_MAX_QUEUE:
        return list(waiting)
    return sorted(waiting, key=lambda r: -match_len(r))
