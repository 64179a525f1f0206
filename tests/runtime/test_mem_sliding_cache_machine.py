"""Random lifecycles of RadixCache with a sliding slot space, checked against brute force.

Requests insert prefixes with some of their sliding slots already given back (as a request
does once tokens leave its window), match and lock, evict sliding slots alone or whole
entries. After every step: a match ends at the longest page boundary whose window before it
keeps sliding slots (recomputed from the path by brute force), `peek_len` agrees, the
sliding counters agree with the nodes, and every sliding page has exactly one owner.
"""

from __future__ import annotations

import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sglc.runtime.mem import RadixCache, SlidingKV, SlotAllocator

STARTS = ([0] * 12, [0, 1] * 6, list(range(1, 13)))
keys = st.builds(lambda start, cut, tail: start[:cut] + tail, st.sampled_from(STARTS),
                 st.integers(0, 12), st.lists(st.integers(0, 2), max_size=6))


class SlidingCacheMachine(RuleBasedStateMachine):
    @initialize(page_size=st.sampled_from([1, 2]), window=st.integers(1, 6))
    def setup(self, page_size: int, window: int) -> None:
        self.page_size, self.window = page_size, window
        self.full = SlotAllocator(64 * page_size, page_size)
        self.sliding = SlotAllocator(64 * page_size, page_size)
        self.cache = RadixCache(self.full, page_size, SlidingKV(self.sliding, window))
        self.locked: list = []  # nodes locked by "requests"

    def aligned(self, key: list[int]) -> list[int]:
        return key[: len(key) // self.page_size * self.page_size]

    def expected_len(self, key: list[int]) -> int:
        """Brute force: the full match's sliding slots, then the last usable page end."""
        full = self.cache.match_prefix(key, record=False, need_window=False)
        present = (full.sliding_slots != 0).tolist()
        for end in range(full.length, -1, -self.page_size):
            if all(present[max(0, end - self.window + 1):end]):
                return end
        return 0

    @rule(key=keys, data=st.data())
    def insert(self, key: list[int], data) -> None:
        key = self.aligned(key)
        full = self.full.alloc_extend(None, 0, len(key))
        sliding = self.sliding.alloc_extend(None, 0, len(key))
        if full is None or sliding is None:
            for got, allocator in ((full, self.full), (sliding, self.sliding)):
                if got is not None and len(got):
                    allocator.free(got)
            return
        # the caller gave back its first `released` pages' sliding slots (its window moved)
        released = data.draw(st.integers(0, len(key) // self.page_size)) * self.page_size
        if released:
            self.sliding.free(sliding[:released])
            sliding[:released] = 0
        num_existing = self.cache.insert(key, full, sliding)
        if num_existing:
            self.full.free(full[:num_existing])
        assert not sliding[num_existing:].any(), "the cache took what it newly caches"
        left = sliding[sliding != 0]
        if len(left):
            self.sliding.free(left)

    @rule(key=keys)
    def match(self, key: list[int]) -> None:
        expected = self.expected_len(key)
        assert self.cache.peek_len(key) == expected
        match = self.cache.match_prefix(key)
        assert match.length == expected == len(match.slots) == len(match.sliding_slots)
        present = (match.sliding_slots != 0).tolist()
        assert all(present[max(0, expected - self.window + 1):expected])

    @rule(key=keys)
    def lock(self, key: list[int]) -> None:
        match = self.cache.match_prefix(key)
        if match.length:
            self.cache.lock(match.node)
            self.locked.append(match.node)

    @precondition(lambda self: self.locked)
    @rule(data=st.data())
    def unlock(self, data) -> None:
        node = self.locked.pop(data.draw(st.integers(0, len(self.locked) - 1)))
        self.cache.unlock(node)

    @rule(num=st.integers(0, 12))
    def evict_sliding(self, num: int) -> None:
        protected = {int(s) for n in self.nodes() if n.lock_ref for s in n.sliding if s}
        evictable = self.cache.sliding_evictable_size
        freed = self.cache.evict_sliding(num)
        assert freed >= min(num, evictable)
        still = {int(s) for n in self.nodes() if n.lock_ref for s in n.sliding if s}
        assert still == protected, "freed a locked node's sliding slots"

    @rule(num=st.integers(0, 12))
    def evict(self, num: int) -> None:
        self.cache.evict(num)

    # -- invariants ----------------------------------------------------------------------

    def nodes(self) -> list:
        return [n for n in self.cache.nodes() if n is not self.cache.root]

    @invariant()
    def counters_agree_with_nodes(self) -> None:
        unlocked = 0
        for node in self.nodes():
            assert len(node.sliding) == len(node.key)
            assert node.num_sliding == int(torch.count_nonzero(node.sliding))
            unlocked += 0 if node.lock_ref else node.num_sliding
        assert self.cache.sliding_evictable_size == unlocked

    @invariant()
    def every_sliding_page_has_one_owner(self) -> None:
        size = self.page_size
        held = [int(s) for n in self.nodes() for s in n.sliding if s]
        assert len(set(held)) == len(held)
        free = self.sliding.alloc_extend(None, 0, self.sliding.num_free_slots)
        free_pages = {s // size for s in free.tolist()}
        self.sliding.free(free)
        held_pages = {s // size for s in held}
        assert len(held_pages) * size == len(held), "the tree owns a partial sliding page"
        # no request outlives a rule here: the tree's pages and the free ones are all of them
        assert not free_pages & held_pages
        assert sorted(free_pages | held_pages) == list(range(1, self.sliding.num_pages))

    def teardown(self) -> None:
        if not hasattr(self, "cache"):
            return
        for node in self.locked:
            self.cache.unlock(node)
        self.cache.reset()
        for allocator in (self.full, self.sliding):
            assert allocator.num_free_slots == allocator.num_usable_slots


SlidingCacheMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=30,
                                                 deadline=None)
TestSlidingCacheMachine = SlidingCacheMachine.TestCase
