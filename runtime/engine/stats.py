"""What the engine reports about itself: step counters and a stats snapshot."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class StepCounters:
    """Counts of the engine core's forward passes, since it started."""

    num_extend_batches: int = 0
    num_decode_batches: int = 0
    num_prefill_tokens: int = 0  # tokens computed by extend passes
    num_decode_tokens: int = 0
    num_failed_batches: int = 0  # forward passes that failed (their requests with them)
    num_failed_requests: int = 0  # requests that failed alone (their processing raised)


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine: counters (the core's, then the constraint stage's), queue
    sizes, KV slots and prefix-cache statistics. `Engine.stats()` returns `to_dict()`."""

    num_extend_batches: int
    num_decode_batches: int
    num_prefill_tokens: int
    num_decode_tokens: int
    num_failed_batches: int
    num_failed_requests: int
    num_forced_tokens: int  # appended by jump-forward without a decode step
    num_column_logits_batches: int  # logits computed only for the columns masks allow
    num_compact_logits_batches: int  # of those, sampled from compact [rows, columns] logits
    num_running: int
    num_waiting: int
    num_retractions: int
    free_slots: int  # KV slots in wholly free pages
    total_slots: int  # KV slots requests can use
    cache: dict[str, float]  # BasePrefixCache.stats()
    # weighted tokens served per client (SamplingParams.client; "" for none) under vtc and
    # dlpm, or any policy with track_client_service: see sglc.runtime.scheduler.policy_base
    client_service: dict[str, float] = field(default_factory=dict)
    num_evicted_tokens: int = 0  # KV tokens dropped by the kv_policy (h2o, window)

    def to_dict(self) -> dict[str, int | dict[str, float]]:
        """The fields by name, in order (the cache statistics as their own dict)."""
        return dataclasses.asdict(self)
