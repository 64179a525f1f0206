"""The KV arena: one byte buffer every model's KV pool lives in, handed out in chunks.

Each model sees the whole arena as its own slots, K and V of all its layers side by side,
so a byte range means a run of slots to every model (sizes differ per model):

    arena bytes  | chunk 0 (padding) | chunk 1          | chunk 2          | chunk 3 ...
    model A      | slots 0..a-1      | a..2a-1          | 2a..3a-1         |            a = U / S_A
    model B      | slots 0..b-1      | b..2b-1          | 2b..3b-1         |            b = U / S_B
    owner        | nobody            | A                | free             | B

    model A's view: [num_slots_A, num_layers, 2, num_kv_heads, head_dim] (slot outermost)
    k_buffers[l] = view[:, l, 0], v_buffers[l] = view[:, l, 1]   (strided [slots, H, D])

A chunk of U bytes holds whole pages of every model (U is a multiple of each model's page
in bytes, S x page_size). A chunk belongs to one model or to nobody; only the owner's
allocator hands out slots in it. Chunk 0 is nobody's: every model's padding page 0 lies
in it. A model needing room takes a free chunk, else one reclaimed from the model under
least pressure (its prefix cache evicted there); see `ElasticAllocator`.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import torch

from sglc.runtime.core import InvalidRequest
from sglc.runtime.mem.kv_pool import KVPool


class ArenaMember(Protocol):
    """What the arena asks of a model's allocator (`ElasticAllocator`)."""

    def num_reclaimable_chunks(self) -> int:
        """Held chunks with no pinned page: free, or cache the model may evict."""

    def reclaim_chunk(self) -> int | None:
        """Give one such chunk back to the arena (`give_back`); its number, or None."""

    def pressure(self, now: float) -> float:
        """Recent demand for the memory held: the least pressed gives first."""


def chunk_size(page_bytes: list[int], target: int) -> int:
    """The smallest multiple of every model's page size in bytes that is at least `target`."""
    unit = math.lcm(*page_bytes)
    return unit * max(1, -(-target // unit))


class KVArena:
    """`num_bytes` of KV memory (rounded down to whole chunks), owned chunk by chunk."""

    def __init__(self, num_bytes: int, chunk_bytes: int, device: torch.device) -> None:
        self.chunk_bytes = chunk_bytes
        self.num_chunks = num_bytes // chunk_bytes
        if self.num_chunks < 2:
            raise InvalidRequest(f"memory_budget leaves {num_bytes} bytes for KV, less than two "
                                 f"chunks of {chunk_bytes} bytes (one is padding)")
        self.device = device
        self.data = torch.zeros(self.num_chunks * chunk_bytes, dtype=torch.uint8, device=device)
        self._free_chunks = list(range(self.num_chunks - 1, 0, -1))
        self.members: list[ArenaMember] = []

    @property
    def num_bytes(self) -> int:
        return self.num_chunks * self.chunk_bytes

    @property
    def num_free_chunks(self) -> int:
        return len(self._free_chunks)

    def take_free(self) -> int | None:
        """A chunk nobody owns (lowest first), or None."""
        return self._free_chunks.pop() if self._free_chunks else None

    def give_back(self, chunk: int) -> None:
        if chunk == 0 or chunk in self._free_chunks:
            raise RuntimeError(f"chunk {chunk} is not owned")
        self._free_chunks.append(chunk)
        self._free_chunks.sort(reverse=True)

    def reclaim_for(self, requester: ArenaMember) -> int | None:
        """A chunk taken from the other model under least pressure (its cache evicted
        there), or None when no other model holds one it can give."""
        now = time.perf_counter()
        others = [m for m in self.members if m is not requester and m.num_reclaimable_chunks()]
        for victim in sorted(others, key=lambda m: m.pressure(now)):
            chunk = victim.reclaim_chunk()  # given back to the arena: take it from there
            if chunk is not None:
                self._free_chunks.remove(chunk)
                return chunk
        return None

    def num_obtainable_chunks(self, requester: ArenaMember) -> int:
        """Chunks `requester` could get now: free ones and those the others can give."""
        return self.num_free_chunks + sum(
            m.num_reclaimable_chunks() for m in self.members if m is not requester)


class ArenaKVPool(KVPool):
    """A model's KV pool as a view of the arena (see the module's diagram): every slot of
    the arena is addressable; the model's allocator hands out only those of its chunks."""

    def __init__(self, arena: KVArena, *, num_layers: int, num_kv_heads: int, head_dim: int,
                 dtype: torch.dtype, page_size: int) -> None:
        # NOTE: KVPool.__init__ is not called: it would allocate buffers of its own
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        self.device = arena.device
        self.page_size = page_size
        self.kv_cache_dtype = "auto"
        slot_bytes = self.bytes_per_slot(num_layers=num_layers, num_kv_heads=num_kv_heads,
                                         head_dim=head_dim, dtype=dtype)
        self.num_slots = arena.num_bytes // slot_bytes
        view = arena.data[: self.num_slots * slot_bytes].view(dtype).view(
            self.num_slots, num_layers, 2, num_kv_heads, head_dim)
        self.kv_owner = list(range(num_layers))  # every layer owns its K/V here
        self.k_buffers = [view[:, layer, 0] for layer in range(num_layers)]
        self.v_buffers = [view[:, layer, 1] for layer in range(num_layers)]
