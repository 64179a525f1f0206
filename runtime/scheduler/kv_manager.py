"""Per-request KV bookkeeping: prefix matching, slot allocation, caching and release.

The only writer of `req.kv` (see `KVState` for who owns which slots). Every path that ends a
request's hold on memory goes through `release`.

With a sliding slot space (`sliding`), every allocation takes a sliding slot per position
too, `release_window` gives back the request's own ones that left the window, and
`release` hands the prefix cache the ones it still holds (the window's tail), so a later
request can start right after the cached prefix.
"""

from __future__ import annotations

import torch

from sglc.runtime.mem.base import SlidingKV
from sglc.runtime.mem.kv_eviction import KeyScores, KVEvictionPolicy
from sglc.runtime.mem.kv_pool import KVPool, ReqToTokenPool, SlotAllocator
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
        eviction: KVEvictionPolicy | None = None,
        kv_pool: KVPool | None = None,
        sliding: SlidingKV | None = None,
    ) -> None:
        if sliding is not None and (eviction is not None or req_pool.req_to_sliding is None):
            raise ValueError("a sliding slot space needs req_to_sliding and no kv_policy")
        self.allocator = allocator
        self.req_pool = req_pool
        self.cache = cache
        self.page_size = page_size
        self.caches_prefixes = caches_prefixes
        # KV computed under a LoRA adapter is cached apart from the base model's and the
        # other adapters': its tokens are keyed (namespace << 32) | token id
        self._lora_namespaces = {name: i + 1 for i, name in enumerate(lora_names)}
        # KV of tokens after the prompt of a request decoding with attention_sparsity depends
        # on its sparse attention: cached apart per (token_ratio, channel_ratio), keyed
        # (namespace << 48) | token id, so dense requests never read it
        self._sparsity_namespaces: dict[tuple[float, float], int] = {}
        # KV eviction (kv_policy): None keeps every token's KV
        self.eviction = eviction
        self.kv_pool = kv_pool  # copies of shared slots a compacting request keeps
        self.key_scores = (KeyScores(req_pool.max_reqs, req_pool.max_context_len,
                                     req_pool.req_to_token.device)
                           if eviction is not None and eviction.needs_scores else None)
        self.num_evicted_tokens = 0
        self.sliding = sliding  # the sliding layers' slot space; None: one slot space

    # -- queries ---------------------------------------------------------------------------
    def match_key(self, req: Req) -> list[int]:
        """The tokens a cached prefix may cover: all but the last token to compute (which
        must run to give logits), and for scoring all but the first scored position. None
        under H2O: it ranks tokens by the attention their prefill gave them, which a cached
        prefix skips (so the cache would change its outputs)."""
        end = req.num_tokens - 1
        if req.score_from is not None:
            end = min(end, req.score_from - 1)
        elif self.key_scores is not None:
            end = 0
        return self.cache_key(req, max(end, 0))

    def cache_key(self, req: Req, end: int) -> list[int]:
        """The prefix cache's key of the request's first `end` tokens."""
        tokens = req.fill_slice(0, end)
        sparsity, num_prompt = req.params.attention_sparsity, len(req.prompt_ids)
        if sparsity is not None and end > num_prompt:
            namespace = self._sparsity_namespaces.setdefault(
                sparsity, len(self._sparsity_namespaces) + 1) << 48
            tokens[num_prompt:] = [namespace | t for t in tokens[num_prompt:]]
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
        """Slots free now or after evicting unlocked cache entries (of both slot spaces, the
        scarcer one's)."""
        num = self.allocator.num_free_slots + self.cache.evictable_size
        if self.sliding is None:
            return num
        return min(num, self.sliding.allocator.num_free_slots + self.cache.sliding_evictable_size)

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
        if self.key_scores is not None:
            self.key_scores.reset(row)
        kv = req.kv
        kv.row, kv.prefix_node = row, match.node
        kv.num_computed_tokens = kv.num_cache_owned_tokens = kv.num_allocated_tokens = match.length
        if match.length:
            self.req_pool.write(row, 0, match.slots)
            if self.sliding is not None:
                self.req_pool.write(row, 0, match.sliding_slots, sliding=True)
        kv.sliding_owned_from = kv.num_sliding_released = match.length
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
        done, starts, slots, sliding = [], [], [], []
        for req, num in zip(reqs, nums, strict=True):
            if self.sliding is not None and not self._make_sliding_room(req, num):
                continue
            got = self._alloc_slots(req, num)
            if got is None:
                continue
            done.append(req)
            starts.append(req.kv.num_cols)
            slots.append(got)
            if self.sliding is not None:  # room made above, and evicting only adds to it
                sliding.append(self._alloc_slots(req, num, self.sliding.allocator))
            req.kv.num_allocated_tokens = req.kv.num_computed_tokens + num
        if done:
            rows = [r.kv.row for r in done]
            self.req_pool.write_many(rows, starts, slots)
            if sliding:
                self.req_pool.write_many(rows, starts, sliding, sliding=True)
        return done

    def _alloc_slots(self, req: Req, num_tokens: int,
                     allocator: SlotAllocator | None = None) -> list[int] | None:
        """Slots of `allocator` (default: the full one) for the request's next positions."""
        start = req.kv.num_computed_tokens
        is_sliding = allocator is not None
        allocator = allocator or self.allocator
        table = self.req_pool.req_to_sliding if is_sliding else self.req_pool.req_to_token
        # only a position that continues a partly filled page needs the slot before it
        last = int(table[req.kv.row, start - 1]) if start % self.page_size else None
        slots = allocator.alloc_slots(last, start, num_tokens)
        if slots is None and not is_sliding:
            needed = self.allocator.num_pages_needed(start, num_tokens) * self.page_size
            self.cache.evict(needed - self.allocator.num_free_slots)
            slots = self.allocator.alloc_slots(last, start, num_tokens)
        return slots

    def _make_sliding_room(self, req: Req, num_tokens: int) -> bool:
        """Whether the sliding allocator has the pages for the request's next `num_tokens`
        positions, after freeing unlocked cache entries' sliding slots if needed."""
        allocator = self.sliding.allocator
        needed = allocator.num_pages_needed(req.kv.num_computed_tokens, num_tokens) * self.page_size
        if needed > allocator.num_free_slots:
            self.cache.evict_sliding(needed - allocator.num_free_slots)
        return needed <= allocator.num_free_slots

    def release_window(self, req: Req) -> None:
        """Give back the request's own sliding slots of whole pages that left the window of
        its next position (after a forward pass); nothing without a sliding slot space."""
        kv = req.kv
        if self.sliding is None or kv.row is None:
            return
        end = (kv.num_computed_tokens - self.sliding.window + 1) // self.page_size * self.page_size
        if end <= kv.num_sliding_released:
            return
        self._free_sliding(self.req_pool.req_to_sliding[kv.row, kv.num_sliding_released:end])
        kv.num_sliding_released = end

    def _free_sliding(self, row: torch.Tensor) -> None:
        """Free the sliding slots held in `row` (a view of req_to_sliding) and zero it."""
        held = row[row != 0]
        if len(held):
            self.sliding.allocator.free(held)
        row.zero_()

    def slots_needed(self, req: Req, num_tokens: int) -> int:
        return self.allocator.num_pages_needed(req.kv.num_computed_tokens, num_tokens) * self.page_size

    def truncate(self, req: Req, num_tokens: int) -> bool:
        """Forget the request's KV past its first `num_tokens` tokens (jump-forward re-spelled
        them). False, changing nothing, when that KV belongs to the prefix cache."""
        kv = req.kv
        if num_tokens >= kv.num_allocated_tokens:
            return True
        if num_tokens < kv.num_cache_owned_tokens or kv.num_evicted_tokens:
            return False
        if self.sliding is not None and kv.num_sliding_released > max(
                kv.sliding_owned_from, num_tokens - self.sliding.window + 1):
            return False  # the window before num_tokens is gone: recompute from the cache
        # the rest of a partly used page stays with the request: the next alloc continues it
        first_free = -(-num_tokens // self.page_size) * self.page_size
        if kv.num_allocated_tokens > first_free:
            self.allocator.free(self.row_slots(req, kv.num_allocated_tokens)[first_free:].clone())
            if self.sliding is not None:
                self._free_sliding(
                    self.req_pool.req_to_sliding[kv.row, first_free:kv.num_allocated_tokens])
        kv.num_computed_tokens = min(kv.num_computed_tokens, num_tokens)
        kv.num_allocated_tokens = num_tokens
        return True

    # -- caching and release ------------------------------------------------------------------
    def cache_prefix(self, req: Req) -> None:
        """Hand the request's computed, page-aligned KV to the prefix cache and re-lock it,
        so that requests arriving later share it while this one goes on."""
        kv = req.kv
        if not self.caches_prefixes or kv.num_evicted_tokens:
            return
        aligned = kv.num_computed_tokens // self.page_size * self.page_size
        if aligned <= kv.num_cache_owned_tokens:
            return
        # sliding slots go with it once the prompt is in (then a request extending this one
        # can start right after it); mid prefill the request keeps them, since the cache
        # would keep each chunk's window (locked) until the request ends
        with_sliding = self.sliding is not None and kv.num_computed_tokens == req.num_tokens
        self._insert(req, aligned, with_sliding)
        match = self.cache.match_prefix(self.cache_key(req, aligned), record=False,
                                        need_window=False)
        self.req_pool.write(kv.row, 0, match.slots)
        if with_sliding:
            self.req_pool.write(kv.row, 0, match.sliding_slots, sliding=True)
            kv.sliding_owned_from = kv.num_sliding_released = aligned
        self.cache.lock(match.node)
        self.cache.unlock(kv.prefix_node)
        kv.prefix_node = match.node
        kv.num_cache_owned_tokens = match.length

    def release(self, req: Req) -> None:
        """Free everything the request holds; its computed KV stays in the prefix cache."""
        kv = req.kv
        if kv.row is None:
            return
        if kv.num_evicted_tokens:  # a compacted row: all its slots are the request's
            num_cols = kv.num_allocated_tokens - kv.num_evicted_tokens
            self.allocator.free(self.req_pool.req_to_token[kv.row, :num_cols].clone())
            self.req_pool.free(kv.row)
            req.kv = KVState()
            return
        aligned = kv.num_computed_tokens // self.page_size * self.page_size
        # sliding slots still held: the cache may take them even where it has the tokens
        gives_sliding = self.sliding is not None and aligned > kv.sliding_owned_from
        if self.caches_prefixes and (aligned > kv.num_cache_owned_tokens or gives_sliding):
            self._insert(req, aligned, with_sliding=True)
            sliding_done = aligned
        else:
            aligned = kv.num_cache_owned_tokens
            sliding_done = kv.sliding_owned_from
        if kv.num_allocated_tokens > aligned:
            self.allocator.free(self.row_slots(req, kv.num_allocated_tokens)[aligned:].clone())
        if self.sliding is not None:
            start = max(sliding_done, kv.num_sliding_released)
            self._free_sliding(self.req_pool.req_to_sliding[kv.row, start:kv.num_allocated_tokens])
        self.cache.unlock(kv.prefix_node)
        self.req_pool.free(kv.row)
        req.kv = KVState()

    def _insert(self, req: Req, aligned: int, with_sliding: bool) -> None:
        """Cache the request's first `aligned` tokens; `with_sliding`: hand over its own
        sliding slots of them too (the cache takes those it lacks, the rest are freed)."""
        kv = req.kv
        slots = self.row_slots(req, aligned).clone()
        sliding = None
        if with_sliding and self.sliding is not None:
            sliding = self.req_pool.req_to_sliding[kv.row, :aligned].clone()
            sliding[: kv.sliding_owned_from] = 0  # the cache's already
        num_existing = self.cache.insert(self.cache_key(req, aligned), slots, sliding)
        # the cache already held [num_cache_owned_tokens, num_existing): our copies are
        # duplicates
        owned = kv.num_cache_owned_tokens
        if num_existing > owned:
            self.allocator.free(slots[owned:num_existing])
        if sliding is not None:
            self._free_sliding(sliding)

    # -- KV eviction ------------------------------------------------------------------------
    def evict(self, req: Req) -> None:
        """Drop the request's cached tokens beyond the eviction policy's budget (after a
        forward pass that completed its fill), compacting its row. The first time, the kept
        tokens the prefix cache holds get copies of their own and the cache lock goes, so the
        cache may evict what the request no longer reads; nothing changes (for a step) when
        there are no slots for those copies."""
        policy, kv = self.eviction, req.kv
        num_cols = kv.num_cols
        if policy is None or num_cols <= policy.budget or kv.num_allocated_tokens != \
                kv.num_computed_tokens:
            return
        scores = None if self.key_scores is None else self.key_scores.table[kv.row, :num_cols]
        keep = policy.keep(num_cols, scores).to(self.req_pool.req_to_token.device)
        slots = self.req_pool.req_to_token[kv.row, :num_cols].clone()
        kept = slots[keep]
        num_shared = int((keep < kv.num_cache_owned_tokens).sum())
        if num_shared:
            copies = self._alloc_plain(num_shared)
            if copies is None:
                return
            self.kv_pool.copy_slots(kept[:num_shared], copies)
            kept[:num_shared] = copies
        if kv.num_evicted_tokens == 0:
            self.cache.unlock(kv.prefix_node)
            kv.prefix_node = None
        dropped = torch.ones(num_cols, dtype=torch.bool, device=slots.device)
        dropped[keep] = False
        dropped[: kv.num_cache_owned_tokens] = False  # the cache's: not ours to free
        if dropped.any():
            self.allocator.free(slots[dropped])
        self.req_pool.req_to_token[kv.row, : keep.numel()] = kept
        if self.key_scores is not None:
            self.key_scores.compact(kv.row, keep, num_cols)
        kv.num_cache_owned_tokens = 0
        kv.num_evicted_tokens += num_cols - keep.numel()
        self.num_evicted_tokens += num_cols - keep.numel()

    def _alloc_plain(self, num: int) -> torch.Tensor | None:
        """`num` fresh slots (page size 1), evicting cache if needed; None if there are none."""
        slots = self.allocator.alloc_slots(None, 0, num)
        if slots is None:
            self.cache.evict(num - self.allocator.num_free_slots)
            slots = self.allocator.alloc_slots(None, 0, num)
        return None if slots is None else torch.tensor(
            slots, dtype=torch.int64, device=self.req_pool.req_to_token.device)
