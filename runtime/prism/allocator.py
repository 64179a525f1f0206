"""ElasticAllocator: a model's slot allocator over the chunks of the shared arena it holds.

It grows on demand: when its free pages run short it takes free arena chunks, then chunks
the other models can give, starting with the model under least pressure (the least recent
demand for the memory it holds). A chunk can be given when none of its pages is pinned:
each is free or holds unlocked prefix-cache entries, which are evicted for it. Memory
running requests hold, and locked cache entries, are never taken. When nothing more can
be had, the scheduler's usual remedies follow (the model's own LRU cache eviction, then
retraction). `num_free_slots` counts what growing could get, so the scheduler's memory
checks see the shared budget.
"""

from __future__ import annotations

import math
import time

import torch

from sglc.runtime.mem.kv_pool import SlotAllocator
from sglc.runtime.mem.prefix_cache import BasePrefixCache
from sglc.runtime.mem.radix_cache import RadixCache
from sglc.runtime.prism.arena import KVArena

DEMAND_HALF_LIFE_S = 2.0  # how fast a model's recent demand for memory fades


class ElasticAllocator(SlotAllocator):
    def __init__(self, arena: KVArena, num_slots: int, page_size: int,
                 quota_chunks: int | None = None) -> None:
        super().__init__(num_slots, page_size, arena.device)
        self.arena = arena
        self.slots_per_chunk = num_slots // arena.num_chunks
        self.pages_per_chunk = self.slots_per_chunk // page_size
        self._free_pages = []
        self._is_free = [False] * self.num_pages
        self.chunks: set[int] = set()
        # a static split: at most this many chunks, never taken from another model
        self.quota_chunks = quota_chunks
        self.cache: BasePrefixCache | None = None  # set by `attach`
        self._demand = 0.0  # slots allocated lately, fading (see `pressure`)
        self._demand_at = time.perf_counter()
        arena.members.append(self)

    def attach(self, cache: BasePrefixCache) -> None:
        """The prefix cache whose unlocked entries may be evicted to give chunks away."""
        self.cache = cache

    # -- what the scheduler sees ----------------------------------------------------------
    @property
    def is_shared(self) -> bool:  # type: ignore[override]
        """Elastic pools wait for memory other models hold; a static share does not."""
        return self.quota_chunks is None

    @property
    def num_free_slots(self) -> int:
        """Free slots in held chunks, and in chunks growing could get now."""
        if self.quota_chunks is not None:
            growable = min(self.arena.num_free_chunks, self.quota_chunks - len(self.chunks))
        else:
            growable = self.arena.num_obtainable_chunks(self)
        return (len(self._free_pages) + growable * self.pages_per_chunk) * self.page_size

    @property
    def num_usable_slots(self) -> int:
        """Slots of the whole arena but its padding chunk (what one model alone could use),
        or of its share under a static split."""
        return (self.quota_chunks or self.arena.num_chunks - 1) * self.slots_per_chunk

    @property
    def num_held_bytes(self) -> int:
        return len(self.chunks) * self.arena.chunk_bytes

    def alloc_slots(self, last_slot: int | None, start_pos: int, num_tokens: int) -> list[int] | None:
        short = self.num_pages_needed(start_pos, num_tokens) - len(self._free_pages)
        if short > 0:
            self._grow(-(-short // self.pages_per_chunk))
        slots = super().alloc_slots(last_slot, start_pos, num_tokens)
        if slots is not None:
            self._add_demand(num_tokens)
        return slots

    def _grow(self, num_chunks: int) -> None:
        for _ in range(num_chunks):
            if self.quota_chunks is not None and len(self.chunks) >= self.quota_chunks:
                return
            chunk = self.arena.take_free()
            if chunk is None and self.quota_chunks is None:
                chunk = self.arena.reclaim_for(self)
            if chunk is None:
                return
            self.chunks.add(chunk)
            first = chunk * self.pages_per_chunk
            pages = range(first + self.pages_per_chunk - 1, first - 1, -1)  # lowest popped first
            self._free_pages.extend(pages)
            for page in pages:
                self._is_free[page] = True

    # -- giving memory back ---------------------------------------------------------------
    def pressure(self, now: float) -> float:
        """Recent demand per byte held: the model that gives a chunk first has the least."""
        self._add_demand(0, now)
        return self._demand / max(self.num_held_bytes, 1)

    def _add_demand(self, num_slots: int, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        fade = math.pow(0.5, (now - self._demand_at) / DEMAND_HALF_LIFE_S)
        self._demand = self._demand * fade + num_slots
        self._demand_at = now

    def num_reclaimable_chunks(self) -> int:
        if self.quota_chunks is not None:
            return 0  # a static share is never given away
        return sum(1 for pinned, _ in self._chunk_use().values() if not pinned)

    def reclaim_chunk(self) -> int | None:
        """Give the arena the held chunk cheapest to free (no pinned page, fewest cached
        ones), evicting the cache entries in it; None if every held chunk is pinned."""
        use = self._chunk_use()
        free = [c for c, (pinned, _) in use.items() if not pinned]
        if not free:
            return None
        chunk = min(free, key=lambda c: (use[c][1], c))
        lo, hi = chunk * self.slots_per_chunk, (chunk + 1) * self.slots_per_chunk
        if any(not self._is_free[p] for p in self._chunk_pages(chunk)):
            assert isinstance(self.cache, RadixCache)
            self.cache.evict_holding(set(range(lo, hi)))
        self._release(chunk)
        return chunk

    def release_all(self) -> None:
        """Give every held chunk back; every page must be free (the model's cache reset)."""
        for chunk in sorted(self.chunks):
            self._release(chunk)

    def _release(self, chunk: int) -> None:
        pages = set(self._chunk_pages(chunk))
        if not all(self._is_free[p] for p in pages):
            raise RuntimeError(f"chunk {chunk} still has pages in use")
        self._free_pages = [p for p in self._free_pages if p not in pages]
        for page in pages:
            self._is_free[page] = False
        self.chunks.remove(chunk)
        self.arena.give_back(chunk)

    def _chunk_pages(self, chunk: int) -> range:
        return range(chunk * self.pages_per_chunk, (chunk + 1) * self.pages_per_chunk)

    def _chunk_use(self) -> dict[int, tuple[int, int]]:
        """Each held chunk's (pinned pages, pages of unlocked cache entries)."""
        cached: dict[int, set[int]] = {}
        if isinstance(self.cache, RadixCache):
            values = self.cache.unlocked_slots()
            if values:
                for page in set((torch.cat(values) // self.page_size).tolist()):
                    cached.setdefault(page // self.pages_per_chunk, set()).add(page)
        use = {}
        for chunk in self.chunks:
            in_cache = cached.get(chunk, set())
            num_used = sum(1 for p in self._chunk_pages(chunk) if not self._is_free[p])
            use[chunk] = (num_used - len(in_cache), len(in_cache))
        return use
