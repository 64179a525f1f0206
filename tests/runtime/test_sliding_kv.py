"""Sliding-window layers' K/V in a slot space of their own, freed as positions leave the
window: the radix cache's window-aware matching and sliding-slot bookkeeping, and the
engine on the MixAttention reference model (window 8) with requests much longer than the
window: greedy outputs equal the plain PyTorch reference's, the sliding slots a request
holds stay within its window, and every slot comes back."""

from __future__ import annotations

import random

import pytest
import torch
from mixattention_reference import MIX_CONFIG, MixAttentionReference

import sglc
from sglc.runtime.mem import RadixCache, SlidingKV, SlotAllocator
from sglc.runtime.scheduler.kv_manager import KVManager

WINDOW = MIX_CONFIG["sliding_window"]
LONG = list(range(20, 60))  # 40 tokens: five windows
GREEDY = {"temperature": 0, "ignore_eos": True}


# -- the radix cache --------------------------------------------------------------------------
def _cache(window: int = 3, page_size: int = 2) -> tuple[RadixCache, SlotAllocator]:
    full = SlotAllocator(64, page_size)
    sliding = SlotAllocator(64, page_size)
    return RadixCache(full, page_size, SlidingKV(sliding, window)), sliding


def _held(allocator: SlotAllocator, num: int) -> torch.Tensor:
    return torch.tensor(allocator.alloc_slots(None, 0, num))


def test_match_ends_where_the_window_before_it_keeps_sliding_slots():
    cache, sliding_alloc = _cache(window=3, page_size=2)
    key = list(range(10))
    full = _held(cache.allocator, 10)
    sliding = _held(sliding_alloc, 10)
    sliding[:4] = 0  # the request gave back what left its window (positions 0..3)
    sliding_alloc.free(torch.tensor([s for s in range(2, 6)]))
    sliding[6:] = 0  # and 6..9, say, a tombstone after eviction
    sliding_alloc.free(torch.tensor([s for s in range(8, 12)]))
    cache.insert(key, full, sliding.clone())
    # ends at 10, 8: token 9 / 7 has none; 6: tokens 4, 5 have theirs
    assert cache.peek_len(key) == 6
    match = cache.match_prefix(key)
    assert match.length == 6 and match.sliding_slots.tolist() == [0, 0, 0, 0, 6, 7]
    assert cache.match_prefix(key, need_window=False).length == 10
    assert cache.peek_len(key[:5]) == 0  # ends at 4 and 2 need 2..3 / 0..1


def test_insert_adopts_missing_sliding_slots_and_hands_back_the_rest():
    cache, sliding_alloc = _cache(window=3, page_size=2)
    key = list(range(8))
    cache.insert(key, _held(cache.allocator, 8))  # no sliding slots given: tombstones
    assert cache.peek_len(key) == 0 and cache.sliding_evictable_size == 0
    mine = _held(sliding_alloc, 8)
    given = mine.clone()
    given[:4] = 0
    dup = _held(cache.allocator, 8)
    assert cache.insert(key, dup, given) == 8
    assert given.tolist() == [0] * 8  # all four taken: the cache had none of them
    cache.allocator.free(dup)
    assert cache.peek_len(key) == 8 and cache.sliding_evictable_size == 4
    again = _held(sliding_alloc, 8)
    left = again.clone()
    cache.insert(key, _held(cache.allocator, 8), left)
    assert torch.equal(left[4:], again[4:])  # the cache has those: the caller frees them


def test_evict_sliding_spares_locked_nodes_and_reset_returns_everything():
    cache, sliding_alloc = _cache(window=3, page_size=2)
    free_full, free_sliding = cache.allocator.num_free_slots, sliding_alloc.num_free_slots
    a, b = [1, 2, 3, 4], [1, 2, 7, 8]
    for key in (a, b):
        full, sliding = _held(cache.allocator, 4), _held(sliding_alloc, 4)
        num_existing = cache.insert(key, full, sliding)
        if num_existing:  # b's first page is a's: the caller frees its copies
            cache.allocator.free(full[:num_existing])
            sliding_alloc.free(sliding[sliding != 0])
    match = cache.match_prefix(b)
    assert match.length == 4
    cache.lock(match.node)
    assert cache.sliding_evictable_size == 2  # a's own page; [1, 2] and b's page are locked
    assert cache.evict_sliding(100) == 2
    assert cache.peek_len(a) == 2 and cache.match_prefix(b).length == 4
    cache.unlock(match.node)
    assert cache.sliding_evictable_size == 4
    cache.reset()
    assert cache.allocator.num_free_slots == free_full
    assert sliding_alloc.num_free_slots == free_sliding


