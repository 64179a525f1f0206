"""Per-request KV bookkeeping: prefix matching, slot allocation, caching and release.

The only writer of `req.kv` (see `KVState` for who owns which slots). Every path that ends a
request's hold on memory goes through `release`.
"""

from __future__ import annotations

import torch

from sglc.runtime.mem.kv_pool import ReqToTokenPool, SlotAllocator
from sglc.runtime.mem.prefix_cache import BasePrefixCache
from sglc.runtime.req import KVState, Req


class KVManager:
    def __init__(
        self,
        allocator: SlotAllocator,
        req_pool: ReqToTokenPool,
        cache: BasePrefixCache,
        page_size: int,
        caches_prefixes: bool,
        lora_names: tuple[str, ...] = (),
    ) -> None:
        self.allocator = allocator
        self.req_pool = req_pool
        self.cache = cache
        self.page_size = page_size
        self.caches_prefixes = caches_prefixes
        # KV computed under a LoRA adapter is cached apart from the base model's and the
        # other adapters': its tokens are keyed (namespace << 32) | token id
        self._lora_namespaces = {name: i + 1 for i, name in enumerate(lora_names)}

    # -- queries ---------------------------------------------------------------------------
    def match_key(self, req: Req) -> list[int]:
        """The tokens a cached prefix may cover: all but the last token to compute (which
        must run to give logits), and for scoring all but the first scored position."""
        end = req.num_tokens - 1
        if req.score_from is not None:
            end = min(end, req.score_from - 1)
        return self.cache_key(req, max(end, 0))

    def cache_key(self, req: Req, end: int) -> list[int]:
        """The prefix cache's key of the request's first `end` tokens."""
        tokens = req.fill_slice(0, end)
        if req.params.lora is None:
            return tokens
        namespace = self._lora_namespaces[req.params.lora] << 32
        return [namespace | t for t in tokens]

    def peek_match_len(self, req: Req) -> int:
        if not self.caches_prefixes:
            return 0
        return self.cache.peek_len(self.match_key(req))

    @property
    def available_slots(self) -> int:
        """Slots free now or after evicting unlocked cache entries."""
        return self.allocator.num_free_slots + self.cache.evictable_size

    @property
    def num_free_slots(self) -> int:
        return self.allocator.num_free_slots

    @property
    def num_usable_slots(self) -> int:
        return self.allocator.num_usable_slots

    def row_slots(self, req: Req, end: int | None = None) -> torch.Tensor:
        """The slots of the request's first `end` positions (default: the computed ones)."""
        kv = req.kv
        return self.req_pool.req_to_token[kv.row, : kv.num_computed_tokens if end is None else end]

    # -- admission ---------------------------------------------------------------------------
    def admit(self, req: Req) -> bool:
        """Give a waiting request a req_to_token row and its cached prefix. False if no row."""
        row = self.req_pool.alloc()
        if row is None:
            return False
        match = self.cache.match_prefix(self.match_key(req))
        self.cache.lock(match.node)
        kv = req.kv
        kv.row, kv.prefix_node = row, match.node
        kv.num_computed_tokens = kv.num_cache_owned_tokens = kv.num_allocated_tokens = match.length
        if match.length:
            self.req_pool.write(row, 0, match.slots)
        if req.num_retractions == 0 and not req.output_ids:
            req.num_cached_prompt_tokens = match.length
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
            starts.append(req.kv.num_computed_tokens)
            slots.append(got)
            req.kv.num_allocated_tokens = req.kv.num_computed_tokens + num
        if done:
            self.req_pool.write_many([r.kv.row for r in done], starts, slots)
        return done

    def _alloc_slots(self, req: Req, num_tokens: int) -> list[int] | None:
        start = req.kv.num_computed_tokens
        # only a position that continues a partly filled page needs the slot before it
        last = (int(self.req_pool.req_to_token[req.kv.row, start - 1])
                if start % self.page_size else None)  # fmt: skip
        slots = self.allocator.alloc_slots(last, start, num_tokens)
        if slots is None:
            needed = self.allocator.num_pages_needed(start, num_tokens) * self.page_size
            self.cache.evict(needed - self.allocator.num_free_slots)
            slots = self.allocator.alloc_slots(last, start, num_tokens)
        return slots

    def slots_needed(self, req: Req, num_tokens: int) -> int:
        return self.allocator.num_pages_needed(req.kv.num_computed_tokens, num_tokens) * self.page_size

    def truncate(self, req: Req, num_tokens: int) -> bool:
        """Forget the request's KV past its first `num_tokens` tokens (jump-forward re-spelled
        them). False, changing nothing, when that KV belongs to the prefix cache."""
        kv = req.kv
        if num_tokens >= kv.num_allocated_tokens:
            return True
        if num_tokens < kv.num_cache_owned_tokens:
            return False
        # the rest of a partly used page stays with the request: the next alloc continues it
        first_free = -(-num_tokens // self.page_size) * self.page_size
        if kv.num_allocated_tokens > first_free:
            self.allocator.free(self.row_slots(req, kv.num_allocated_tokens)[first_free:].clone())
        kv.num_computed_tokens = min(kv.num_computed_tokens, num_tokens)
        kv.num_allocated_tokens = num_tokens
        return True

    # -- caching and release ------------------------------------------------------------------
    def cache_prefix(self, req: Req) -> None:
        """Hand the request's computed, page-aligned KV to the prefix cache and re-lock it,
        so that requests arriving later share it while this one goes on."""
        if not self.caches_prefixes:
            return
        kv = req.kv
        aligned = kv.num_computed_tokens // self.page_size * self.page_size
        if aligned <= kv.num_cache_owned_tokens:
            return
        self._insert(req, aligned)
        match = self.cache.match_prefix(self.cache_key(req, aligned), record=False)
        self.req_pool.write(kv.row, 0, match.slots)
        self.cache.lock(match.node)
        self.cache.unlock(kv.prefix_node)
        kv.prefix_node = match.node
        kv.num_cache_owned_tokens = match.length

    def release(self, req: Req) -> None:
        """Free everything the request holds; its computed KV stays in the prefix cache."""
        kv = req.kv
        if kv.row is None:
            return
        aligned = kv.num_computed_tokens // self.page_size * self.page_size
        if self.caches_prefixes and aligned > kv.num_cache_owned_tokens:
            self._insert(req, aligned)
        else:
            aligned = kv.num_cache_owned_tokens
        if kv.num_allocated_tokens > aligned:
            self.allocator.free(self.row_slots(req, kv.num_allocated_tokens)[aligned:].clone())
        self.cache.unlock(kv.prefix_node)
        self.req_pool.free(kv.row)
        req.kv = KVState()

    def _insert(self, req: Req, aligned: int) -> None:
        slots = self.row_slots(req, aligned).clone()
        num_existing = self.cache.insert(self.cache_key(req, aligned), slots)
        # the cache already held [num_cache_owned_tokens, num_existing): our copies are
        # duplicates
        owned = req.kv.num_cache_owned_tokens
        if num_existing > owned:
            self.allocator.free(slots[owned:num_existing])
