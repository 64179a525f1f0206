"""RadixCache and NoPrefixCache behaviour on small hand-made cases."""

import pytest
import torch

from sglc.runtime.mem import (
    BasePrefixCache,
    NoPrefixCache,
    RadixCache,
    SlotAllocator,
    make_prefix_cache,
)


def new_cache(page_size: int = 1, num_pages: int = 32) -> tuple[RadixCache, SlotAllocator]:
    alloc = SlotAllocator(num_pages * page_size, page_size)
    return RadixCache(alloc, page_size), alloc


def cache_tokens(cache: RadixCache, alloc: SlotAllocator, key: list[int]) -> torch.Tensor:
    """What a finished request does: compute key in fresh slots and hand them to the cache."""
    slots = alloc.alloc_extend(None, 0, len(key))
    num_existing = cache.insert(key, slots)
    if num_existing:
        alloc.free(slots[:num_existing])
    return slots


def test_match_returns_the_inserted_slots_of_the_longest_prefix():
    cache, alloc = new_cache()
    slots = cache_tokens(cache, alloc, [1, 2, 3, 4, 5])
    match = cache.match_prefix([1, 2, 3, 9])
    assert match.length == 3
    assert match.slots.tolist() == slots[:3].tolist()
    assert cache.match_prefix([7, 1, 2]).length == 0
    assert cache.match_prefix([1, 2, 3, 4, 5, 6]).slots.tolist() == slots.tolist()
    assert cache.match_prefix([1, 2, 3, 4, 5]).length == 5  # the whole key may match


def test_insert_reports_the_tokens_already_cached():
    cache, alloc = new_cache()
    first = cache_tokens(cache, alloc, [1, 2, 3, 4])
    second = alloc.alloc_extend(None, 0, 6)
    assert cache.insert([1, 2, 3, 7, 8, 9], second) == 3
    alloc.free(second[:3])
    assert cache.match_prefix([1, 2, 3, 7, 8, 9]).slots.tolist() == (
        first[:3].tolist() + second[3:].tolist()
    )
    assert cache.insert([1, 2], first[:2]) == 2
    assert cache.total_size() == 7
    assert alloc.num_free_slots == 31 - 7  # every slot is cached or free, none leaked


def test_insert_keeps_its_own_copy_of_the_slots():
    cache, alloc = new_cache()
    slots = alloc.alloc_extend(None, 0, 3)
    expected = slots.tolist()
    cache.insert([1, 2, 3], slots)
    slots.fill_(0)  # e.g. the caller's req_to_token row is reused
    assert cache.match_prefix([1, 2, 3]).slots.tolist() == expected


def test_pages_match_only_when_every_token_matches():
    cache, alloc = new_cache(page_size=4)
    slots = cache_tokens(cache, alloc, [1, 2, 3, 4, 5, 6, 7, 8])
    match = cache.match_prefix([1, 2, 3, 4, 5, 6, 0, 8])
    assert match.length == 4 and match.slots.tolist() == slots[:4].tolist()
    assert cache.match_prefix([1, 2, 3, 4, 5, 6, 7]).length == 4  # partial last page
    assert cache.match_prefix([1, 2, 3]).length == 0
    with pytest.raises(AssertionError):
        cache.insert([1, 2, 3], slots[:3])


def test_split_of_a_locked_node_keeps_it_locked():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2, 3, 4, 5, 6])
    node = cache.match_prefix([1, 2, 3, 4, 5, 6]).node
    cache.lock(node)
    assert (cache.evictable_size, cache.protected_size) == (0, 6)
    cache.match_prefix([1, 2, 3, 9])  # splits the locked edge after 3 tokens
    assert cache.evict(100) == 0
    assert (cache.evictable_size, cache.protected_size) == (0, 6)
    cache.unlock(node)
    assert (cache.evictable_size, cache.protected_size) == (6, 0)
    assert cache.evict(100) == 6
    assert cache.total_size() == 0 and alloc.num_free_slots == 31


def test_locking_a_prefix_protects_only_that_prefix():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2, 3, 4])
    cache_tokens(cache, alloc, [1, 2, 7, 8])
    match = cache.match_prefix([1, 2, 3, 4])
    cache.lock(match.node)
    assert cache.protected_size == 4 and cache.evictable_size == 2
    assert cache.evict(100) == 2  # only the [7, 8] branch
    assert cache.match_prefix([1, 2, 3, 4]).slots.tolist() == match.slots.tolist()
    assert cache.match_prefix([1, 2, 7, 8]).length == 2


def test_unlock_below_zero_raises():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2])
    node = cache.match_prefix([1, 2]).node
    cache.lock(node)
    cache.lock(node)
    cache.unlock(node)
    cache.unlock(node)
    with pytest.raises(RuntimeError):
        cache.unlock(node)
    assert cache.evictable_size == 2 and cache.protected_size == 0