# -- the engine ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ref_model(tmp_path_factory):
    ref = MixAttentionReference(MIX_CONFIG, seed=0)
    return ref, ref.save(tmp_path_factory.mktemp("sliding_kv"))


def _expected(ref: MixAttentionReference, prompt: list[int], num: int) -> list[int]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return ref.greedy(prompt, num)[0]
    finally:
        torch.set_num_threads(threads)


def _watch_sliding(engine) -> list[int]:
    """Sliding slots in use after each forward pass's window release (engine thread)."""
    kv: KVManager = engine.core.scheduler.kv
    allocator, seen = kv.sliding.allocator, []
    release = kv.release_window

    def watched(req):
        release(req)
        seen.append(allocator.num_usable_slots - allocator.num_free_slots)

    kv.release_window = watched
    return seen


@pytest.mark.parametrize("radix", [True, False], ids=["radix", "no-radix"])
@pytest.mark.parametrize("page_size, chunk", [(1, None), (4, 8)], ids=["p1", "p4-chunk8"])
def test_long_request_matches_reference_within_a_window_of_sliding_slots(
        ref_model, radix, page_size, chunk):
    ref, path = ref_model
    num_new = 24
    expected = _expected(ref, LONG, num_new)
    with sglc.Engine(path, dtype="float32", max_total_tokens=256, page_size=page_size,
                     chunked_prefill_size=chunk, disable_radix_cache=not radix,
                     max_running_requests=4) as engine:
        kv = engine.core.scheduler.kv
        full, sliding = kv.allocator, kv.sliding.allocator
        free_before = (full.num_free_slots, sliding.num_free_slots)
        seen = _watch_sliding(engine)
        out = engine.generate([LONG], {"max_new_tokens": num_new, **GREEDY})[0]
        assert out.token_ids == expected
        # its own window and a page either side; with the cache, the prompt's cached
        # window tail too
        bound = (WINDOW + 2 * page_size) * (2 if radix else 1)
        assert max(seen[-num_new + 1:]) <= bound < len(LONG)
        kv.cache.reset()
        assert (full.num_free_slots, sliding.num_free_slots) == free_before


def test_prefix_longer_than_the_window_is_reused_and_a_lost_window_recomputed(ref_model):
    ref, path = ref_model
    first = LONG[:30]
    follow_up = first + [200, 201, 202, 203, 204]  # extends the first prompt
    branch = LONG[:19] + [210, 211]  # leaves it where its window is gone
    expected = [_expected(ref, p, 6) for p in (first, follow_up, branch)]
    with sglc.Engine(path, dtype="float32", max_total_tokens=512, page_size=4,
                     chunked_prefill_size=8) as engine:
        outs = [engine.generate([p], {"max_new_tokens": 6, **GREEDY})[0]
                for p in (first, follow_up, branch)]
    assert [o.token_ids for o in outs] == expected
    assert outs[1].usage.cached_tokens == 28  # the first prompt's whole pages
    assert outs[2].usage.cached_tokens < 16  # 16 would need positions 9..15's sliding K/V


def test_retraction_and_a_small_sliding_pool_keep_outputs(ref_model):
    ref, path = ref_model
    prompts = [LONG, LONG[5:35], [7, 8, 9] * 6, LONG[::-1]]
    expected = [_expected(ref, p, 12) for p in prompts]
    with sglc.Engine(path, dtype="float32", max_total_tokens=96, page_size=2,
                     chunked_prefill_size=8, max_running_requests=3,
                     new_token_reserve_ratio=0.0) as engine:
        kv = engine.core.scheduler.kv
        pool = engine.core.runner.kv_pool
        assert pool.num_sliding_slots < pool.num_slots
        outs = engine.generate(prompts, {"max_new_tokens": 12, **GREEDY})
        retractions = engine.stats()["num_retractions"]
        kv.cache.reset()
        assert kv.sliding.allocator.num_free_slots == kv.sliding.allocator.num_usable_slots
    assert [o.token_ids for o in outs] == expected
    assert retractions > 0


