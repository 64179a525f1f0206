"""Per-request automaton state: allowed-token bitmasks, advancing, rollback.

A :class:`RegexMatcher` walks one :class:`~sglc.runtime.constrained.index_cache.CompiledIndex`
(outlines-core ``Index``) token by token. Its bitmask has the layout of
:mod:`sglc.kernels.bitmask` (token t allowed iff bit ``t % 32`` of int32 word ``t // 32``,
little-endian within a word; ``ceil(logit_width / 32)`` words, padding bits zero), written by
outlines-core's ``Guide.write_mask_into`` straight into the caller's buffer.

Stop ids are allowed only in final states (all of them: outlines-core knows one EOS id, the
others are OR-ed in). Dense states (free text allows most of the vocabulary) are slow for
outlines-core to write, so a state whose write was slow keeps a copy of its mask in a
per-index LRU shared by every request on that regex; later fills are one row copy.

Mask fills and advances for one matcher must come from one thread (the engine's).
"""

from __future__ import annotations

import ctypes
import random
import statistics
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from outlines_core import Guide

from sglc.runtime.constrained.base import BaseMatcher
from sglc.runtime.constrained.index_cache import CompiledIndex, build_index
from sglc.runtime.constrained.vocabulary import TokenVocabulary, vocabulary_from_token_bytes

__all__ = ["BitmaskRow", "MaskCache", "RegexMatcher", "mask_cache", "measure_mask_overhead",
           "synthetic_token_bytes"]

_DEFAULT_THRESHOLD_US = 8.0
_DEFAULT_BUDGET = 16 << 20  # per index: ~1000 rows of a 128k vocabulary


class CachedRow:
    """One finished mask row: its words (numpy, contiguous) and their address."""

    __slots__ = ("array", "ptr")

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.ascontiguousarray(array)
        self.ptr = self.array.ctypes.data

    @property
    def nbytes(self) -> int:
        return self.array.nbytes


class MaskCache:
    """LRU of finished bitmask rows by automaton state, bounded in bytes.

    A state's mask is kept when writing it took at least ``threshold_us`` (dense states);
    ``threshold_us=0`` keeps every mask, ``float('inf')`` none.
    """

    def __init__(
        self, budget_bytes: int = _DEFAULT_BUDGET, threshold_us: float = _DEFAULT_THRESHOLD_US
    ) -> None:
        self.budget_bytes = budget_bytes
        self.threshold_ns = threshold_us * 1000.0
        self.used_bytes = 0
        self._rows: OrderedDict[int, CachedRow] = OrderedDict()

    def get(self, state: int) -> CachedRow | None:
        row = self._rows.get(state)
        if row is not None:
            self._rows.move_to_end(state)
        return row

    def offer(self, state: int, row: np.ndarray, write_ns: float) -> None:
        """Keep a copy of ``row`` if writing it was slow and it fits the budget."""
        if write_ns < self.threshold_ns or row.nbytes > self.budget_bytes or state in self._rows:
            return
        self._rows[state] = CachedRow(row.copy())
        self.used_bytes += row.nbytes
        while self.used_bytes > self.budget_bytes:
            _, old = self._rows.popitem(last=False)
            self.used_bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._rows)


def mask_cache(compiled: Any, budget_bytes: int | None, threshold_us: float | None) -> MaskCache:
    """The shared mask cache of a compiled index or grammar (anything with `extras`; the
    first matcher's options create it)."""
    cache = compiled.extras.get("masks")
    if cache is None:
        cache = compiled.extras["masks"] = MaskCache(
            _DEFAULT_BUDGET if budget_bytes is None else budget_bytes,
            _DEFAULT_THRESHOLD_US if threshold_us is None else threshold_us,
        )
    return cache


