"""Per-request KV bookkeeping: prefix matching, slot allocation, caching and release.

NOTE: slot ownership. For a request with `cache_owned_len = c` and `kv_len = k`:
req_to_token[row, :c] are slots owned by the prefix cache and locked through
`req.prefix_node`; req_to_token[row, c:k] are slots the request allocated and owns.
Every path that ends a request's hold on memory goes through `release`.
"""

from __future__ import annotations

import torch

from sglc.runtime.core import Req
from sglc.runtime.mem.kv_pool import ReqToTokenPool, SlotAllocator
from sglc.runtime.mem.prefix_cache import BasePrefixCache


class KVManager:
    def __init__(
        self,
        allocator: SlotAllocator,
        req_pool: ReqToTokenPool,
        cache: BasePrefixCache,
        page_size: int,
        caches_prefixes: bool,
    ) -> None:
        self.allocator = allocator
        self.req_pool = req_pool
        self.cache = cache
        self.page_size = page_size
        self.caches_prefixes = caches_prefixes

    # -- queries ---------------------------------------------------------------------------
    def match_key(self, req: Req) -> list[int]:
        """The tokens a cached prefix may cover: all but the last token to compute (which
        must run to give logits), and for scoring all but the first scored position."""
        end = req.seq_len - 1
        if req.score_from is not None:
            end = min(end, req.score_from - 1)
        return req.fill_ids[: max(end, 0)]

    def peek_match_len(self, req: Req) -> int:
        if not self.caches_prefixes:
            return 0
        return self.cache.peek_len(self.match_key(req))

    @property
    def available_slots(self) -> int:
        return self.allocator.num_free_slots + self.cache.evictable_size

    def row_slots(self, req: Req, end: int | None = None) -> torch.Tensor:
        return self.req_pool.req_to_token[req.req_pool_idx, : req.kv_len if end is None else end]

    # -- admission ---------------------------------------------------------------------------
    def admit(self, req: Req) -> bool:
        """Give a waiting request a req_to_token row and its cached prefix. False if no row."""
        row = self.req_pool.alloc()
        if row is None:
            return False
        req.req_pool_idx = row
        match = self.cache.match_prefix(self.match_key(req))
        self.cache.lock(match.node)
        req.prefix_node = match.node
        req.kv_len = req.cache_owned_len = req.alloc_len = match.length
        if match.length:
            self.req_pool.write(row, 0, match.slots)
        if req.num_retractions == 0 and not req.output_ids:
            req.cached_len = match.length
        return True

    def alloc(self, req: Req, num_tokens: int) -> bool:
        """Slots for the request's next `num_tokens` positions, evicting cache if needed;
        False, allocating nothing, when there are not enough."""
        return bool(self.alloc_many([req], [num_tokens]))

    def alloc_many(self, reqs: list[Req], nums: list[int]) -> list[Req]:
        """Slots for each request's next `nums[i]` positions in turn (a decode step's),
        evicting cache if needed, written to req_to_token in one store; returns the requests
        that got their slots, in order."""
        done, starts, slots = [], [], []
        for req, num in zip(reqs, nums, strict=True):
            got = self._alloc_slots(req, num)
            if got is None:
                continue
            done.append(req)
            starts.append(req.kv_len)
            slots.append(got)
            req.alloc_len = req.kv_len + num
        if done:
            self.req_pool.write_many([r.req_pool_idx for r in done], starts, slots)
        return done

    def _alloc_slots(self, req: Req, num_tokens: int) -> list[int] | None:
        start = req.kv_len
        # only a position that continues a partly filled page needs the slot before it
        last = (int(self.req_pool.req_to_token[req.req_pool_idx, start - 1])
                if start % self.page_size else None)  # fmt: skip
        slots = self.allocator.alloc_slots(last, start, num_tokens)
        if slots is None:
            needed = self.allocator.num_pages_needed(start, num_tokens) * self.page_size
            self.cache.evict(needed - self.allocator.num_free_slots)
            slots = self.allocator.alloc_slots(last, start, num_tokens)
        return slots

    def slots_needed(self, req: Req, num_tokens: int) -> int:
        return self.allocator.num_pages_needed(req.kv_len, num_tokens) * self.page_size

    def truncate(self, req: Req, length: int) -> bool:
        """Forget the request's KV past its first `length` tokens (jump-forward re-spelled
        them). False, changing nothing, when that KV belongs to the prefix cache."""
        if length >= req.alloc_len:
            return True
        if length < req.cache_owned_len:
            return False
        # the rest of a partly used page stays with the request: the next alloc continues it
        first_free = -(-length // self.page_size) * self.page_size
        if req.alloc_len > first_free:
            self.allocator.free(self.row_slots(req, req.alloc_len)[first_free:].clone())
        req.kv_len = min(req.kv_len, length)
        req.alloc_len = length
        return True

    # -- caching and release ------------------------------------------------------------------
    def cache_prefix(self, req: Req) -> None:
        """Hand the request's computed, page-aligned KV to the prefix cache and re-lock it,
        so that requests arriving later share it while this one goes on."""
        if not self.caches_prefixes:
            return
        aligned = req.kv_len // self.page_size * self.page_size
        if aligned <= req.cache_owned_len:
            return
        self._insert(req, aligned)
        match = self.cache.match_prefix(req.fill_ids[:aligned], record=False)
        self.req_pool.write(req.req_pool_idx, 0, match.slots)
        self.cache.lock(match.node)
        self.cache.unlock(req.prefix_node)
        req.prefix_node = match.node
        req.cache_owned_len = match.length

    def release(self, req: Req) -> None:
        """Free everything the request holds; its computed KV stays in the prefix cache."""
        if req.req_pool_idx is None:
            return
        aligned = req.kv_len // self.page_size * self.page_size
        if self.caches_prefixes and aligned > req.cache_owned_len:
            self._insert(req, aligned)
        else:
            aligned = req.cache_owned_len
        if req.alloc_len > aligned:
            self.allocator.free(self.row_slots(req, req.alloc_len)[aligned:].clone())
        self.cache.unlock(req.prefix_node)
        self.req_pool.free(req.req_pool_idx)
        req.req_pool_idx, req.prefix_node = None, None
        req.kv_len = req.cache_owned_len = req.alloc_len = 0

    def _insert(self, req: Req, aligned: int) -> None:
        slots = self.row_slots(req, aligned).clone()
        num_existing = self.cache.insert(req.fill_ids[:aligned], slots)
        # the cache already held [cache_owned_len, num_existing): our copies are duplicates
        if num_existing > req.cache_owned_len:
            self.allocator.free(slots[req.cache_owned_len : num_existing])
