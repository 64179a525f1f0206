"""`ResponseCache`: the engine's exact-match cache of deterministic requests' outputs.

`lookup` before a request is scheduled (a hit is the stored outputs, rebuilt for the new
request); `store` once all its samples finished. Only deterministic requests (greedy, or
seeded sampling) take part; others are neither looked up nor stored. A failure of the file
after it opened (locked for longer than the timeout, say) is logged and counted, and the
request goes to the model as if it missed: the cache never fails a request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from sglc.runtime.core import FinishReason, Output, SamplingParams
from sglc.runtime.response_cache import codec
from sglc.runtime.response_cache.cost import COST_KINDS, FlopsModel
from sglc.runtime.response_cache.key import is_deterministic, request_key
from sglc.runtime.response_cache.policies import make_policy
from sglc.runtime.response_cache.store import ResponseCacheError, ResponseStore

log = logging.getLogger(__name__)


class ResponseCache:
    """Outputs of deterministic requests to the model `model_id`, in the SQLite file `path`."""

    def __init__(self, path: str | os.PathLike[str], model_id: str, *, max_bytes: int,
                 policy: str, cost: str, flops: FlopsModel, timeout_s: float = 5.0) -> None:
        if cost not in COST_KINDS:
            raise ValueError(f"unknown response cache cost {cost!r}; choose one of "
                             f"{', '.join(COST_KINDS)}")
        self.model_id = model_id
        self.cost = cost
        self.flops = flops
        self.store = ResponseStore(path, max_bytes=max_bytes, policy=make_policy(policy),
                                   timeout_s=timeout_s)
        self._counts = {"hits": 0, "misses": 0, "stores": 0, "errors": 0}
        self._counts_lock = threading.Lock()

    def key(self, prompt_ids: list[int], params: SamplingParams) -> str | None:
        """The request's key, or None when it does not take part (not deterministic)."""
        if not is_deterministic(params):
            return None
        return request_key(self.model_id, prompt_ids, params)

    def lookup(self, key: str, rid: str, prompt_index: int) -> list[Output] | None:
        """The stored outputs of `key` as request `rid`'s, or None (a miss)."""
        try:
            blob = self.store.get(key)
        except ResponseCacheError as exc:
            self._failed(exc)
            return None
        self._count("hits" if blob is not None else "misses")
        return None if blob is None else codec.decode(blob, rid, prompt_index)

    def save(self, key: str, outputs: Sequence[Output], latency_s: float) -> None:
        """Store a request's finished samples (not if one failed or was aborted)."""
        if any(o.error or o.finish_reason in (None, FinishReason.ABORT) for o in outputs):
            return
        if self.cost == "latency":
            cost = max(latency_s, 1e-9)
        else:
            cost = sum(self.flops.request_flops(o.usage.prompt_tokens, len(o.token_ids))
                       for o in outputs)
        try:
            if self.store.put(key, codec.encode(outputs), cost):
                self._count("stores")
        except ResponseCacheError as exc:
            self._failed(exc)

    def stats(self) -> dict[str, float]:
        """Hits, misses, stores and errors of this engine; entries, bytes and evictions."""
        with self._counts_lock:
            counts: dict[str, float] = dict(self._counts)
        try:
            s = self.store.stats()
        except ResponseCacheError:
            return counts
        counts.update(entries=s.num_entries, bytes=s.num_bytes, max_bytes=s.max_bytes,
                      evictions=s.num_evictions, rejected=s.num_rejected)
        return counts

    def close(self) -> None:
        self.store.close()

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    def _failed(self, exc: ResponseCacheError) -> None:
        self._count("errors")
        log.warning("%s; the request goes to the model", exc)