def test_empty_match_gives_a_node_that_locks_nothing():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2])
    match = cache.match_prefix([5])
    assert match.length == 0 and len(match.slots) == 0 and match.slots.dtype == torch.int64
    cache.lock(match.node)
    cache.unlock(match.node)
    assert cache.evict(2) == 2


def test_evict_takes_least_recently_used_leaves_first():
    cache, alloc = new_cache()
    for first in (1, 2, 3):
        cache_tokens(cache, alloc, [first, 0])
    cache.match_prefix([1, 0])  # [1, 0] is now the most recent, [2, 0] the oldest
    assert cache.evict(1) == 2
    assert cache.match_prefix([2, 0]).length == 0
    assert cache.evict(1) == 2
    assert cache.match_prefix([3, 0]).length == 0
    assert cache.match_prefix([1, 0]).length == 2


def test_evict_climbs_to_parents_that_become_leaves():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2, 3, 4])
    cache_tokens(cache, alloc, [1, 2, 5, 6])
    assert cache.evict(6) == 6
    assert cache.total_size() == 0 and cache.evictable_size == 0
    assert alloc.num_free_slots == 31


def test_evict_frees_whole_nodes_and_stops_when_enough():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2, 3, 4, 5])
    cache_tokens(cache, alloc, [9])
    cache.match_prefix([1, 2, 3, 4, 5])  # the long entry is the most recent
    assert cache.evict(1) == 1
    assert cache.evict(1) == 5
    assert cache.evict(1) == 0
    assert cache.stats()["evicted_tokens"] == 6


def test_stats_count_requests_and_hits():
    cache, alloc = new_cache()
    cache_tokens(cache, alloc, [1, 2, 3, 4])
    cache.match_prefix([1, 2, 9, 9])
    cache.match_prefix([5, 6, 7, 8])
    stats = cache.stats()
    assert stats["match_calls"] == 2
    assert stats["requested_tokens"] == 8 and stats["matched_tokens"] == 2
    assert stats["hit_rate"] == pytest.approx(0.25)
    assert stats["cached_tokens"] == 4


def test_reset_frees_everything_but_refuses_while_locked():
    cache, alloc = new_cache(page_size=4, num_pages=8)
    cache_tokens(cache, alloc, list(range(8)))
    cache_tokens(cache, alloc, [0, 1, 2, 3, 9, 9, 9, 9])
    node = cache.match_prefix(list(range(8))).node
    cache.lock(node)
    with pytest.raises(RuntimeError):
        cache.reset()
    cache.unlock(node)
    cache.reset()
    assert cache.total_size() == 0 and cache.stats()["match_calls"] == 0
    assert alloc.num_free_slots == 7 * 4


def test_no_prefix_cache_matches_nothing_and_frees_what_it_is_given():
    alloc = SlotAllocator(16, 4)
    cache = NoPrefixCache(alloc, 4)
    slots = alloc.alloc_extend(None, 0, 8)
    assert cache.insert(list(range(8)), slots) == 0
    assert alloc.num_free_slots == 12
    match = cache.match_prefix(list(range(8)))
    assert match.length == 0 and len(match.slots) == 0 and match.node is None
    cache.lock(match.node)
    cache.unlock(match.node)
    assert cache.evict(10) == 0 and cache.total_size() == 0
    assert cache.stats()["requested_tokens"] == 8 and cache.stats()["hit_rate"] == 0.0


def test_registry_builds_caches_by_name():
    alloc = SlotAllocator(16, 4)
    assert isinstance(make_prefix_cache("radix", alloc, 4), RadixCache)
    assert isinstance(make_prefix_cache("none", alloc, 4), NoPrefixCache)
    assert isinstance(make_prefix_cache("radix", alloc, 4), BasePrefixCache)
    with pytest.raises(ValueError, match="radix"):
        make_prefix_cache("lru", alloc, 4)
    with pytest.raises(ValueError):
        make_prefix_cache("radix", alloc, 1)  # page size must agree with the allocator


@pytest.mark.parametrize("page_size", [1, 4])
def test_peek_len_equals_match_length_and_changes_nothing(page_size):
    cache, alloc = new_cache(page_size, num_pages=64)
    cache_tokens(cache, alloc, list(range(1, 17)))
    cache_tokens(cache, alloc, list(range(1, 9)) + [50] * 8)
    before = (cache.stats(), len(cache.nodes()))
    keys = [list(range(1, 13)), list(range(1, 9)) + [50, 50, 50], [1, 2, 99], [], [7]]
    peeks = [cache.peek_len(k) for k in keys]
    assert (cache.stats(), len(cache.nodes())) == before  # no stats, no splits
    assert peeks == [cache.match_prefix(k).length for k in keys]
    assert NoPrefixCache(alloc, page_size).peek_len(list(range(1, 9))) == 0