class RegexMatcher(BaseMatcher):
    """One request's position in a regex automaton over a token vocabulary.

    ``tokens`` are the text tokens consumed so far (stop tokens are not text: consuming one
    sets ``stopped``). ``max_rollback`` is outlines-core's cheap rollback depth; deeper
    rollbacks replay from the start. ``mask_cache_bytes``/``mask_cache_threshold_us`` configure
    the index's shared :class:`MaskCache` (they take effect for the first matcher on an index).
    """

    def __init__(
        self,
        compiled: CompiledIndex,
        *,
        max_rollback: int = 32,
        mask_cache_bytes: int | None = None,
        mask_cache_threshold_us: float | None = None,
    ) -> None:
        self.compiled = compiled
        self.vocab: TokenVocabulary = compiled.vocab
        self._words = self.vocab.mask_words
        self._stop_set = frozenset(self.vocab.stop_ids)
        self._stop_bits, self._extra_stop_bits, self._stop_row = _stop_masks(compiled)
        self._masks = mask_cache(compiled, mask_cache_bytes, mask_cache_threshold_us)
        self._guide = Guide(compiled.index, max_rollback=max_rollback)
        self._guide_prefix = compiled.prefix_tokens
        for tid in self._guide_prefix:
            self._guide.advance(tid, return_tokens=False)
        self._state = compiled.start_state
        self._states: list[int] = []
        self._tokens: list[int] = []
        self.stopped = False

    # --- queries -----------------------------------------------------------------------------

    @property
    def state(self) -> int:
        """The automaton state after the consumed text tokens."""
        return self._state

    @property
    def tokens(self) -> list[int]:
        """Text tokens consumed so far (a copy)."""
        return list(self._tokens)

    @property
    def num_consumed(self) -> int:
        """Tokens consumed, the stop token included: the most :meth:`rollback` can undo."""
        return len(self._tokens) + int(self.stopped)

    def state_before(self, i: int) -> int:
        """The state before text token ``i`` (``i == len(tokens)``: the current state)."""
        return self._state if i == len(self._tokens) else self._states[i]

    def text_bytes(self) -> bytes:
        """The bytes of the consumed text tokens."""
        return self.vocab.decode(self._tokens)

    def is_accepting(self) -> bool:
        """True iff the text so far fully matches the regex (a stop token may come next)."""
        if not self._tokens and self.compiled.accepts_empty:
            return True
        return self.compiled.is_final(self._state)

    def is_finished(self) -> bool:
        """True iff a stop token was consumed, or the text matches and nothing may follow."""
        if self.stopped:
            return True
        return self.is_accepting() and not self.compiled.can_continue(self._state)

    def is_allowed(self, token_id: int) -> bool:
        """True iff :meth:`advance` would accept ``token_id``."""
        if self.stopped:
            return False
        if token_id in self._stop_set:
            return self.is_accepting()
        return self.compiled.next_state(self._state, token_id) is not None

    # --- mask --------------------------------------------------------------------------------

    def fill_bitmask(self, out: torch.Tensor | np.ndarray) -> None:
        """Write the allowed-token bitmask into ``out``.

        ``out``: a CPU int32 torch tensor or numpy array, contiguous, with at least
        ``vocab.mask_words`` elements (a ``[W]`` or ``[1, W]`` row); the first W words are set.
        After a stop token only stop ids are allowed.
        """
        row = BitmaskRow(out, self._words)
        if self.stopped:
            row.copy_from(self._stop_row)
            return
        state = self._state
        cached = self._masks.get(state)
        if cached is not None:
            row.copy_from(cached)
            if not self._tokens and self.compiled.accepts_empty:
                self._allow_stops(row)
            return
        start = time.perf_counter_ns()
        self._guide.write_mask_into(row.ptr, self._words, 4)
        if self._extra_stop_bits and self.compiled.is_final(state):
            words = row.numpy()
            for word, bits in self._extra_stop_bits:
                words[word] |= bits
        elapsed = time.perf_counter_ns() - start
        if elapsed >= self._masks.threshold_ns:
            self._masks.offer(state, row.numpy(), elapsed)
        if not self._tokens and self.compiled.accepts_empty:
            self._allow_stops(row)

    def _allow_stops(self, row: BitmaskRow) -> None:
        """OR the stop ids into the row (the empty text matches; the state is not final)."""
        words = row.numpy()
        for word, bits in self._stop_bits:
            words[word] |= bits

    # --- moves -------------------------------------------------------------------------------

    def advance(self, token_id: int) -> None:
        """Consume one token; ValueError if the mask would not have allowed it."""
        if self.stopped:
            raise ValueError("the matcher already consumed a stop token")
        if token_id in self._stop_set:
            if not self.is_accepting():
                raise ValueError(
                    f"stop token {token_id} before the text matches regex {self.compiled.regex!r}"
                )
            self.stopped = True
            return
        nxt = self.compiled.next_state(self._state, token_id)
        if nxt is None:
            raise ValueError(
                f"token {token_id} ({self._describe(token_id)}) is not allowed here by regex "
                f"{self.compiled.regex!r}"
            )
        self._guide.advance(token_id, return_tokens=False)
        self._states.append(self._state)
        self._tokens.append(token_id)
        self._state = nxt

    def advance_many(self, token_ids: Iterable[int]) -> None:
        """:meth:`advance` each token in order."""
        for tid in token_ids:
            self.advance(tid)

    def rollback(self, n: int) -> None:
        """Undo the last ``n`` consumed tokens (a consumed stop token counts as the last)."""
        if n < 0 or n > self.num_consumed:
            raise ValueError(f"cannot roll back {n} of {self.num_consumed} consumed tokens")
        if n and self.stopped:
            self.stopped = False
            n -= 1
        if n == 0:
            return
        if n <= self._guide.get_allowed_rollback():
            self._guide.rollback_state(n)
        else:
            self._replay(self._tokens[:-n])
        self._state = self._states[-n]
        del self._states[-n:]
        del self._tokens[-n:]

    def reset(self) -> None:
        """Back to the start state with nothing consumed."""
        self._replay([])
        self._state = self.compiled.start_state
        self._states.clear()
        self._tokens.clear()
        self.stopped = False

    def _replay(self, token_ids: list[int]) -> None:
        self._guide.reset()
        for tid in (*self._guide_prefix, *token_ids):
            self._guide.advance(tid, return_tokens=False)

    def _describe(self, token_id: int) -> str:
        if 0 <= token_id < self.vocab.width and self.vocab.token_bytes[token_id] is not None:
            return repr(self.vocab.token_bytes[token_id])
        return "not a text token"


