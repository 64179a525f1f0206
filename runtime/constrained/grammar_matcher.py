"""Per-request position in a context-free grammar: an llguidance ``LLMatcher`` behind the
:class:`~sglc.runtime.constrained.base.BaseMatcher` contract.

llguidance writes its mask straight into the caller's row (``unsafe_compute_mask_ptr``; the
vocabulary is padded to the logits width, so the layouts agree; every non-text id is one of
its special tokens, never allowed as text). It knows one EOS id, which it allows where the
text is complete; the other stop ids are OR-ed in there, and a stop token is recorded here
rather than fed to llguidance, so rollback treats it like the regex path does. A token
llguidance would reject is checked first (``validate_tokens``): a rejected token must never
reach ``consume_token``, which would leave the matcher in its error state for good.

Masks are kept by grammar position in the regex path's :class:`MaskCache`, shared by the
grammar's matchers: a position is named by :mod:`~sglc.runtime.constrained.grammar_keys`
(an LALR parse kept in step with llguidance; equal keys mean equal masks), and a position
without a key (a grammar Lark cannot build as LALR(1), a text the keys cannot follow) has its
mask computed by llguidance each time. At a cached position `is_allowed` reads the cached
row instead of asking llguidance. A grammar whose cache hits less than a quarter of its first
256 keyed fills, or less than half of its first 1024, stops caching (`StateKeys.note_fill`).

Where the grammar's tokenizer walks a class of tokens as one token
(`grammar_vocab.TokenClasses`: tokens no terminal tells apart, runs of a character that
pumps), llguidance's mask allows the class's representative and the class's row is OR-ed
in; a member goes to llguidance (`is_allowed`, `advance`, the replay of a rollback) as its
spelling there: its representative, which moves every automaton alike, or for a run the
representative and one token per character left.

Forced strings come from llguidance itself (``compute_ff_tokens``: tokens whose text the
grammar forces, already cut where a longer token could span the boundary), so a grammar
jump never drops tokens already generated.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from sglc.runtime.constrained.base import BaseMatcher
from sglc.runtime.constrained.grammar_cache import CompiledGrammar
from sglc.runtime.constrained.masks import row_allows, row_of
from sglc.runtime.constrained.matcher import BitmaskRow, CachedRow, mask_cache

__all__ = ["GrammarMatcher"]

_versions = itertools.count(1)  # matcher states: unique across matchers and moves


class GrammarMatcher(BaseMatcher):
    """One request's position in a compiled grammar (see the module docstring).
    ``mask_cache_bytes``/``mask_cache_threshold_us`` configure the grammar's shared
    :class:`MaskCache` (they take effect for the first matcher of a compiled grammar)."""

    def __init__(self, compiled: CompiledGrammar, *, mask_cache_bytes: int | None = None,
                 mask_cache_threshold_us: float | None = None) -> None:
        self.compiled = compiled
        self.vocab = compiled.vocab
        self._words = self.vocab.mask_words
        self._stop_set = frozenset(self.vocab.stop_ids)
        self._stop_row, self._extra_stop_bits = _stop_masks(compiled)
        self._llg = compiled.new_matcher()
        self._masks = mask_cache(compiled, mask_cache_bytes, mask_cache_threshold_us)
        self._keys = compiled.keys
        # members of token classes llguidance walks as one token go to it spelled with the
        # tokens it knows (`grammar_vocab.TokenClasses`); masks get the whole class back
        self._classes = compiled.classes
        self._key: int | None = None if self._keys is None else self._keys.start
        self._key_before: list[int | None] = []  # the key before each consumed text token
        self._tokens: list[int] = []
        self._state = next(_versions)
        self.stopped = False

    # --- queries -----------------------------------------------------------------------------

    @property
    def state(self) -> int:
        return self._state

    @property
    def tokens(self) -> list[int]:
        return list(self._tokens)

    def text_bytes(self) -> bytes:
        """The bytes of the consumed text tokens."""
        return self.vocab.decode(self._tokens)

    def is_accepting(self) -> bool:
        return self.stopped or self._llg.is_accepting()

    def is_finished(self) -> bool:
        return self.stopped or (self._llg.is_accepting() and self._llg.is_stopped())

    def is_allowed(self, token_id: int) -> bool:
        if self.stopped:
            return False
        if token_id in self._stop_set:
            return self._llg.is_accepting()
        if not self._is_text_token(token_id):
            return False
        key = self._live_key()
        cached = None if key is None else self._masks.get(key)
        if cached is not None:
            return row_allows(cached.array, token_id)
        spelled = self._llg_ids(token_id)
        return self._llg.validate_tokens(spelled) == len(spelled)

    def forced_tokens(self) -> list[int]:
        """The tokens the grammar forces next (empty when the next token is a choice)."""
        if self.stopped or self._llg.is_stopped():
            return []
        return list(self._llg.compute_ff_tokens())

    # --- mask --------------------------------------------------------------------------------

    def fill_bitmask(self, out: torch.Tensor | np.ndarray) -> None:
        row = BitmaskRow(out, self._words)
        if self.stopped:
            row.copy_from(self._stop_row)
            return
        key = self._live_key()
        if key is not None:
            cached = self._masks.get(key)
            self._keys.note_fill(cached is not None)
            if cached is not None:
                row.copy_from(cached)
                return
        words = row.numpy()
        start = time.perf_counter_ns()
        self._llg.unsafe_compute_mask_ptr(row.ptr, self._words * 4)
        if self._llg.is_error():
            raise RuntimeError(f"grammar matcher failed: {self._llg.get_error()}")
        if self._classes is not None:
            self._classes.expand(words)
        if self._extra_stop_bits and self._llg.is_accepting():  # llguidance set its EOS bit
            for word, bits in self._extra_stop_bits:
                words[word] |= bits
        if key is not None:
            self._masks.offer(key, words, time.perf_counter_ns() - start)

    # --- moves -------------------------------------------------------------------------------

    def advance(self, token_id: int) -> None:
        if self.stopped:
            raise ValueError("the matcher already consumed a stop token")
        if token_id in self._stop_set:
            if not self._llg.is_accepting():
                raise ValueError(f"stop token {token_id} before the text completes the grammar")
            self.stopped = True
            self._state = next(_versions)
            return
        if not self.is_allowed(token_id):
            raise ValueError(f"token {token_id} ({self._describe(token_id)}) is not allowed "
                             "here by the grammar")
        if not self._llg.consume_tokens(self._llg_ids(token_id)):  # pragma: no cover
            raise RuntimeError(f"grammar matcher failed: {self._llg.get_error()}")
        self._key_before.append(self._key)
        if self._keys is not None and self._keys.caching:
            self._key = self._keys.step(self._key, token_id, self.vocab.token_bytes[token_id])
        else:  # no keys, or the grammar's cache does not pay (`StateKeys.note_fill`)
            self._key = None
        self._tokens.append(token_id)
        self._state = next(_versions)

    def rollback(self, n: int) -> None:
        if n < 0 or n > self.num_consumed:
            raise ValueError(f"cannot roll back {n} of {self.num_consumed} consumed tokens")
        if n and self.stopped:
            self.stopped = False
            n -= 1
        if n:
            # replayed on a fresh copy, not `LLMatcher.rollback`: after tokens consumed with
            # no mask computed (the cache answered), llguidance 1.9's rollback can leave a
            # state whose masks are wrong (test_grammar_keys.py replays such a sequence)
            del self._tokens[-n:]
            self._llg = self.compiled.new_matcher()
            replay = [i for t in self._tokens for i in self._llg_ids(t)]
            if replay and not self._llg.consume_tokens(replay):
                raise RuntimeError(  # pragma: no cover - the tokens were accepted before
                    f"grammar rollback failed: {self._llg.get_error()}")
            self._key = self._key_before[-n]
            del self._key_before[-n:]
        self._state = next(_versions)

    def reset(self) -> None:
        self._llg.reset()
        self._tokens.clear()
        self._key = None if self._keys is None else self._keys.start
        self._key_before.clear()
        self.stopped = False
        self._state = next(_versions)

    def _live_key(self) -> int | None:
        """The position's key where the grammar caches masks (None: no key, or the
        grammar's cache switched itself off)."""
        keys = self._keys
        return self._key if keys is not None and keys.caching else None

    def _llg_ids(self, token_id: int) -> tuple[int, ...]:
        """The ids llguidance reads `token_id` as: itself, or for a member of a token class
        its spelling there (`TokenClasses.spell`, shared: no copy per call)."""
        classes = self._classes
        spelled = None if classes is None else classes.spell.get(token_id)
        return (token_id,) if spelled is None else spelled

    def _is_text_token(self, token_id: int) -> bool:
        return 0 <= token_id < self.vocab.width and self.vocab.token_bytes[token_id] is not None

    def _describe(self, token_id: int) -> str:
        if self._is_text_token(token_id):
            return repr(self.vocab.token_bytes[token_id])
        return "not a text token"


def _stop_masks(compiled: CompiledGrammar) -> tuple[CachedRow, list[tuple[int, np.int32]]]:
    """(a row allowing exactly the stop ids, the (word, bits) of the stop ids llguidance does
    not know), shared by the grammar's matchers."""
    hit = compiled.extras.get("stop_masks")
    if hit is None:
        vocab = compiled.vocab
        row = row_of(vocab.stop_ids, vocab.mask_words)
        extra = [t for t in vocab.stop_ids if t != vocab.eos_id]
        words = sorted({t // 32 for t in extra})
        pairs = [(w, np.int32(row[w])) for w in words]
        hit = compiled.extras["stop_masks"] = (CachedRow(row), pairs)
    return hit
