"""Constrained decoding inside the engine loop: index builds, masks, jump-forward.

The engine thread owns one `ConstraintStage`. A constrained request carries its canonical
regex (`request_regex`, computed on the caller's thread so a bad constraint fails before
anything is queued); when it reaches the loop, `start` asks the index cache for its token
automaton, built in a thread pool while the engine keeps serving the others. Once built, each
sample gets a `RegexMatcher`; every step the stage writes their bitmasks into one pinned CPU
buffer and applies them to the logits rows in one op; the engine advances each matcher with
its sampled token. Where the automaton forces a string, `jump` returns the tokens to append
without decode steps (the engine computes them in its next batch, with the other running
requests' tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import torch

from sglc.constraints.canonical import regex_for_choices
from sglc.constraints.regex import ConstraintError, check_regex
from sglc.constraints.schema import regex_for_schema
from sglc.runtime.constrained.index_cache import CompiledIndex, IndexCache
from sglc.runtime.constrained.jump_forward import JumpForward, JumpForwarder, make_encoder
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.vocabulary import TokenVocabulary, build_vocabulary
from sglc.runtime.req import ReqConstraint


def request_regex(
    regex: str | None, json_schema: str | None, choices: Sequence[str] | None
) -> str | None:
    """The canonical regex of a request's constraint (None: unconstrained).

    Raises `ConstraintError` (with the position in the regex or the JSON pointer in the
    schema) for anything outside the supported dialect and schema subset."""
    if regex is not None:
        check_regex(regex)
        return regex
    if json_schema is not None:
        return regex_for_schema(json_schema)
    if choices is not None:
        return regex_for_choices(list(choices))
    return None


class ConstraintStage:
    """Everything about constrained decoding the engine loop calls; see the module docstring.

    `tokenizer` and the model's `logit_width` and `stop_ids` define the token vocabulary
    (built on first use). `jump_forward=False` turns jump-forward off (for comparison).
    """

    def __init__(
        self,
        tokenizer: Any,
        logit_width: int,
        stop_ids: Sequence[int],
        *,
        jump_forward: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.logit_width = logit_width
        self.stop_ids = tuple(stop_ids)
        self._vocab: TokenVocabulary | None = None
        self._cache: IndexCache | None = None
        self._cache_dir = cache_dir
        encode = make_encoder(tokenizer) if tokenizer is not None else None
        self.jumper = JumpForwarder(encode, enabled=jump_forward and encode is not None)
        self._buffer: torch.Tensor | None = None
        # (id(matcher), state) -> (matcher, its row in the buffer) after the last `_fill`
        self._last_rows: dict[tuple[int, int], tuple[RegexMatcher, int]] = {}

    @property
    def vocab(self) -> TokenVocabulary:
        if self._vocab is None:
            if self.tokenizer is None:
                raise ConstraintError("constrained decoding needs the model's tokenizer")
            self._vocab = build_vocabulary(self.tokenizer, self.logit_width, self.stop_ids)
        return self._vocab

    @property
    def cache(self) -> IndexCache:
        if self._cache is None:
            self._cache = IndexCache(self.vocab, cache_dir=self._cache_dir)
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    # -- index builds -------------------------------------------------------------------------
    def start(self, regex: str) -> Future[CompiledIndex]:
        """The index for `regex`, from the cache or built in the background."""
        return self.cache.get_async(regex)

    def attach(self, constraint: ReqConstraint, compiled: CompiledIndex, max_new_tokens: int):
        """Give a request its matcher; ConstraintError if no match fits in its token budget."""
        needed = min_tokens_lower_bound(compiled, self.jumper)
        if needed > max_new_tokens:
            raise ConstraintError(
                f"the constraint needs at least {needed} tokens but max_new_tokens is "
                f"{max_new_tokens}", hint="raise max_new_tokens (max_tokens in SGL)",
            )
        constraint.matcher = RegexMatcher(compiled)
        constraint.num_unstable_tokens = self.jumper.window if self.jumper.enabled else 0

    # -- per step ------------------------------------------------------------------------------
    def apply_masks(
        self, logits: torch.Tensor, constraints: Sequence[ReqConstraint | None],
        apply_bitmask: Callable[..., None], columns: np.ndarray | None = None,
    ) -> None:
        """Mask logits row i by constraints[i]'s allowed tokens (rows with None untouched).

        `columns`: when every row is constrained and the logits are -inf outside these
        vocabulary columns (a column-restricted lm_head), only they are masked: a gather of
        the mask bits at those columns instead of unpacking and filling whole rows (on CPU
        the full-width fill alone took ~5 ms for 64 x 32k logits)."""
        rows = [i for i, c in enumerate(constraints) if c is not None and c.matcher is not None]
        if not rows:
            return
        mask = self._fill([constraints[i] for i in rows])
        if columns is not None and len(rows) == logits.shape[0]:
            index = torch.from_numpy(columns).long()
            _mask_columns(logits, _column_bits(mask, index), index)
            return
        mask = mask.to(logits.device, non_blocking=True)
        index = torch.tensor(rows, device=logits.device)
        apply_bitmask(logits, mask, index)

    def mask_compact(
        self, logits: torch.Tensor, constraints: Sequence[ReqConstraint], columns: np.ndarray
    ) -> None:
        """Mask compact logits in place: `logits[i, j]` is vocabulary column `columns[j]` for
        constraints[i] (every one with a matcher)."""
        allowed = _column_bits(self._fill(constraints), torch.from_numpy(columns).long())
        logits.masked_fill_(~allowed.to(logits.device), float("-inf"))

    def allowed_union(self, constraints: Sequence[ReqConstraint]) -> np.ndarray:
        """Sorted token ids that any of `constraints` allows next (their masks OR-ed)."""
        union = np.bitwise_or.reduce(self._fill(constraints).numpy(), axis=0)
        bits = np.unpackbits(union.view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.vocab.width])

    def _fill(self, constraints: Sequence[ReqConstraint]) -> torch.Tensor:
        """Row k = the bitmask of constraints[k]'s matcher, in the pinned buffer.

        A step fills masks twice when it computes `allowed_union` before the forward pass and
        masks the sampled rows after it (an in-order subset of the same requests). A mask is
        a function of (matcher, state), so a row the last fill computed for that pair is
        moved down instead of recomputed: its source row j >= k is not written before row k.
        """
        buffer = self._mask_buffer(len(constraints), self.vocab.mask_words)
        last, self._last_rows = self._last_rows, {}
        for k, constraint in enumerate(constraints):
            matcher = constraint.matcher
            key = (id(matcher), matcher.state)
            hit = last.get(key)
            if hit is not None and hit[0] is matcher and hit[1] >= k:
                if hit[1] > k:
                    buffer[k] = self._buffer[hit[1]]
            else:
                matcher.fill_bitmask(buffer[k])
            self._last_rows[key] = (matcher, k)
        return buffer

    def _mask_buffer(self, num_rows: int, words: int) -> torch.Tensor:
        if self._buffer is None or self._buffer.shape[0] < num_rows:
            self._last_rows = {}  # a new buffer holds none of the last fill's rows
            pin = torch.cuda.is_available()
            self._buffer = torch.empty((max(num_rows, 64), words), dtype=torch.int32,
                                       pin_memory=pin)
        return self._buffer[:num_rows]

    def jump(self, constraint: ReqConstraint) -> JumpForward | None:
        """The forced tokens to append now (after dropping some for a clean boundary), or None."""
        matcher = constraint.matcher
        if matcher is None or matcher.is_finished():
            return None
        return self.jumper.propose(matcher)


def min_tokens_lower_bound(compiled: CompiledIndex, jumper: JumpForwarder) -> int:
    """A lower bound on the tokens any match needs: its shortest text in bytes over the
    longest token. 0 when the empty text matches."""
    if compiled.accepts_empty:
        return 0
    shortest = shortest_match_bytes(jumper.paths(compiled).byte_index)
    return math.ceil(shortest / max(compiled.vocab.max_token_len, 1))


def shortest_match_bytes(byte_index: CompiledIndex) -> int:
    """Length of the shortest text the byte-level automaton accepts (breadth-first)."""
    memo = byte_index.extras.get("shortest_bytes")
    if memo is not None:
        return memo
    index = byte_index.index
    frontier, seen, depth = [byte_index.start_state], {byte_index.start_state}, 0
    while frontier and not any(index.is_final_state(s) for s in frontier):
        nxt = []
        for state in frontier:
            for byte in index.get_allowed_tokens(state) or ():
                if byte >= 256:  # the byte vocabulary's stop id
                    continue
                target = index.get_next_state(state, byte)
                if target is not None and target not in seen:
                    seen.add(target)
                    nxt.append(target)
        frontier, depth = nxt, depth + 1
    byte_index.extras["shortest_bytes"] = depth
    return depth


def _column_bits(mask: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``allowed[b, j]`` = bit ``columns[j]`` of the packed bitmask row ``mask[b]``."""
    words = mask[:, columns >> 5]  # the bitmask layout of sglc.kernels.bitmask
    return ((words >> (columns & 31).to(torch.int32)) & 1).bool()


def _mask_columns(logits: torch.Tensor, allowed: torch.Tensor, columns: torch.Tensor) -> None:
    """-inf into ``logits[b, columns[j]]`` where ``allowed[b, j]`` is False."""
    columns = columns.to(logits.device)
    logits[:, columns] = logits[:, columns].masked_fill_(
        ~allowed.to(logits.device, non_blocking=True), float("-inf"))
