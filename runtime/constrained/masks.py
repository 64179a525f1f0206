"""One step's allowed-token bitmasks: rows filled per matcher into one pinned CPU buffer.

Layout (that of `sglc.kernels.bitmask`): row k allows token t iff bit ``t % 32`` of int32 word
``t // 32`` is set. A step may read masks twice, for the same requests in the same states:
their union before the forward pass (the logit columns worth computing), then the rows of
the requests it samples. The second fill reuses the rows of the first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sglc.runtime.constrained.base import BaseMatcher

_MIN_ROWS = 64  # the buffer is allocated for at least this many rows


class MaskBuffer:
    """The engine's bitmask rows; one thread (the engine's) fills and reads them."""

    def __init__(self, words: int) -> None:
        self.words = words  # int32 words per row
        self._buffer: torch.Tensor | None = None
        # (id(matcher), state) -> (matcher, its row in the buffer) after the last `fill`
        self._last_rows: dict[tuple[int, int], tuple[BaseMatcher, int]] = {}

    def fill(self, matchers: Sequence[BaseMatcher]) -> torch.Tensor:
        """``[len(matchers), words]`` int32 rows: row k is the bitmask of matchers[k].

        A mask is a function of (matcher, state), so a row the last fill computed for that
        pair is moved down instead of recomputed: the rows of a fill are an in-order subset of
        the last one's, so its source row j >= k is not written before row k.
        """
        buffer = self._rows(len(matchers))
        last, self._last_rows = self._last_rows, {}
        for k, matcher in enumerate(matchers):
            key = (id(matcher), matcher.state)
            hit = last.get(key)
            if hit is not None and hit[0] is matcher and hit[1] >= k:
                if hit[1] > k:  # hit[1] may lie past this fill's rows
                    buffer[k] = self._buffer[hit[1]]
            else:
                matcher.fill_bitmask(buffer[k])
            self._last_rows[key] = (matcher, k)
        return buffer

    def _rows(self, num_rows: int) -> torch.Tensor:
        if self._buffer is None or self._buffer.shape[0] < num_rows:
            self._last_rows = {}  # a new buffer holds none of the last fill's rows
            pin = torch.cuda.is_available()
            self._buffer = torch.empty((max(num_rows, _MIN_ROWS), self.words), dtype=torch.int32,
                                       pin_memory=pin)
        return self._buffer[:num_rows]


def row_of(token_ids: Sequence[int], words: int) -> np.ndarray:
    """A bitmask row (`words` int32 words) allowing exactly `token_ids`."""
    bits = np.zeros(words * 32, dtype=np.uint8)
    bits[np.asarray(token_ids, dtype=np.int64)] = 1
    return np.packbits(bits, bitorder="little").view(np.int32)


def row_allows(row: np.ndarray, token_id: int) -> bool:
    """Whether bitmask row `row` (int32 words) allows `token_id`."""
    return bool((int(row[token_id >> 5]) >> (token_id & 31)) & 1)


def allowed_union(mask: torch.Tensor, width: int) -> np.ndarray:
    """Sorted token ids below `width` that any row of `mask` allows (the rows OR-ed)."""
    union = np.bitwise_or.reduce(mask.numpy(), axis=0)
    bits = np.unpackbits(union.view(np.uint8), bitorder="little")
    return np.flatnonzero(bits[:width])


def column_bits(mask: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``allowed[b, j]`` = bit ``columns[j]`` of the packed bitmask row ``mask[b]``."""
    words = mask[:, columns >> 5]
    return ((words >> (columns & 31).to(torch.int32)) & 1).bool()


def mask_columns(logits: torch.Tensor, allowed: torch.Tensor, columns: torch.Tensor) -> None:
    """-inf into ``logits[b, columns[j]]`` where ``allowed[b, j]`` is False."""
    columns = columns.to(logits.device)
    logits[:, columns] = logits[:, columns].masked_fill_(
        ~allowed.to(logits.device, non_blocking=True), float("-inf"))
