"""The prefix-cache contract: what the scheduler may rely on, whichever cache is chosen."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch

from .kv_pool import SlotAllocator


class BaseCacheNode:
    """A handle to a cached prefix, from `match_prefix`: opaque to callers, who only pass it
    to `lock` and `unlock`. A cache that caches nothing hands out None."""

    __slots__ = ()


class MatchResult(NamedTuple):
    """The cached part of a key: its slots, a handle to lock it by, and its length."""

    slots: torch.Tensor  # int64, `length` slots, one per matched token
    node: BaseCacheNode | None  # pass to `lock` / `unlock`
    length: int
    # with a sliding slot space: each matched token's sliding slot, 0 where it has none
    sliding_slots: torch.Tensor | None = None


class SlidingKV(NamedTuple):
    """The sliding-window layers' slot space (see `sglc.runtime.mem.kv_pool`): its
    allocator, and the window (tokens, counting the query) whose K/V a position needs."""

    allocator: SlotAllocator
    window: int


class BasePrefixCache(ABC):
    """Maps token-id prefixes to the KV slots that hold them, so requests can share them.

    Ownership: every slot the allocator has handed out belongs to exactly one holder, a
    request or the cache. `insert` moves slots from the request to the cache; `evict` (and
    `reset`) give the cache's slots back to the allocator. Slots returned by `match_prefix`
    stay the cache's: a request may read them but never frees them.

    Paging: with page size P, keys given to `insert` are a multiple of P long and a match
    covers whole pages only, so the cache always owns whole pages.

    Locking: the slots of a match are safe to use only while its node is locked; a locked
    node (and so its whole path from the root) is never evicted. Single-threaded: nothing
    else can evict between `match_prefix` and `lock`.

    Sliding slots (`sliding` given): each cached token also has a slot of the sliding slot
    space, or none (0) once it was freed. A match ends only where the `window - 1` tokens
    before its end have theirs (the next token's sliding layers read them); the ownership
    rules above hold for sliding slots too, and `evict_sliding` frees them alone.
    """

    def __init__(self, allocator: SlotAllocator, page_size: int = 1,
                 sliding: SlidingKV | None = None) -> None:
        if page_size != allocator.page_size:
            raise ValueError(f"page_size {page_size} != allocator's {allocator.page_size}")
        if sliding is not None and sliding.allocator.page_size != page_size:
            raise ValueError(f"page_size {page_size} != the sliding allocator's "
                             f"{sliding.allocator.page_size}")
        self.allocator = allocator
        self.page_size = page_size
        self.sliding = sliding
        self._reset_stats()

    @abstractmethod
    def match_prefix(self, key: list[int], *, record: bool = True,
                     need_window: bool = True) -> MatchResult:
        """The longest cached prefix of `key`, rounded down to whole pages.

        May return all of `key`; a caller that needs a token left to compute truncates the
        key first. Marks the matched path as just used (LRU). The result is not locked.
        `record=False` leaves the hit statistics alone (a re-match of what the caller just
        inserted is no hit). `need_window=False` ignores whether sliding slots are there (a
        request re-matching what it inserted keeps its own).
        """

    @abstractmethod
    def peek_len(self, key: list[int]) -> int:
        """The length `match_prefix(key)` would return, changing nothing: no LRU update,
        no statistics, no node splits. For policies that rank waiting requests."""

    @abstractmethod
    def insert(self, key: list[int], slots: torch.Tensor,
               sliding_slots: torch.Tensor | None = None) -> int:
        """Cache `key` (a multiple of P long) whose KV lives in `slots` (one per token).

        Returns `num_existing`, how many leading tokens of `key` were cached before the call.
        The cache now owns `slots[num_existing:]`; the caller still owns `slots[:num_existing]`
        and must free the part of them it allocated itself (not what it got from
        `match_prefix`), since the cache keeps its own copy of that KV. The newly cached
        tokens are unlocked: re-match and lock to keep using them.

        `sliding_slots` (with a sliding space; None gives none): the caller's sliding slot
        of each token, 0 for none. The cache takes the nonzero ones of
        `sliding_slots[num_existing:]` and, of the earlier ones, those whose cached token has
        none; it sets what it took to 0 in the tensor given (which must be the caller's own
        copy), and the caller frees what is left nonzero.
        """

    @abstractmethod
    def lock(self, node: BaseCacheNode | None) -> None:
        """Protect `node` and its ancestors from eviction (counted: lock twice, unlock twice)."""

    @abstractmethod
    def unlock(self, node: BaseCacheNode | None) -> None:
        """Undo one `lock(node)`. Raises RuntimeError if `node` is not locked."""

    @abstractmethod
    def evict(self, num_tokens: int) -> int:
        """Free least-recently-used unlocked entries until `num_tokens` slots are freed.

        Frees whole entries, so it may free more; frees less only when nothing unlocked is
        left. Returns the number of slots given back to the allocator.
        """

    def evict_sliding(self, num_slots: int) -> int:
        """Free the sliding slots (only) of least-recently-used unlocked entries until
        `num_slots` are freed; returns how many were. Caches without sliding slots: 0."""
        return 0

    @property
    def sliding_evictable_size(self) -> int:
        """Sliding slots held by unlocked entries."""
        return 0

    @property
    @abstractmethod
    def evictable_size(self) -> int:
        """Tokens cached in unlocked entries."""

    @property
    @abstractmethod
    def protected_size(self) -> int:
        """Tokens cached in locked entries."""

    @abstractmethod
    def total_size(self) -> int:
        """Tokens cached; always `evictable_size + protected_size`."""

    @abstractmethod
    def reset(self) -> None:
        """Free everything the cache owns and zero the stats. Raises if anything is locked."""

    def stats(self) -> dict[str, float]:
        """Hit statistics since construction or the last `reset`."""
        requested = self._requested_tokens
        return {
            "match_calls": self._match_calls,
            "requested_tokens": requested,
            "matched_tokens": self._matched_tokens,
            "hit_rate": self._matched_tokens / requested if requested else 0.0,
            "evicted_tokens": self._evicted_tokens,
            "cached_tokens": self.total_size(),
        }

    def _record_match(self, num_requested: int, num_matched: int) -> None:
        self._match_calls += 1
        self._requested_tokens += num_requested
        self._matched_tokens += num_matched

    def _reset_stats(self) -> None:
        self._match_calls = 0
        self._requested_tokens = 0
        self._matched_tokens = 0
        self._evicted_tokens = 0

    def _empty_slots(self) -> torch.Tensor:
        return torch.empty(0, dtype=torch.int64, device=self.allocator.device)
