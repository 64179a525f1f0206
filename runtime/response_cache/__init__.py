"""An exact-match cache of deterministic requests' outputs, persistent in SQLite.

    cache      ResponseCache: lookup before scheduling, save when a request finished
    key        what an entry is keyed by: model identity, prompt ids, sampling params
    store      ResponseStore: the SQLite file, bounded in bytes; ResponseCacheError
    policies   eviction: lru (baseline), lec (least expected cost), gdsf
    cost       what an answer costs: estimated FLOPs, or measured latency
    codec      a request's outputs as stored bytes and back

Off by default; `Engine(model, response_cache=PATH)` turns it on (options
`response_cache_max_bytes`, `response_cache_policy`, `response_cache_cost`). It knows nothing
of the engine's internals: the engine calls it on a request's way in and out.
"""

from sglc.runtime.response_cache.cache import ResponseCache
from sglc.runtime.response_cache.cost import COST_KINDS, FlopsModel
from sglc.runtime.response_cache.key import is_deterministic, model_identity, request_key
from sglc.runtime.response_cache.policies import POLICIES, BaseEvictionPolicy, make_policy
from sglc.runtime.response_cache.store import ResponseCacheError, ResponseStore

__all__ = ["COST_KINDS", "POLICIES", "BaseEvictionPolicy", "FlopsModel", "ResponseCache",
           "ResponseCacheError", "ResponseStore", "is_deterministic", "make_policy",
           "model_identity", "request_key"]
