"""The contract of a request's constraint matcher, whichever automaton it walks.

Two kinds exist: :class:`~sglc.runtime.constrained.matcher.RegexMatcher` (our compressed FSM
over an outlines-core index: regular constraints) and
:class:`~sglc.runtime.constrained.grammar_matcher.GrammarMatcher` (an llguidance matcher:
context-free grammars). The engine's batched bitmask (`masks.MaskBuffer`), compact logit
columns, jump-forward, retraction and rollback only use what this base class promises, so
they do not care which one a request has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np
import torch

__all__ = ["BaseMatcher"]


class BaseMatcher(ABC):
    """One request's position in its constraint, token by token.

    Callers may rely on:

    * ``tokens`` are the text tokens consumed so far; a stop token (one of the vocabulary's
      stop ids) is not text: consuming one sets ``stopped``, and it counts in
      ``num_consumed`` (a :meth:`rollback` of 1 undoes it first).
    * ``state`` identifies the matcher's position: two calls of :meth:`fill_bitmask` with no
      move in between write the same mask, so a mask may be reused for the same
      (matcher, state) pair.
    * :meth:`fill_bitmask` writes the layout of :mod:`sglc.kernels.bitmask` (token t allowed
      iff bit ``t % 32`` of int32 word ``t // 32``), ``vocab.mask_words`` words; stop ids are
      allowed only where :meth:`is_accepting`; after a stop token, only stop ids.
    * :meth:`advance` raises ValueError for a token the mask would not allow, and then leaves
      the matcher as it was.
    * :meth:`rollback` undoes the last n consumed tokens exactly (masks, acceptance and
      forced strings are as they were before those tokens).
    """

    stopped: bool

    @property
    @abstractmethod
    def state(self) -> int:
        """A value that changes whenever the allowed tokens may change."""

    @property
    @abstractmethod
    def tokens(self) -> list[int]:
        """Text tokens consumed so far (a copy)."""

    @property
    def num_consumed(self) -> int:
        """Tokens consumed, the stop token included: the most :meth:`rollback` can undo."""
        return len(self.tokens) + int(self.stopped)

    @abstractmethod
    def is_accepting(self) -> bool:
        """True iff the text so far is complete (a stop token may come next)."""

    @abstractmethod
    def is_finished(self) -> bool:
        """True iff a stop token was consumed, or the text is complete and nothing may
        follow."""

    @abstractmethod
    def is_allowed(self, token_id: int) -> bool:
        """True iff :meth:`advance` would accept ``token_id``."""

    @abstractmethod
    def fill_bitmask(self, out: torch.Tensor | np.ndarray) -> None:
        """Write the allowed-token bitmask into ``out`` (a contiguous CPU int32 row of at
        least ``vocab.mask_words`` words)."""

    @abstractmethod
    def advance(self, token_id: int) -> None:
        """Consume one token; ValueError (the matcher unchanged) if it is not allowed."""

    def advance_many(self, token_ids: Iterable[int]) -> None:
        """:meth:`advance` each token in order."""
        for tid in token_ids:
            self.advance(tid)

    @abstractmethod
    def rollback(self, n: int) -> None:
        """Undo the last ``n`` consumed tokens (a consumed stop token counts as the last)."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the start with nothing consumed."""
