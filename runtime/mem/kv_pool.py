"""The paged KV pool, its slot allocator and the request-to-token table.

A *slot* holds the K and V of one token in every layer (of its slot space: sliding-window
layers have one of their own, see below). Slots come in *pages* of `page_size` (P)
consecutive slots, and a request's token at position p always sits at offset p % P of its
page, so a page-aligned prefix can be shared by handing over whole pages.

    req_to_token  [max_reqs, max_context_len] int64   (row = request, column = position)

                  pos:  0   1   2   3   4   5
      row 0 (req A):  [ 4,  5,  6,  7,  8,  9, ... ]
      row 1 (req B):  [ 4,  5,  6,  7, 12,    ... ]   <- B shares A's cached prefix, slots 4..7
                        |
                        v  slot ids index the first dimension of every layer's buffers
    k_buffers[layer], v_buffers[layer]  [num_slots, num_kv_heads, head_dim], here P = 4

        page 0          page 1          page 2          page 3
      +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
      | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 |10 |11 |12 |13 |14 |15 |  slot
      +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
        padding: never    shared prefix   A's own page    B's own page
        allocated; pad    (A: pos 0..3,   (pos 4, 5 at    (pos 4 at
        tokens write here  B: pos 0..3)    offsets 0, 1)   offset 0)

MixAttention (`kv_sources`): a layer that reads an earlier layer's K/V has no buffers of
its own; `k_buffers[layer]` is its source's tensor, so slot memory counts only the layers
that own K/V.

Sliding-window layers (`sliding_layers`: the owners with a window and the layers reading
them) keep their K/V in a second, smaller slot space of `num_sliding_slots` slots, with a
table of its own laid out like req_to_token (`ReqToTokenPool.req_to_sliding`); its own
allocator hands out its pages. A request releases the sliding pages of positions that fell
out of the window, so sliding memory follows the window, not the context:

    req_to_token    row A: [ 4,  5,  6,  7,  8,  9, 10, 11, 12, 13 ]   full layers
    req_to_sliding  row A: [ 0,  0,  0,  0,  0,  0,  6,  7,  2,  3 ]   sliding layers
                             `- released        -'  `- what position 10 (next) sees:
                                                       window 5, P = 2
    released entries are 0 (the padding slot): "no sliding K/V here"

The prefix cache keeps, per cached token, its full slot and its sliding slot (0 once freed);
a cached prefix is reusable only where the sliding K/V of the window before its end is still
there (`sglc.runtime.mem.radix_cache`). Without sliding layers there is one slot space.

With `kv_cache_dtype` "int8" or "int4" each layer's buffer is a `QuantizedKV` instead:
the same slots, each row stored as group-wise codes with their scales and zeros
(`sglc.kernels.kv_quant` has its layout); the attention ops dequantize as they read.
"""

from __future__ import annotations

import torch

from sglc.kernels.kv_quant import KVBuffer, allocate, bytes_per_row, copy_rows, kv_bits
from sglc.kernels.kv_store import store_kv

# NOTE: page 0 is never handed out, so slot 0 is always a safe target for padding tokens.
PADDING_SLOT = 0


