"""Choosing a prefix cache by name, and the cache that caches nothing."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import BasePrefixCache, MatchResult, SlidingKV
from .kv_pool import SlotAllocator
from .radix_cache import RadixCache


class NoPrefixCache(BasePrefixCache):
    """Prefix caching off: nothing matches and `insert` frees the slots it is given.

    Callers run the same code as with a real cache: `insert` returns 0, so they own nothing
    to free afterwards, and locks are no-ops on the `None` node.
    """

    def match_prefix(self, key: list[int], *, record: bool = True,
                     need_window: bool = True) -> MatchResult:
        if record:
            self._record_match(len(key), 0)
        return MatchResult(slots=self._empty_slots(), node=None, length=0)

    def peek_len(self, key: list[int]) -> int:
        return 0

    def insert(self, key: list[int], slots: torch.Tensor,
               sliding_slots: torch.Tensor | None = None) -> int:
        assert len(key) % self.page_size == 0, f"key length {len(key)} is not page aligned"
        assert len(slots) == len(key), f"{len(slots)} slots for {len(key)} tokens"
        if len(slots):
            self.allocator.free(slots)
        if sliding_slots is not None:
            held = sliding_slots[sliding_slots != 0]
            if len(held):
                self.sliding.allocator.free(held)
            sliding_slots.zero_()
        return 0

    def lock(self, node: None) -> None:
        pass

    def unlock(self, node: None) -> None:
        pass

    def evict(self, num_tokens: int) -> int:
        return 0

    @property
    def evictable_size(self) -> int:
        return 0

    @property
    def protected_size(self) -> int:
        return 0

    def total_size(self) -> int:
        return 0

    def reset(self) -> None:
        self._reset_stats()


PrefixCacheFactory = Callable[[SlotAllocator, int, "SlidingKV | None"], BasePrefixCache]

PREFIX_CACHES: dict[str, PrefixCacheFactory] = {
    "radix": RadixCache,
    "none": NoPrefixCache,
}


def make_prefix_cache(name: str, allocator: SlotAllocator, page_size: int = 1,
                      sliding: SlidingKV | None = None) -> BasePrefixCache:
    """Build the prefix cache registered under `name` (see `PREFIX_CACHES`); `sliding`: the
    sliding layers' slot space, when the pool has one."""
    try:
        factory = PREFIX_CACHES[name]
    except KeyError:
        raise ValueError(
            f"unknown prefix cache {name!r}; choose one of {sorted(PREFIX_CACHES)}"
        ) from None
    return factory(allocator, page_size, sliding)
