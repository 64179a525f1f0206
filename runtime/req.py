"""A request inside the engine (`Req`, grouped by the part that owns each field) and the
batch the scheduler makes of requests (`ScheduledBatch`).

    Req ── rid, index, prompt_ids, params, output_ids, state, finish_reason, error, counters,
     │     times: ReqTimes (when it was queued, first scheduled, first produced a token)
     ├─ kv: KVState                 scheduler (KVManager): req_to_token row, KV token counts
     ├─ out: OutputState            OutputProcessor: text, detokenizer, stops, streaming
     └─ constraint: ReqConstraint   ConstraintStage: regex, automaton, jump-forward record

Lengths are `num_*` counts whose name says the unit: tokens, characters (`num_sent_chars`) or
logprob entries (`num_sent_logprobs`). The engine's public types (SamplingParams, Output,
StreamDelta) are in `sglc.runtime.core`, which imports nothing of the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sglc.constraints.search import SearchPattern
from sglc.runtime.constrained.base import BaseMatcher
from sglc.runtime.core import FinishReason, ForwardMode, SamplingParams, TokenLogprob
from sglc.runtime.detokenize import IncrementalDetokenizer, Stops
from sglc.runtime.mem.base import BaseCacheNode


@dataclass
class ReqTimes:
    """When a request reached each stage (``time.perf_counter()``; None: not yet): the
    queue, prefill and decode times of its Usage are the gaps between them."""

    arrived: float | None = None  # joined the scheduler's queue
    scheduled: float | None = None  # first in a forward pass
    first_token: float | None = None  # its first output token was appended


class ReqState(enum.Enum):
    WAITING = "waiting"  # queued for (re)prefill
    RUNNING = "running"  # holds KV, in the decode set (or mid chunked prefill)
    FINISHED = "finished"


@dataclass
class KVState:
    """Where a request's KV lives; written by the scheduler's KVManager only.

    NOTE: slot ownership. Slots of positions [0, num_cache_owned_tokens) belong to the
    prefix cache (locked through `prefix_node`); [num_cache_owned_tokens,
    num_allocated_tokens) are the request's own. KV is computed for the first
    `num_computed_tokens` of `Req.fill_ids`; while a forward pass is pending,
    num_allocated_tokens may run ahead of it.

    Sliding slots (a pool with sliding layers): positions [0, sliding_owned_from) read the
    prefix cache's, the rest are the request's own; it gives back those of
    [sliding_owned_from, num_sliding_released) as they leave the window (0 in its row).

    A KV eviction policy (`kv_policy`) may drop `num_evicted_tokens` of them: the kept ones
    are compacted to the front of the row, so token position p >= the last dropped one lives
    in column p - num_evicted_tokens. Once any are dropped, the request owns every slot of
    its row, holds no cache lock and never gives its KV to the prefix cache.
    """

    row: int | None = None  # the request's row of req_to_token, None while it holds none
    num_computed_tokens: int = 0
    num_allocated_tokens: int = 0
    num_cache_owned_tokens: int = 0
    prefix_node: BaseCacheNode | None = None  # the prefix-cache node locked for the request
    num_evicted_tokens: int = 0  # dropped by the KV eviction policy
    sliding_owned_from: int = 0
    num_sliding_released: int = 0

    @property
    def num_cols(self) -> int:
        """Columns of the request's row holding computed KV."""
        return self.num_computed_tokens - self.num_evicted_tokens


@dataclass
class OutputState:
    """What the OutputProcessor keeps for a request: its text and what was streamed of it."""

    detokenizer: IncrementalDetokenizer | None = None  # None without a tokenizer
    stops: Stops | None = None  # None without stop strings or stop regexes
    text: str = ""
    is_text_cut: bool = False  # a stop string ended the text (a constraint may be unmet)
    # one per output token; None unless params.logprobs asks for them
    logprobs: list[TokenLogprob] | None = None
    # scoring: one per scored token of fill_ids[score_from:]
    scored_logprobs: list[float] = field(default_factory=list)
    num_sent_chars: int = 0  # of `text`, in deltas so far
    num_sent_tokens: int = 0  # of output_ids
    num_sent_logprobs: int = 0  # of `logprobs`