def _stop_masks(compiled: CompiledIndex) -> tuple[list, list, CachedRow]:
    """(bits of all stop ids, bits of the stop ids outlines-core does not know, stop-only row),
    shared by the matchers of an index."""
    hit = compiled.extras.get("stop_masks")
    if hit is None:
        vocab = compiled.vocab
        every = _word_bits(vocab.stop_ids)
        extra = _word_bits(s for s in vocab.stop_ids if s != vocab.eos_id)
        row = np.zeros(vocab.mask_words, dtype=np.int32)
        for word, bits in every:
            row[word] = bits
        hit = compiled.extras["stop_masks"] = (every, extra, CachedRow(row))
    return hit


def _word_bits(token_ids: Iterable[int]) -> list[tuple[int, np.int32]]:
    """(word, bits) pairs setting ``token_ids`` in a bitmask row."""
    words: dict[int, int] = {}
    for t in token_ids:
        words[t // 32] = words.get(t // 32, 0) | (1 << (t % 32))
    return [(w, np.array(b, dtype=np.uint32).view(np.int32)) for w, b in sorted(words.items())]


class BitmaskRow:
    """The first ``words`` int32 elements of a caller's CPU buffer (torch tensor or numpy)."""

    __slots__ = ("out", "ptr", "words", "is_torch")

    def __init__(self, out: Any, words: int) -> None:
        self.out, self.words = out, words
        if isinstance(out, torch.Tensor):
            if out.dtype != torch.int32 or out.is_cuda or not out.is_contiguous():
                raise ValueError("bitmask buffer must be a contiguous CPU int32 tensor")
            size, self.ptr, self.is_torch = out.numel(), out.data_ptr(), True
        elif isinstance(out, np.ndarray):
            if out.dtype != np.int32 or not out.flags.c_contiguous:
                raise ValueError("bitmask buffer must be a C-contiguous int32 array")
            size, self.ptr, self.is_torch = out.size, out.ctypes.data, False
        else:
            raise TypeError(f"bitmask buffer must be a torch tensor or numpy array: {type(out)}")
        if size < words:
            raise ValueError(f"bitmask buffer has {size} words, needs {words}")

    def numpy(self) -> np.ndarray:
        """A numpy view of the row's words."""
        flat = (self.out.numpy() if self.is_torch else self.out).reshape(-1)
        return flat if flat.size == self.words else flat[: self.words]

    def copy_from(self, words: CachedRow) -> None:
        """Overwrite the row with ``words`` (one memmove: the row is checked to hold them)."""
        if words.array.size != self.words:
            raise ValueError(f"a cached row of {words.array.size} words for a row of {self.words}")
        ctypes.memmove(self.ptr, words.ptr, words.array.nbytes)


# --- measurement --------------------------------------------------------------------------------


def synthetic_token_bytes(vocab_size: int, seed: int = 0) -> dict[int, bytes]:
    """A made-up vocabulary: the 256 single bytes, then random 2-10 byte ASCII words."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;\"{}[]-_\n"
    seen = {bytes([b]) for b in range(256)}
    out = {b: bytes([b]) for b in range(256)}
    while len(out) < vocab_size:
        tok = bytes(rng.choice(alphabet) for _ in range(rng.randint(2, 10)))
        if tok not in seen:
            seen.add(tok)
            out[len(out)] = tok
    return out


def measure_mask_overhead(
    vocab_size: int,
    regex: str = r'\{"name":"[^"\n]{1,48}","age":[0-9]{1,3}\}',
    *,
    fills: int = 2000,
    seed: int = 0,
    vocabulary: TokenVocabulary | None = None,
    mask_cache_threshold_us: float | None = None,
) -> dict[str, float]:
    """Time :meth:`RegexMatcher.fill_bitmask` on a random constrained walk.

    Uses ``vocabulary`` or a synthetic one of ``vocab_size`` tokens (+1 stop id); the matcher
    restarts whenever it finishes. Returns p50/p99/mean microseconds per fill into a CPU int32
    torch row, plus the index build time and state count seen.
    """
    vocab = vocabulary or vocabulary_from_token_bytes(
        synthetic_token_bytes(vocab_size, seed), vocab_size + 1, [vocab_size]
    )
    compiled = build_index(regex, vocab)
    matcher = RegexMatcher(compiled, mask_cache_threshold_us=mask_cache_threshold_us)
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    rng = np.random.default_rng(seed)
    times: list[float] = []
    states: set[int] = set()
    for _ in range(fills):
        states.add(matcher.state)
        start = time.perf_counter_ns()
        matcher.fill_bitmask(row)
        times.append((time.perf_counter_ns() - start) / 1000.0)
        allowed = np.flatnonzero(np.unpackbits(row.numpy().view(np.uint8), bitorder="little"))
        matcher.advance(int(rng.choice(allowed)))
        if matcher.is_finished():
            matcher.reset()
    times.sort()
    return {
        "vocab_size": float(vocab.width),
        "p50_us": statistics.median(times),
        "p99_us": times[min(len(times) - 1, int(0.99 * len(times)))],
        "mean_us": statistics.fmean(times),
        "build_seconds": compiled.build_seconds,
        "states_seen": float(len(states)),
    }
