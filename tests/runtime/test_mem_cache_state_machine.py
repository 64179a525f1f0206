"""Random request lifecycles against RadixCache, checked against a plain-dict model.

Requests run the scheduler's protocol: match and lock a prefix, allocate the rest, decode,
checkpoint (insert what is computed so far and re-lock it), finish or abort. After every
step every page is owned by exactly one of: the allocator, the tree, one request.
"""

from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sglc.runtime.mem import RadixCache, SlotAllocator

# Shared starts make prefixes collide often, also page-wise with P = 4.
PROMPT_STARTS = ([0] * 12, [0, 1] * 6, list(range(1, 13)))
MAX_REQS = 5


@dataclass(eq=False)  # identity: requests are removed from a list
class Request:
    tokens: list[int]
    slots: torch.Tensor  # one per token; slots[:num_cached] belong to the cache
    num_cached: int
    node: Any  # locked; covers exactly tokens[:num_cached]


prompts = st.builds(
    lambda start, cut, tail: start[:cut] + tail,
    st.sampled_from(PROMPT_STARTS),
    st.integers(0, 12),
    st.lists(st.integers(0, 2), max_size=6),
).filter(len)


class CacheMachine(RuleBasedStateMachine):
    @initialize(page_size=st.sampled_from([1, 4]))
    def setup(self, page_size: int) -> None:
        self.page_size = page_size
        num_pages = 24 if page_size == 1 else 11
        self.alloc = SlotAllocator(num_pages * page_size, page_size)
        self.cache = RadixCache(self.alloc, page_size)
        self.reqs: list[Request] = []
        # model of the cache: page-aligned token prefix -> the slots of its last page
        self.model: dict[tuple[int, ...], list[int]] = {}

    # -- model helpers -------------------------------------------------------------------

    def expected_cached_len(self, key: list[int]) -> int:
        num = 0
        while num + self.page_size <= len(key) and tuple(key[: num + self.page_size]) in self.model:
            num += self.page_size
        return num

    def check_match(self, key: list[int]):
        match = self.cache.match_prefix(key)
        expected_len = self.expected_cached_len(key)
        assert match.length == expected_len == len(match.slots)
        ends = range(self.page_size, expected_len + 1, self.page_size)
        assert match.slots.tolist() == [s for end in ends for s in self.model[tuple(key[:end])]]
        return match

    def allocate(self, last_slot: int | None, start_pos: int, num_tokens: int):
        """Allocate, evicting the shortfall once if needed, as the scheduler does."""
        slots = self.alloc.alloc_extend(last_slot, start_pos, num_tokens)
        if slots is None:
            num_pages = self.alloc.num_pages_needed(start_pos, num_tokens)
            self.evict_and_check(num_pages * self.page_size - self.alloc.num_free_slots)
            slots = self.alloc.alloc_extend(last_slot, start_pos, num_tokens)
        if slots is not None:
            assert len(slots) == num_tokens
            for offset, slot in enumerate(slots.tolist()):
                pos = start_pos + offset
                assert slot % self.page_size == pos % self.page_size
                if pos % self.page_size:
                    assert slot == (last_slot if offset == 0 else slots[offset - 1]) + 1
        return slots

    def evict_and_check(self, num_tokens: int) -> int:
        before = self.tree_slots()
        in_use = {s for r in self.reqs for s in r.slots[: r.num_cached].tolist()}
        evictable = self.cache.evictable_size
        num_freed = self.cache.evict(num_tokens)
        evicted = set(before) - set(self.tree_slots())
        assert len(evicted) == num_freed == len(before) - len(self.tree_slots())
        assert not evicted & in_use, "evicted slots of a locked prefix"
        assert num_freed >= min(num_tokens, evictable)
        if num_freed < num_tokens:
            assert self.cache.evictable_size == 0
        self.model = {k: p for k, p in self.model.items() if not evicted.intersection(p)}
        return num_freed

    def insert(self, req: Request) -> int:
        """Cache the page-aligned part of req; frees req's duplicate slots. Returns its length."""
        aligned = len(req.tokens) // self.page_size * self.page_size
        key = req.tokens[:aligned]
        expected_existing = self.expected_cached_len(key)
        num_existing = self.cache.insert(key, req.slots[:aligned])
        assert num_existing == expected_existing >= req.num_cached
        if num_existing > req.num_cached:
            self.alloc.free(req.slots[req.num_cached : num_existing])
        for start in range(num_existing, aligned, self.page_size):
            end = start + self.page_size
            self.model[tuple(key[:end])] = req.slots[start:end].tolist()
        return aligned

    def tree_slots(self) -> list[int]:
        return [s for node in self.tree_nodes() for s in node.value.tolist()]

    def tree_nodes(self) -> list:
        return [n for n in self.cache.nodes() if n is not self.cache.root]

    def pick(self, data) -> Request:
        return self.reqs[data.draw(st.integers(0, len(self.reqs) - 1))]

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.reqs) < MAX_REQS)
    @rule(key=prompts)
    def start_request(self, key: list[int]) -> None:
        match = self.check_match(key)
        self.cache.lock(match.node)
        own = self.allocate(None, match.length, len(key) - match.length)
        if own is None:  # retracted: not enough KV even after eviction
            self.cache.unlock(match.node)
            return
        self.reqs.append(
            Request(list(key), torch.cat([match.slots, own]), match.length, match.node)
        )

    @precondition(lambda self: 0 < len(self.reqs) < MAX_REQS)
    @rule(data=st.data(), tail=st.lists(st.integers(0, 2), max_size=3))
    def start_sibling(self, data, tail: list[int]) -> None:
        """A request sharing a running one's tokens, as with n > 1 or a common system prompt:
        both compute the uncached part, so the second insert finds it already cached."""
        self.start_request(self.pick(data).tokens + tail)

    @precondition(lambda self: self.reqs)
    @rule(data=st.data(), num_tokens=st.integers(1, 6))
    def decode(self, data, num_tokens: int) -> None:
        req = self.pick(data)
        new = self.allocate(int(req.slots[-1]), len(req.tokens), num_tokens)
        if new is not None:
            req.tokens += data.draw(
                st.lists(st.integers(0, 2), min_size=num_tokens, max_size=num_tokens)
            )
            req.slots = torch.cat([req.slots, new])

    @precondition(lambda self: self.reqs)
    @rule(data=st.data())
    def checkpoint(self, data) -> None:
        """Chunked prefill: cache what is computed, switch to the cache's slots, re-lock."""
        req = self.pick(data)
        aligned = self.insert(req)
        self.cache.unlock(req.node)
        match = self.check_match(req.tokens[:aligned])
        assert match.length == aligned
        assert match.slots[: req.num_cached].tolist() == req.slots[: req.num_cached].tolist()
        self.cache.lock(match.node)
        req.slots = torch.cat([match.slots, req.slots[aligned:]])
        req.num_cached, req.node = aligned, match.node

    @precondition(lambda self: self.reqs)
    @rule(data=st.data())
    def finish(self, data) -> None:
        req = self.pick(data)
        aligned = self.insert(req)
        if aligned < len(req.tokens):
            self.alloc.free(req.slots[aligned:])
        self.cache.unlock(req.node)
        self.reqs.remove(req)

    @precondition(lambda self: self.reqs)
    @rule(data=st.data())
    def abort(self, data) -> None:
        req = self.pick(data)
        if req.num_cached < len(req.tokens):
            self.alloc.free(req.slots[req.num_cached :])
        self.cache.unlock(req.node)
        self.reqs.remove(req)

    @rule(key=prompts)
    def match_only(self, key: list[int]) -> None:
        self.check_match(key)

    @rule(num_tokens=st.integers(0, 20))
    def evict(self, num_tokens: int) -> None:
        self.evict_and_check(num_tokens)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def locks_and_sizes_agree(self) -> None:
        expected_locks: dict[int, int] = {}
        for req in self.reqs:
            node = req.node
            while node is not self.cache.root:
                expected_locks[node.id] = expected_locks.get(node.id, 0) + 1
                node = node.parent
        protected = evictable = 0
        for node in self.tree_nodes():
            assert len(node.key) == len(node.value) > 0
            assert len(node.key) % self.page_size == 0
            assert node.lock_ref == expected_locks.pop(node.id, 0)
            if node.lock_ref:
                protected += len(node.key)
            else:
                evictable += len(node.key)
        assert not expected_locks, "a request holds a node that left the tree"
        assert (self.cache.protected_size, self.cache.evictable_size) == (protected, evictable)
        assert self.cache.total_size() == protected + evictable

    @invariant()
    def every_page_has_exactly_one_owner(self) -> None:
        size = self.page_size
        tree = self.tree_slots()
        assert sorted(tree) == sorted(s for page in self.model.values() for s in page)
        assert len(set(tree)) == len(tree)
        tree_pages = {s // size for s in tree}
        assert len(tree_pages) * size == len(tree), "the tree owns a partial page"
        owners = [tree_pages]
        for req in self.reqs:
            assert len(req.slots) == len(req.tokens)
            assert set(req.slots[: req.num_cached].tolist()) <= set(tree)
            owners.append({s // size for s in req.slots[req.num_cached :].tolist()})
        # Take every free page to see which they are, then give them back.
        free = self.alloc.alloc_extend(None, 0, self.alloc.num_free_slots)
        owners.append({s // size for s in free.tolist()})
        self.alloc.free(free)
        owned = [page for pages in owners for page in pages]
        assert len(set(owned)) == len(owned), "a page has two owners"
        assert sorted(owned) == list(range(1, self.alloc.num_pages)), "a page was leaked"

    def teardown(self) -> None:
        if not hasattr(self, "cache"):
            return
        for req in self.reqs:
            if req.num_cached < len(req.tokens):
                self.alloc.free(req.slots[req.num_cached :])
            self.cache.unlock(req.node)
        assert self.cache.protected_size == 0
        self.cache.reset()
        assert self.alloc.num_free_slots == (self.alloc.num_pages - 1) * self.page_size


CacheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestRadixCacheMachine = CacheMachine.TestCase
