"""The shared KV arena: models' pools grow into free chunks, then into chunks other models
give up (their unlocked cache evicted there), never into memory a request holds."""

from __future__ import annotations

import pytest
import torch

from sglc.runtime.core import InvalidRequest
from sglc.runtime.mem.radix_cache import RadixCache
from sglc.runtime.prism.allocator import ElasticAllocator
from sglc.runtime.prism.arena import ArenaKVPool, KVArena, chunk_size

CHUNK = 1024  # bytes


def _member(arena: KVArena, num_layers: int, head_dim: int) -> tuple[ArenaKVPool, ElasticAllocator, RadixCache]:
    pool = ArenaKVPool(arena, num_layers=num_layers, num_kv_heads=2, head_dim=head_dim,
                       dtype=torch.float32, page_size=2)
    allocator = ElasticAllocator(arena, pool.num_slots, page_size=2)
    cache = RadixCache(allocator, page_size=2)
    allocator.attach(cache)
    return pool, allocator, cache


def _cache_tokens(allocator: ElasticAllocator, cache: RadixCache, first: int, n: int) -> None:
    """Allocate `n` slots and hand them to the cache under a key starting at `first`."""
    slots = allocator.alloc_slots(None, 0, n)
    assert slots is not None
    cache.insert(list(range(first, first + n)), torch.tensor(slots))


def test_views_of_models_of_different_sizes_share_the_bytes():
    arena = KVArena(8 * CHUNK, CHUNK, torch.device("cpu"))
    pool_a, alloc_a, _ = _member(arena, num_layers=2, head_dim=4)  # 128 bytes a slot
    pool_b, alloc_b, _ = _member(arena, num_layers=1, head_dim=8)  # 128 bytes, other layout
    assert pool_a.num_slots == 8 * CHUNK // 128 and alloc_a.slots_per_chunk == 8
    slots = alloc_a.alloc_slots(None, 0, 8)
    assert slots == list(range(8, 16))  # chunk 1 (chunk 0 is the padding chunk)
    pool_a.store_kv(1, torch.tensor([9]), torch.ones(1, 2, 4), torch.full((1, 2, 4), 2.0))
    k, v = pool_a.layer(1)
    assert k[9].eq(1).all() and v[9].eq(2).all() and k[8].eq(0).all()
    assert arena.data.view(torch.float32).count_nonzero() == 16  # only those bytes changed
    assert alloc_b.alloc_slots(None, 0, 8) == list(range(16, 24))  # chunk 2: disjoint bytes
    assert alloc_a.chunks == {1} and alloc_b.chunks == {2}


def test_a_growing_pool_takes_the_other_models_cache_not_its_requests():
    arena = KVArena(5 * CHUNK, CHUNK, torch.device("cpu"))  # 4 usable chunks of 8 slots
    _, alloc_a, cache_a = _member(arena, num_layers=2, head_dim=4)
    _, alloc_b, cache_b = _member(arena, num_layers=2, head_dim=4)
    _cache_tokens(alloc_a, cache_a, 0, 16)  # A's cache fills two chunks
    held = alloc_a.alloc_slots(None, 0, 8)  # and a request of A holds a third
    assert held is not None and arena.num_free_chunks == 1
    assert alloc_b.num_free_slots == 8 + 16  # the free chunk, and A's two cached ones
    assert alloc_b.alloc_slots(None, 0, 24) is not None  # grows into A's cached chunks
    assert cache_a.total_size() == 0 and alloc_a.chunks == {3}
    assert alloc_b.num_free_slots == 0
    assert alloc_b.alloc_slots(None, 0, 2) is None  # A's request keeps its chunk
    assert alloc_a.chunks == {3}


def test_a_locked_cache_entry_pins_its_chunk():
    arena = KVArena(3 * CHUNK, CHUNK, torch.device("cpu"))
    _, alloc_a, cache_a = _member(arena, num_layers=2, head_dim=4)
    _, alloc_b, _ = _member(arena, num_layers=2, head_dim=4)
    _cache_tokens(alloc_a, cache_a, 0, 8)
    _cache_tokens(alloc_a, cache_a, 100, 8)
    cache_a.lock(cache_a.match_prefix(list(range(8))).node)
    assert alloc_b.num_free_slots == 8  # only the chunk of the unlocked entry
    assert alloc_b.alloc_slots(None, 0, 8) is not None
    assert cache_a.total_size() == 8 and cache_a.peek_len(list(range(8))) == 8
    assert alloc_b.alloc_slots(None, 0, 2) is None


def test_the_least_pressed_model_gives_first():
    arena = KVArena(3 * CHUNK, CHUNK, torch.device("cpu"))
    members = [_member(arena, num_layers=2, head_dim=4) for _ in range(3)]
    (_, idle, idle_cache), (_, busy, busy_cache), (_, needy, _) = members
    _cache_tokens(idle, idle_cache, 0, 8)
    _cache_tokens(busy, busy_cache, 0, 8)
    for _ in range(20):  # busy keeps allocating (and freeing) in its chunk's pages
        assert busy.alloc_slots(None, 0, 0) is not None
        busy._add_demand(8)
    assert needy.alloc_slots(None, 0, 8) is not None
    assert idle_cache.total_size() == 0 and busy_cache.total_size() == 8


def test_release_all_needs_every_page_free():
    arena = KVArena(3 * CHUNK, CHUNK, torch.device("cpu"))
    _, alloc, cache = _member(arena, num_layers=2, head_dim=4)
    _cache_tokens(alloc, cache, 0, 8)
    with pytest.raises(RuntimeError, match="in use"):
        alloc.release_all()
    cache.reset()
    alloc.release_all()
    assert arena.num_free_chunks == 2 and not alloc.chunks


def test_chunks_hold_whole_pages_of_every_model():
    assert chunk_size([384, 256], 1000) == 1536
    assert chunk_size([512, 256], 64 << 10) == 64 << 10
    with pytest.raises(InvalidRequest, match="two chunks"):
        KVArena(CHUNK, CHUNK, torch.device("cpu"))


def test_a_static_share_neither_grows_past_its_quota_nor_gives():
    arena = KVArena(5 * CHUNK, CHUNK, torch.device("cpu"))
    pool = ArenaKVPool(arena, num_layers=2, num_kv_heads=2, head_dim=4, dtype=torch.float32,
                       page_size=2)
    static = ElasticAllocator(arena, pool.num_slots, page_size=2, quota_chunks=2)
    static.attach(RadixCache(static, page_size=2))
    _, elastic, _ = _member(arena, num_layers=2, head_dim=4)
    assert static.num_usable_slots == 16 and static.num_free_slots == 16
    _cache_tokens(static, static.cache, 0, 16)
    assert static.alloc_slots(None, 0, 2) is None and arena.num_free_chunks == 2
    assert elastic.num_free_slots == 16  # the free chunks only: the static share stays
    assert elastic.alloc_slots(None, 0, 24) is None
    assert static.cache.total_size() == 16
