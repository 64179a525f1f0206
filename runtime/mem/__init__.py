"""Memory: the KV pool, slot allocator, request-to-token table and prefix caches."""

from .base import BaseCacheNode, BasePrefixCache, MatchResult, SlidingKV
from .kv_pool import PADDING_SLOT, KVPool, ReqToTokenPool, SlotAllocator
from .prefix_cache import PREFIX_CACHES, NoPrefixCache, make_prefix_cache
from .radix_cache import RadixCache, TreeNode

__all__ = [
    "PADDING_SLOT",
    "PREFIX_CACHES",
    "BaseCacheNode",
    "BasePrefixCache",
    "KVPool",
    "MatchResult",
    "NoPrefixCache",
    "RadixCache",
    "ReqToTokenPool",
    "SlidingKV",
    "SlotAllocator",
    "TreeNode",
    "make_prefix_cache",
]