@dataclass
class ReqConstraint:
    """A request's constrained-decoding state: its canonical `regex` (the regex path) or its
    llguidance `grammar` (the grammar path); `matcher` is None until that is built."""

    regex: str | None = None
    grammar: str | None = None
    matcher: BaseMatcher | None = None
    # output positions holding tokens jump-forward appended (ascending; a later jump may
    # drop some of them again, with the other tokens it backs off)
    forced_positions: list[int] = field(default_factory=list)
    # the newest tokens a jump may still replace: streamed only once the request finishes
    num_unstable_tokens: int = 0

    @property
    def num_forced_tokens(self) -> int:
        """Output tokens appended by jump-forward rather than sampled."""
        return len(self.forced_positions)

    def record_jump(self, num_kept: int, num_new: int) -> None:
        """The output was cut to `num_kept` tokens and `num_new` forced tokens appended."""
        forced = self.forced_positions
        while forced and forced[-1] >= num_kept:
            forced.pop()
        forced.extend(range(num_kept, num_kept + num_new))

    @property
    def is_valid(self) -> bool:
        """Whether the text so far is a complete match of the constraint."""
        return self.matcher is not None and (self.matcher.stopped or self.matcher.is_accepting())


@dataclass(eq=False)
class Req:
    """One sequence being generated. Owned by the engine's loop thread once submitted.

    `fill_ids` (prompt + output so far) are the tokens whose KV must exist before the next
    decode step; `kv.num_computed_tokens` of them have it.
    """

    rid: str
    index: int  # sample index for n > 1
    prompt_ids: list[int]
    params: SamplingParams
    eos_token_ids: frozenset[int]
    output_ids: list[int] = field(default_factory=list)
    state: ReqState = ReqState.WAITING
    finish_reason: FinishReason | None = None
    error: str | None = None
    kv: KVState = field(default_factory=KVState)
    out: OutputState = field(default_factory=OutputState)
    constraint: ReqConstraint | None = None  # None: unconstrained
    # scoring: record the logprobs of fill_ids[score_from:] (None: a plain generation)
    score_from: int | None = None
    prompt_index: int = 0  # the position of the request's prompt in the call that sent it
    stop_patterns: tuple[SearchPattern, ...] = ()  # params.stop_regex, compiled
    # counters (Usage)
    num_cached_prompt_tokens: int = 0  # served from the prefix cache at first admission
    num_retractions: int = 0
    num_forward_passes: int = 0  # batches this request was in
    times: ReqTimes = field(default_factory=ReqTimes)

    @property
    def fill_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids

    def fill_slice(self, start: int, end: int) -> list[int]:
        """``fill_ids[start:end]`` without building the whole prompt + output list."""
        num_prompt = len(self.prompt_ids)
        if start >= num_prompt:
            return self.output_ids[start - num_prompt : end - num_prompt]
        head = self.prompt_ids[start:end]
        return head + self.output_ids[: end - num_prompt] if end > num_prompt else head

    @property
    def num_tokens(self) -> int:
        """Prompt and output tokens: ``len(fill_ids)``."""
        return len(self.prompt_ids) + len(self.output_ids)

    @property
    def num_uncomputed_tokens(self) -> int:
        """Tokens still to compute (prefill, or forced tokens) before the request can decode."""
        return self.num_tokens - self.kv.num_computed_tokens

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class ScheduledBatch:
    """What the scheduler chose for one forward pass.

    EXTEND: request i computes fill_ids[extend_starts[i] : extend_starts[i] + extend_lens[i]].
    DECODE: each request computes its last token (extend_lens all 1).
    """

    mode: ForwardMode
    reqs: list[Req]
    extend_starts: list[int]
    extend_lens: list[int]

    @property
    def num_tokens(self) -> int:
        return sum(self.extend_lens)

    def completes_fill(self, i: int) -> bool:
        """Whether request i has KV for all its tokens after this pass (so it can sample)."""
        return self.extend_starts[i] + self.extend_lens[i] == self.reqs[i].num_tokens
