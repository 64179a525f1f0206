"""Constrained decoding inside the engine loop, behind four calls the engine core makes.

    add(reqs)              a constrained request group waits while its token automaton
                           builds in a thread pool (the engine keeps serving the others)
    take_built(wait)       built groups come back, each request with a matcher and the
                           jump over a forced start; a failed build comes back finished
    plan(batch)            which logits the forward pass computes (LogitsPlan)
    mask(logits, reqs, plan)          -inf where a request's automaton forbids the token
    after_token(req, token) -> Rewrite | None     advance the automaton; stop, or jump
                                                   forward over a forced string

A `Rewrite` asks the core to drop the request's last tokens and append forced ones (it
applies that through `Scheduler.truncate` and `OutputProcessor.rewrite_tail`; the forced
tokens are computed in the next batch, with the other running requests' tokens), or to stop
the request. A request's constraint (a canonical regex, or an llguidance grammar: see
`sglc.constraints.grammar.request_constraint`) is made on the caller's thread, so a bad
constraint fails before anything is queued.

Regular constraints walk our regex automata (`RegexMatcher`); grammars and the JSON schemas
no regex expresses walk llguidance (`GrammarMatcher`). Both build off the loop and meet the
`BaseMatcher` contract, so everything below treats them alike, except where a forced string
comes from: the regex's byte automaton (`JumpForwarder`) or llguidance's forced tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from sglc.constraints import ConstraintError
from sglc.runtime.constrained.base import BaseMatcher
from sglc.runtime.constrained.grammar_cache import CompiledGrammar, GrammarCache
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher
from sglc.runtime.constrained.index_cache import CompiledIndex, IndexCache
from sglc.runtime.constrained.jump_forward import JumpForward, JumpForwarder, make_encoder
from sglc.runtime.constrained.masks import MaskBuffer, allowed_union, column_bits, mask_columns
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.vocabulary import TokenVocabulary, build_vocabulary
from sglc.runtime.core import FinishReason
from sglc.runtime.req import Req, ReqConstraint, ScheduledBatch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Compute only the allowed logit columns when they are at most this share of the vocabulary.
COLUMN_LOGITS_MAX_FRACTION = 0.5
_BUILD_WAIT_S = 0.05  # how long an idle engine waits for a build before looking again


@dataclass(frozen=True, eq=False)
class LogitsPlan:
    """Which logits a forward pass computes. `columns` (ascending token ids): only those
    vocabulary columns, every other one -inf; None: all of them. `compact`: the logits hold
    just `columns` (``[rows, len(columns)]``), and every row samples greedily."""

    columns: np.ndarray | None = None
    compact: bool = False


FULL_LOGITS = LogitsPlan()


@dataclass(frozen=True)
class Rewrite:
    """What a request's constraint asks of the engine after a token: replace the last
    `num_drop` output tokens by `tokens` (a jump-forward over a forced string; their KV is
    computed in the next batch), then stop the request if `is_done` (the text matches and
    nothing may follow)."""

    num_drop: int = 0
    tokens: tuple[int, ...] = ()
    is_done: bool = False

    @property
    def is_jump(self) -> bool:
        return bool(self.num_drop or self.tokens)


STOP = Rewrite(is_done=True)


@dataclass
class ConstraintCounters:
    num_forced_tokens: int = 0  # appended by jump-forward without a decode step
    num_column_logits_batches: int = 0  # logits computed only for the columns masks allow
    # of those, all-greedy batches sampled from the compact [rows, columns] logits
    num_compact_logits_batches: int = 0


class ConstraintStage:
    """Everything about constrained decoding the engine loop calls; see the module docstring.

    `tokenizer` and the model's `logit_width` and `stop_ids` define the token vocabulary
    (built on first use). `room(req, num_output)` says how many tokens may follow the first
    `num_output` output tokens (a jump appends no more); `apply_bitmask` is the kernel op
    that masks full-width logits rows. `jump_forward=False` turns jump-forward off (for
    comparison).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None,
        logit_width: int,
        stop_ids: Sequence[int],
        *,
        room: Callable[[Req, int], int],
        apply_bitmask: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None],
        jump_forward: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.logit_width = logit_width
        self.stop_ids = tuple(stop_ids)
        self.room = room
        self.apply_bitmask = apply_bitmask
        self.counters = ConstraintCounters()
        self._vocab: TokenVocabulary | None = None
        self._cache: IndexCache | None = None
        self._cache_dir = cache_dir
        self._masks: MaskBuffer | None = None
        self._encode = make_encoder(tokenizer) if tokenizer is not None else None
        self._grammars: GrammarCache | None = None
        self.jumper = JumpForwarder(self._encode,
                                    enabled=jump_forward and self._encode is not None)
        # request groups waiting for their automaton, built in the background
        self._building: list[tuple[list[Req], Future[CompiledIndex | CompiledGrammar]]] = []

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

    @property
    def grammars(self) -> GrammarCache:
        """Compiled llguidance grammars over the same vocabulary."""
        if self._grammars is None:
            self._grammars = GrammarCache(self.vocab, self._encode)
        return self._grammars

    @property
    def masks(self) -> MaskBuffer:
        if self._masks is None:
            self._masks = MaskBuffer(self.vocab.mask_words)
        return self._masks

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self._grammars is not None:
            self._grammars.close()

    # -- automaton builds ----------------------------------------------------------------------
    def prebuild(self, regexes: Sequence[str]) -> None:
        """Start building these regexes' automata in the background, so that the requests
        that use them need not wait. Bad regexes are skipped: they fail with their request."""
        if self.tokenizer is None:
            return
        for regex in regexes:
            try:
                self.cache.get_async(regex)
            except Exception:  # noqa: BLE001 - reported by the request that uses it
                log.debug("prebuild of %r failed", regex, exc_info=True)

    def add(self, reqs: list[Req]) -> None:
        """Hold a request group (one prompt's samples, one constraint) until its automaton
        is built; `take_built` hands it back."""
        constraint = reqs[0].constraint
        if constraint.grammar is not None:
            future = self.grammars.get_async(constraint.grammar)
        else:
            future = self.cache.get_async(constraint.regex)
        self._building.append((reqs, future))

    @property
    def is_idle(self) -> bool:
        return not self._building

    def building_reqs(self) -> list[Req]:
        """The requests waiting for their automaton."""
        return [req for reqs, _ in self._building for req in reqs]

    def discard_finished(self) -> None:
        """Forget the groups whose requests all finished (aborted while their automaton
        builds; the build itself may finish later)."""
        self._building = [b for b in self._building if not all(r.is_finished for r in b[0])]

    def take_built(self, wait_for_one: bool) -> list[tuple[Req, Rewrite | None]]:
        """The requests whose automaton is built, each with a matcher now and the jump over
        a forced start (``{"name":"``) to apply before its prefill, if any. A build that
        failed, or a constraint whose shortest match cannot fit in max_new_tokens, finishes
        its requests (abort, with the error). `wait_for_one`: first wait a little for a build
        (the engine has nothing else to do)."""
        if not self._building:
            return []
        if wait_for_one:
            wait([f for _, f in self._building], timeout=_BUILD_WAIT_S,
                 return_when=FIRST_COMPLETED)
        built: list[tuple[Req, Rewrite | None]] = []
        still = []
        for reqs, future in self._building:
            if not future.done():
                still.append((reqs, future))
                continue
            reqs = [r for r in reqs if not r.is_finished]  # aborted while building
            try:
                for req in reqs:
                    self._attach(req.constraint, future.result(), req.params.max_new_tokens)
            except Exception as exc:  # the request fails alone, before any decoding
                for req in reqs:
                    req.finish_reason, req.error = FinishReason.ABORT, f"constraint: {exc}"
                built += [(req, None) for req in reqs]
                continue
            built += [(req, self._jump(req)) for req in reqs]
        self._building = still
        return built

    def _attach(self, constraint: ReqConstraint, compiled: CompiledIndex | CompiledGrammar,
                max_new_tokens: int) -> None:
        """Give a request its matcher; ConstraintError if no match fits in its token budget
        (known for regexes; a grammar's shortest text is not computed)."""
        if isinstance(compiled, CompiledGrammar):
            constraint.matcher = GrammarMatcher(compiled)
            constraint.num_unstable_tokens = 0  # its jumps never replace generated tokens
            return
        needed = min_tokens_lower_bound(compiled, self.jumper)
        if needed > max_new_tokens:
            raise ConstraintError(
                f"the constraint needs at least {needed} tokens but max_new_tokens is "
                f"{max_new_tokens}", hint="raise max_new_tokens (max_tokens in SGL)",
            )
        constraint.matcher = RegexMatcher(compiled)
        constraint.num_unstable_tokens = self.jumper.window if self.jumper.enabled else 0

    # -- per step --------------------------------------------------------------------------------
    def plan(self, batch: ScheduledBatch) -> LogitsPlan:
        """The logits to compute for `batch`. Where every request samples under a built,
        unfinished constraint (no scoring, no logprobs), only the columns their masks allow
        (when they are narrow: digits, a choice, a tokenizer narrower than the logits): every
        other column would be masked to -inf, so the sampled tokens are the same. Compact
        when every request is moreover greedy without penalties (which index full-width rows
        by token id)."""
        reqs = batch.reqs
        if not all(_samples_constrained(r) for r in reqs):
            return FULL_LOGITS
        columns = allowed_union(self.masks.fill([r.constraint.matcher for r in reqs]),
                                self.vocab.width)
        if len(columns) > COLUMN_LOGITS_MAX_FRACTION * self.vocab.width:
            return FULL_LOGITS
        compact = all(r.params.is_greedy and not r.params.has_penalties for r in reqs)
        self.counters.num_column_logits_batches += 1
        self.counters.num_compact_logits_batches += compact
        return LogitsPlan(columns, compact)

    def mask(self, logits: torch.Tensor, reqs: Sequence[Req], plan: LogitsPlan) -> None:
        """-inf into ``logits[i]`` where reqs[i]'s automaton forbids the token (rows of
        requests without a built automaton are left alone); logits are as `plan` made them.

        Full-width rows get whole masks, applied by the kernel op. With `plan.columns`, when
        every row is constrained, only those columns are masked (a gather of the mask bits
        at those columns instead of unpacking and filling whole rows)."""
        rows = [i for i, r in enumerate(reqs)
                if r.constraint is not None and r.constraint.matcher is not None]
        if not rows:
            return
        mask = self.masks.fill([reqs[i].constraint.matcher for i in rows])
        if plan.columns is not None and len(rows) == logits.shape[0]:
            index = torch.from_numpy(plan.columns).long()
            allowed = column_bits(mask, index)
            if plan.compact:  # logits[i, j] is column plan.columns[j]
                logits.masked_fill_(~allowed.to(logits.device), float("-inf"))
            else:
                mask_columns(logits, allowed, index)
            return
        mask = mask.to(logits.device, non_blocking=True)
        self.apply_bitmask(logits, mask, torch.tensor(rows, device=logits.device))

    def after_token(self, req: Req, token: int) -> Rewrite | None:
        """Feed a token the request sampled to its automaton: STOP once the text matches and
        nothing may follow (also when this was the last allowed token), else the jump over
        the string the automaton now forces, if any."""
        matcher = req.constraint.matcher
        if req.is_finished and (token in req.eos_token_ids or token in req.params.stop_token_ids):
            return None  # a stop token (allowed by the mask only where the text matches)
        matcher.advance(token)
        if matcher.is_finished():
            return STOP
        return None if req.is_finished else self._jump(req)

    def _jump(self, req: Req) -> Rewrite | None:
        """The jump over the string the request's automaton forces now (after dropping the
        last tokens where the tokenizer spells the boundary differently), already walked by
        the automaton; None when nothing is forced."""
        constraint = req.constraint
        matcher = constraint.matcher
        if matcher.is_finished():
            return None
        step = self._propose(matcher)
        if step is None:
            return None
        num_kept = len(req.output_ids) - step.num_tokens_to_drop
        new = step.new_token_ids[: max(self.room(req, num_kept), 0)]
        matcher.rollback(step.num_tokens_to_drop)
        matcher.advance_many(new)
        constraint.record_jump(num_kept, len(new))
        self.counters.num_forced_tokens += len(new)
        return Rewrite(step.num_tokens_to_drop, tuple(new), matcher.is_finished())

    def _propose(self, matcher: BaseMatcher) -> JumpForward | None:
        """The jump over the forced string: llguidance's forced tokens for a grammar, the
        byte automaton's retokenized string for a regex."""
        if not isinstance(matcher, GrammarMatcher):
            return self.jumper.propose(matcher)
        if not self.jumper.enabled:
            return None
        forced = matcher.forced_tokens()
        return JumpForward(0, forced) if forced else None


def _samples_constrained(req: Req) -> bool:
    """Whether the request samples under a built, unfinished automaton, and nothing else
    (scores, logprobs) reads its full-width logits."""
    c = req.constraint
    return (c is not None and c.matcher is not None and not c.matcher.is_finished()
            and req.score_from is None and req.params.logprobs is None)


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