def test_sliding_buffers_are_sized_by_the_window_not_the_context(ref_model):
    _, path = ref_model
    with sglc.Engine(path, dtype="float32", max_total_tokens=1024, page_size=4,
                     chunked_prefill_size=16, max_running_requests=2) as engine:
        pool = engine.core.runner.kv_pool
        assert pool.sliding_layers == frozenset({1, 2})  # layer 4 reads the full layer 0
        assert pool.k_buffers[1].shape[0] == pool.num_sliding_slots < pool.num_slots // 4
        assert pool.k_buffers[0].shape[0] == pool.num_slots
        assert pool.k_buffers[2] is pool.k_buffers[1]
        out = engine.generate([LONG], {"max_new_tokens": 4, **GREEDY})[0]
        sliding = engine.core.scheduler.kv.sliding.allocator
        assert sliding.num_usable_slots == pool.num_sliding_slots - 4  # the padding page
        # the finished request's last window stays cached; the rest came back
        assert 0 < sliding.num_usable_slots - sliding.num_free_slots <= WINDOW + 4
    assert len(out.token_ids) == 4


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_quantized_sliding_kv_matches_the_quantized_single_space_pool(ref_model, dtype):
    # the same quantized K/V whether sliding layers keep everything (kv_policy's pool has
    # one slot space) or only their window: identical greedy tokens
    _, path = ref_model
    params = {"max_new_tokens": 10, **GREEDY}
    outs = {}
    for policy in ("exact", "window"):
        extra = {} if policy == "exact" else {"kv_policy": "window", "kv_budget": 4096}
        with sglc.Engine(path, dtype="float32", kv_cache_dtype=dtype, max_total_tokens=256,
                         chunked_prefill_size=8, **extra) as engine:
            assert bool(engine.core.runner.kv_pool.sliding_layers) == (policy == "exact")
            outs[policy] = [o.token_ids for o in engine.generate([LONG, LONG[7:]], params)]
    assert outs["exact"] == outs["window"]


def test_constrained_decoding_with_jump_forward_matches_the_single_space_pool(ref_model):
    # JSON far longer than the window, jump-forward re-spelling tokens: the same text as
    # with sliding layers keeping every position (kv_policy's single slot space)
    _, path = ref_model
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 12},
        "tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 6}}},
        "required": ["name", "tags"], "additionalProperties": False}
    prompts = [f"Record {i}: " for i in range(4)]
    tokens = {}
    for policy in ("exact", "window"):
        extra = {} if policy == "exact" else {"kv_policy": "window", "kv_budget": 4096}
        with sglc.Engine(path, dtype="float32", max_total_tokens=1024, **extra) as engine:
            assert bool(engine.core.runner.kv_pool.sliding_layers) == (policy == "exact")
            outs = engine.generate(prompts, {"max_new_tokens": 200, "temperature": 0},
                                   json_schema=schema)
        assert all(o.is_valid for o in outs)
        assert sum(o.usage.forced_tokens for o in outs) > 0  # jump-forward ran
        tokens[policy] = [o.token_ids for o in outs]
    assert tokens["exact"] == tokens["window"]
    assert max(len(t) for t in tokens["exact"]) > 3 * WINDOW


def test_random_shared_prefixes_under_memory_pressure_match_reference_and_free_all(ref_model):
    # prompts branching off each other at random points, a pool small enough to evict and
    # retract, chunked prefill: reference outputs, and every slot of both spaces comes back
    ref, path = ref_model
    rng = random.Random(3)
    starts = [LONG, LONG[::-1], [9, 8, 7] * 10]
    prompts = [rng.choice(starts)[: rng.randint(3, 30)] + [rng.randint(100, 299)
                                                          for _ in range(rng.randint(0, 5))]
               for _ in range(10)]
    lens = [rng.randint(1, 14) for _ in prompts]
    expected = [_expected(ref, p, n) for p, n in zip(prompts, lens, strict=True)]
    with sglc.Engine(path, dtype="float32", max_total_tokens=120, page_size=2,
                     chunked_prefill_size=8, max_running_requests=4,
                     new_token_reserve_ratio=0.0) as engine:
        kv = engine.core.scheduler.kv
        outs = []
        for half in (slice(0, 5), slice(5, 10)):
            outs += engine.generate(prompts[half], [{"max_new_tokens": n, **GREEDY}
                                                    for n in lens[half]])
        kv.cache.reset()
        for allocator in (kv.allocator, kv.sliding.allocator):
            assert allocator.num_free_slots == allocator.num_usable_slots
    assert [o.token_ids for o in outs] == expected
    assert sum(o.usage.cached_tokens for o in outs) > 0


def test_a_window_no_shorter_than_the_context_keeps_one_slot_space(ref_model):
    _, path = ref_model
    with sglc.Engine(path, dtype="float32", max_total_tokens=64, max_context_len=WINDOW) as engine:
        assert engine.core.runner.kv_pool.sliding_layers == frozenset()
        assert engine.core.scheduler.kv.sliding is None
        out = engine.generate([[3, 4, 5]], {"max_new_tokens": 3, **GREEDY})[0]
    assert len(out.token_ids) == 3
