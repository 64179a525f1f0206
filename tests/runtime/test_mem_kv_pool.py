"""KV pool buffers, the paged slot allocator and the request-to-token table."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sglc.runtime.mem import PADDING_SLOT, KVPool, ReqToTokenPool, SlotAllocator

# -- KVPool ------------------------------------------------------------------------------


def make_pool(**overrides) -> KVPool:
    args = dict(
        num_layers=2,
        num_slots=16,
        num_kv_heads=2,
        head_dim=4,
        dtype=torch.float32,
        device="cpu",
        page_size=4,
    )
    args.update(overrides)
    return KVPool(**args)


def test_kv_pool_buffers_are_zeroed_per_layer_and_shaped_by_slot():
    pool = make_pool()
    assert len(pool.k_buffers) == len(pool.v_buffers) == 2
    for k, v in (pool.layer(0), pool.layer(1)):
        assert k.shape == v.shape == (16, 2, 4)
        assert k.dtype == torch.float32
        assert not k.any() and not v.any()
    assert pool.layer(0)[0] is not pool.layer(1)[0]
    assert pool.k_buffers[0] is not pool.v_buffers[0]


def test_kv_pool_store_kv_writes_only_the_given_slots_of_one_layer():
    pool = make_pool(dtype=torch.bfloat16)
    slots = torch.tensor([5, 9])
    k = torch.ones(2, 2, 4)
    v = torch.full((2, 2, 4), 2.0)
    pool.store_kv(1, slots, k, v)
    k1, v1 = pool.layer(1)
    assert k1.dtype == torch.bfloat16
    assert torch.equal(k1[slots].float(), k) and torch.equal(v1[slots].float(), v)
    assert k1.float().sum() == k.sum()  # nothing else written
    assert not pool.layer(0)[0].any()


def test_kv_pool_bytes_per_slot_counts_k_and_v_of_every_layer():
    size = KVPool.bytes_per_slot(num_layers=3, num_kv_heads=2, head_dim=8, dtype=torch.float16)
    assert size == 2 * 3 * 2 * 8 * 2


@pytest.mark.parametrize("num_slots, page_size", [(10, 4), (4, 4), (1, 1), (8, 0)])
def test_bad_paging_is_rejected(num_slots, page_size):
    with pytest.raises(ValueError):
        make_pool(num_slots=num_slots, page_size=page_size)
    with pytest.raises(ValueError):
        SlotAllocator(num_slots, page_size)


# -- SlotAllocator ------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 4])
def test_allocator_never_hands_out_the_padding_page(page_size):
    alloc = SlotAllocator(8 * page_size, page_size)
    assert alloc.num_free_slots == 7 * page_size
    slots = alloc.alloc_extend(None, 0, alloc.num_free_slots)
    assert slots.dtype == torch.int64
    assert sorted(slots.tolist()) == list(range(page_size, 8 * page_size))
    assert PADDING_SLOT not in slots.tolist()
    assert alloc.num_free_slots == 0
    assert alloc.alloc_extend(None, 0, 1) is None


@settings(max_examples=60, deadline=None)
@given(
    page_size=st.sampled_from([1, 2, 4]), chunks=st.lists(st.integers(0, 9), min_size=1, max_size=8)
)
def test_allocator_keeps_position_p_at_page_offset_p_mod_P(page_size, chunks):
    # room for the most the chunks can ask (8 x 9 tokens) beside the reserved padding slot
    alloc = SlotAllocator(128 * page_size, page_size)
    slots: list[int] = []
    for num_tokens in chunks:
        start = len(slots)
        free_before = alloc.num_free_slots
        needed = alloc.num_pages_needed(start, num_tokens)
        new = alloc.alloc_extend(slots[-1] if slots else None, start, num_tokens)
        assert len(new) == num_tokens
        assert free_before - alloc.num_free_slots == needed * page_size
        slots += new.tolist()
    for pos, slot in enumerate(slots):
        assert slot % page_size == pos % page_size
        if pos % page_size:
            assert slot == slots[pos - 1] + 1  # same page, next slot
    # distinct request pages map to distinct pool pages
    page_of = {pos // page_size: slot // page_size for pos, slot in enumerate(slots)}
    assert len(set(page_of.values())) == len(page_of)
    assert len(set(slots)) == len(slots)


def test_allocator_continues_the_last_page_then_takes_fresh_ones():
    alloc = SlotAllocator(32, 4)
    first = alloc.alloc_extend(None, 0, 2)  # positions 0, 1 -> page 1
    assert first.tolist() == [4, 5]
    more = alloc.alloc_extend(5, 2, 5)  # positions 2..6: rest of page 1, then page 2
    assert more.tolist() == [6, 7, 8, 9, 10]
    assert alloc.num_pages_needed(2, 5) == 1
    assert alloc.num_pages_needed(7, 1) == 0
    assert alloc.alloc_extend(10, 7, 1).tolist() == [11]


def test_allocator_returns_none_without_allocating_anything_when_short():
    alloc = SlotAllocator(16, 4)  # pages 1, 2, 3 usable
    held = alloc.alloc_extend(None, 0, 2)
    assert alloc.num_free_slots == 8
    # 2 tokens fit in the held page, 7 more need 2 pages: fits; 11 more need 3: does not
    assert alloc.num_pages_needed(2, 13) == 3
    assert alloc.alloc_extend(int(held[-1]), 2, 13) is None
    assert alloc.num_free_slots == 8
    got = alloc.alloc_extend(int(held[-1]), 2, 10)
    assert len(got) == 10 and alloc.num_free_slots == 0


def test_allocator_rejects_a_last_slot_at_the_wrong_offset():
    alloc = SlotAllocator(32, 4)
    with pytest.raises(ValueError):
        alloc.alloc_extend(None, 3, 1)
    with pytest.raises(ValueError):
        alloc.alloc_extend(4, 3, 1)  # position 2 must be at offset 2, slot 4 is offset 0


def test_allocator_free_returns_whole_pages():
    alloc = SlotAllocator(32, 4)
    slots = alloc.alloc_extend(None, 0, 3)
    alloc.free(slots[:1])
    assert alloc.num_free_slots == 28
    again = alloc.alloc_extend(None, 0, 4)
    assert again.tolist() == [4, 5, 6, 7]  # the freed page is reused


def test_allocator_double_free_and_padding_free_raise_and_free_nothing():
    alloc = SlotAllocator(16, 4)
    a = alloc.alloc_extend(None, 0, 4)
    b = alloc.alloc_extend(None, 0, 4)
    alloc.free(a)
    with pytest.raises(RuntimeError, match="double free"):
        alloc.free(a)
    with pytest.raises(RuntimeError, match="double free"):
        alloc.free(torch.cat([b, a]))
    assert alloc.num_free_slots == 8  # b was not freed by the failed call
    with pytest.raises(RuntimeError, match="page 0"):
        alloc.free(torch.tensor([PADDING_SLOT]))
    alloc.free(b)
    assert alloc.num_free_slots == 12


def test_allocator_zero_tokens_is_an_empty_allocation():
    alloc = SlotAllocator(8, 4)
    slots = alloc.alloc_extend(None, 0, 0)
    assert slots is not None and len(slots) == 0 and slots.dtype == torch.int64
    alloc.free(slots)
    assert alloc.num_free_slots == 4


# -- ReqToTokenPool -----------------------------------------------------------------------


def test_req_to_token_pool_hands_out_each_row_once():
    pool = ReqToTokenPool(max_reqs=3, max_context_len=8, device="cpu")
    assert pool.req_to_token.shape == (3, 8) and pool.req_to_token.dtype == torch.int64
    rows = [pool.alloc() for _ in range(3)]
    assert sorted(rows) == [0, 1, 2]
    assert pool.alloc() is None and pool.num_free == 0
    pool.free(rows[1])
    assert pool.num_free == 1
    assert pool.alloc() == rows[1]


def test_req_to_token_pool_free_of_a_free_or_unknown_row_raises():
    pool = ReqToTokenPool(max_reqs=2, max_context_len=4, device="cpu")
    idx = pool.alloc()
    pool.free(idx)
    with pytest.raises(RuntimeError):
        pool.free(idx)
    with pytest.raises(RuntimeError):
        pool.free(5)
    assert pool.num_free == 2


def test_req_to_token_pool_write_and_read_positions():
    pool = ReqToTokenPool(max_reqs=2, max_context_len=6, device="cpu")
    idx = pool.alloc()
    pool.write(idx, 0, torch.tensor([4, 5, 6]))
    pool.write(idx, 3, torch.tensor([12]))
    assert pool.read(idx, 0, 4).tolist() == [4, 5, 6, 12]
    assert not pool.req_to_token[1 - idx].any()
    with pytest.raises(ValueError):
        pool.write(idx, 4, torch.tensor([1, 2, 3]))