class KVPool:
    """Per-layer K/V buffers indexed by slot; zero-initialised. `dtype` is the model's (what
    attention returns); `kv_cache_dtype` ("auto" = `dtype`, "int8", "int4") what is stored."""

    def __init__(
        self,
        *,
        num_layers: int,
        num_slots: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
        page_size: int = 1,
        kv_cache_dtype: str = "auto",
        kv_sources: tuple[int | None, ...] | None = None,
        sliding_layers: frozenset[int] = frozenset(),
        num_sliding_slots: int | None = None,
    ) -> None:
        _check_paging(num_slots, page_size)
        if sliding_layers:
            if num_sliding_slots is None:
                raise ValueError("sliding_layers need num_sliding_slots")
            _check_paging(num_sliding_slots, page_size)
        bits = kv_bits(kv_cache_dtype)
        self.num_layers = num_layers
        self.num_slots = num_slots
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        self.device = torch.device(device)
        self.page_size = page_size
        self.kv_cache_dtype = kv_cache_dtype
        # layers whose K/V live in the sliding slot space (empty: one slot space)
        self.sliding_layers = frozenset(sliding_layers)
        self.num_sliding_slots = num_sliding_slots if sliding_layers else None

        def buffer(layer: int) -> KVBuffer:
            rows = num_sliding_slots if layer in self.sliding_layers else num_slots
            if bits is None:
                return torch.zeros((rows, num_kv_heads, head_dim), dtype=dtype, device=device)
            return allocate(rows, num_kv_heads, head_dim, bits, device)

        # layer -> the layer whose buffers it uses (itself unless it reads another's K/V)
        self.kv_owner = [i if kv_sources is None or kv_sources[i] is None else kv_sources[i]
                         for i in range(num_layers)]
        owned = {i: (buffer(i), buffer(i)) for i in sorted(set(self.kv_owner))}
        self.k_buffers = [owned[self.kv_owner[i]][0] for i in range(num_layers)]
        self.v_buffers = [owned[self.kv_owner[i]][1] for i in range(num_layers)]

    def layer(self, layer_id: int) -> tuple[KVBuffer, KVBuffer]:
        """The (K, V) buffers of one layer, each `[num_slots, num_kv_heads, head_dim]` (a
        tensor, or a `QuantizedKV` of that logical shape)."""
        return self.k_buffers[layer_id], self.v_buffers[layer_id]

    def store_kv(
        self, layer_id: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> None:
        """Write `k`, `v` (`[len(slots), num_kv_heads, head_dim]`) into `slots` of one layer."""
        store_kv(self.k_buffers[layer_id], self.v_buffers[layer_id], slots, k, v)

    def copy_slots(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        """Copy the K and V of slots `src` into slots `dst`, in every layer (one slot space
        only: a pool with sliding layers refuses)."""
        if self.sliding_layers:
            raise RuntimeError("copy_slots on a pool with a sliding slot space")
        for k_buf, v_buf in self.owned_buffers():
            copy_rows(k_buf, src, dst)
            copy_rows(v_buf, src, dst)

    def owned_buffers(self) -> list[tuple[KVBuffer, KVBuffer]]:
        """The (K, V) buffers of the layers that own K/V, each pair once."""
        return [self.layer(i) for i in sorted(set(self.kv_owner))]

    @staticmethod
    def bytes_per_slot(
        *, num_layers: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype,
        kv_cache_dtype: str = "auto",
    ) -> int:
        """Memory one slot takes across `num_layers` layers, K and V: for sizing `num_slots`
        (pass the number of layers that own K/V, `ModelConfig.num_kv_layers`)."""
        row_len = num_kv_heads * head_dim
        bits = kv_bits(kv_cache_dtype)
        if bits is None:
            return 2 * num_layers * row_len * torch.empty((), dtype=dtype).itemsize
        return 2 * num_layers * bytes_per_row(row_len, bits)


class SlotAllocator:
    """Hands out slots a page at a time; pages are either free or owned by one holder.

    Free pages live on a stack, so `alloc_extend` and `free` cost O(pages touched).
    """

    def __init__(self, num_slots: int, page_size: int = 1, device: torch.device | str = "cpu"):
        _check_paging(num_slots, page_size)
        self.num_slots = num_slots
        self.page_size = page_size
        self.device = torch.device(device)
        self.num_pages = num_slots // page_size
        # Popped from the end: lowest page first, which keeps runs easy to read when debugging.
        self._free_pages: list[int] = list(range(self.num_pages - 1, 0, -1))
        self._is_free = [False] + [True] * (self.num_pages - 1)

    # whether memory this allocator cannot hand out now may come back without its own
    # requests finishing (other models' requests hold it; see sglc.runtime.prism)
    is_shared = False

    @property
    def num_free_slots(self) -> int:
        """Slots in wholly free pages (free pages x page_size)."""
        return len(self._free_pages) * self.page_size

    @property
    def num_usable_slots(self) -> int:
        """Slots that can be handed out: all but the padding page's."""
        return self.num_slots - self.page_size

    def num_pages_needed(self, start_pos: int, num_tokens: int) -> int:
        """Fresh pages `alloc_extend(_, start_pos, num_tokens)` would take."""
        num_fresh = num_tokens - self._num_in_last_page(start_pos, num_tokens)
        return -(-num_fresh // self.page_size)

    def _num_in_last_page(self, start_pos: int, num_tokens: int) -> int:
        """Tokens that fit in the request's partly filled page before `start_pos`."""
        offset = start_pos % self.page_size
        return 0 if offset == 0 else min(self.page_size - offset, num_tokens)

    def alloc_extend(
        self, last_slot: int | None, start_pos: int, num_tokens: int
    ) -> torch.Tensor | None:
        """`alloc_slots` as an int64 tensor on the pool's device (None when out of pages)."""
        slots = self.alloc_slots(last_slot, start_pos, num_tokens)
        return None if slots is None else torch.tensor(slots, dtype=torch.int64, device=self.device)

    def alloc_slots(self, last_slot: int | None, start_pos: int, num_tokens: int) -> list[int] | None:
        """Slots for positions `start_pos .. start_pos + num_tokens - 1` of one request.

        When `start_pos` is not page aligned, position `start_pos - 1` must live in `last_slot`
        and the request's partly filled page is continued (`last_slot + 1`, ...) before fresh
        pages are taken. Returns `num_tokens` slots, or None, allocating nothing, when there
        are not enough free pages. Plain ints: a decode step allocates for every running
        request, and tensor ops per request would cost more than the step's model work on
        small models.
        """
        if num_tokens < 0 or start_pos < 0:
            raise ValueError(f"bad extend: start_pos={start_pos}, num_tokens={num_tokens}")
        size = self.page_size
        offset = start_pos % size
        if offset != 0 and (last_slot is None or last_slot % size != offset - 1):
            raise ValueError(
                f"position {start_pos - 1} sits at page offset {offset - 1}, "
                f"so last_slot must too; got {last_slot}"
            )
        num_pages = self.num_pages_needed(start_pos, num_tokens)
        if num_pages > len(self._free_pages):
            return None
        in_last_page = self._num_in_last_page(start_pos, num_tokens)
        slots = list(range(last_slot + 1, last_slot + 1 + in_last_page)) if in_last_page else []
        if num_pages:
            pages = self._free_pages[-num_pages:][::-1]
            del self._free_pages[-num_pages:]
            for page in pages:
                self._is_free[page] = False
            if size == 1:
                slots.extend(pages)
            else:
                slots.extend(page * size + i for page in pages for i in range(size))
                del slots[num_tokens:]
        return slots

    def free(self, slots: torch.Tensor) -> None:
        """Return the pages holding `slots`; the caller must own those pages wholly.

        Raises RuntimeError, freeing nothing, on a page that is already free or on page 0.
        """
        pages = torch.unique(slots.detach().cpu() // self.page_size).tolist()
        for page in pages:
            if page == 0:
                raise RuntimeError("page 0 is the reserved padding page and is never freed")
            if self._is_free[page]:
                raise RuntimeError(f"double free of page {page}")
        for page in pages:
            self._is_free[page] = True
        self._free_pages.extend(pages)


class ReqToTokenPool:
    """Rows of `req_to_token` (request -> slot of each position), handed out one per request."""

    def __init__(self, max_reqs: int, max_context_len: int, device: torch.device | str,
                 sliding: bool = False):
        self.max_reqs = max_reqs
        self.max_context_len = max_context_len
        self.req_to_token = torch.zeros(
            (max_reqs, max_context_len), dtype=torch.int64, device=device
        )
        # the sliding layers' slots, laid out the same (None: the pool has no sliding space)
        self.req_to_sliding = torch.zeros_like(self.req_to_token) if sliding else None
        self._free_rows = list(range(max_reqs - 1, -1, -1))
        self._is_free = [True] * max_reqs
        # CPU: the same memory as a numpy array, for indexed stores of a few entries without
        # building three tensors first (a decode step's bookkeeping)
        self.host = self.req_to_token.numpy() if self.req_to_token.device.type == "cpu" else None
        self.sliding_host = (self.req_to_sliding.numpy()
                             if self.req_to_sliding is not None and self.host is not None else None)

    @property
    def num_free(self) -> int:
        return len(self._free_rows)

    def alloc(self) -> int | None:
        """A free row index, or None when every row is taken."""
        if not self._free_rows:
            return None
        idx = self._free_rows.pop()
        self._is_free[idx] = False
        return idx

    def free(self, idx: int) -> None:
        if not 0 <= idx < self.max_reqs or self._is_free[idx]:
            raise RuntimeError(f"row {idx} is not allocated")
        self._is_free[idx] = True
        self._free_rows.append(idx)

    def write(self, idx: int, start: int, slots: torch.Tensor, *, sliding: bool = False) -> None:
        """Record that positions `start .. start + len(slots) - 1` of row `idx` live in `slots`
        (of the sliding slot space with `sliding`)."""
        end = start + len(slots)
        if start < 0 or end > self.max_context_len:
            raise ValueError(f"positions {start}..{end - 1} exceed {self.max_context_len}")
        (self.req_to_sliding if sliding else self.req_to_token)[idx, start:end] = slots

    def write_many(self, rows: list[int], starts: list[int], slots: list[list[int]], *,
                   sliding: bool = False) -> None:
        """`write` for several rows at once (one indexed store): row `rows[i]` gets
        `slots[i]` from position `starts[i]` on."""
        cols = [start + j for start, row_slots in zip(starts, slots, strict=True)
                for j in range(len(row_slots))]  # fmt: skip
        if any(s + len(r) > self.max_context_len for s, r in zip(starts, slots, strict=True)):
            raise ValueError(f"positions exceed {self.max_context_len}")
        index_rows = [row for row, row_slots in zip(rows, slots, strict=True) for _ in row_slots]
        table = self.req_to_sliding if sliding else self.req_to_token
        host = self.sliding_host if sliding else self.host
        if host is not None:
            host[index_rows, cols] = [slot for row_slots in slots for slot in row_slots]
            return
        device = table.device
        table[torch.tensor(index_rows, device=device),
              torch.tensor(cols, device=device)] = torch.tensor(
            [slot for row_slots in slots for slot in row_slots], device=device)  # fmt: skip

    def read(self, idx: int, start: int, end: int) -> torch.Tensor:
        """The slots of positions `start .. end - 1` of row `idx` (a view)."""
        return self.req_to_token[idx, start:end]


def _check_paging(num_slots: int, page_size: int) -> None:
    if page_size < 1 or num_slots % page_size != 0 or num_slots < 2 * page_size:
        raise ValueError(
            f"num_slots ({num_slots}) must be a multiple of page_size ({page_size}) "
            "with at least one page besides the reserved padding page 0"
        )
