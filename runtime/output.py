"""Turn sampled tokens into text, decide when a request is finished, emit deltas."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sglc.runtime.core import FinishReason, Output, StreamDelta, TokenLogprob, Usage
from sglc.runtime.detokenize import IncrementalDetokenizer, Stops
from sglc.runtime.req import Req, ReqTimes

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# How many prompt tokens the detokenizer sees as context (SentencePiece leading spaces).
_PROMPT_CONTEXT = 4


class OutputProcessor:
    """The only writer of `req.out`: each request's text, detokenizer and stop checker."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, max_context_len: int) -> None:
        self.tokenizer = tokenizer
        self.max_context_len = max_context_len

    def start(self, req: Req) -> None:
        params = req.params
        req.out.detokenizer = self._detokenizer(req)
        if params.stop or req.stop_patterns:
            req.out.stops = Stops(params.stop, req.stop_patterns, params.healed_prefix,
                                  params.min_tokens)

    def _detokenizer(self, req: Req) -> IncrementalDetokenizer | None:
        if self.tokenizer is None:
            return None
        return IncrementalDetokenizer(
            self.tokenizer, req.params.skip_special_tokens, req.prompt_ids[-_PROMPT_CONTEXT:]
        )

    def append_token(self, req: Req, token: int, logprob: TokenLogprob | None) -> None:
        """Record one sampled token and set `req.finish_reason` if it ends the request."""
        params = req.params
        req.output_ids.append(token)
        if req.times.first_token is None:
            req.times.first_token = time.perf_counter()
        if logprob is not None:
            if req.out.logprobs is None:
                req.out.logprobs = []
            req.out.logprobs.append(logprob)
        is_eos = not params.ignore_eos and token in req.eos_token_ids
        if is_eos or token in params.stop_token_ids:
            req.finish_reason = FinishReason.STOP
            return  # the stop token's text is not part of the output
        self._push_text(req, [token])
        self._check_length(req)

    def room(self, req: Req, num_output: int) -> int:
        """How many more tokens may follow the first `num_output` output tokens
        (max_new_tokens and the context length)."""
        return min(req.params.max_new_tokens - num_output,
                   self.max_context_len - len(req.prompt_ids) - num_output)

    def _check_length(self, req: Req) -> None:
        if req.finish_reason is None and self.room(req, len(req.output_ids)) <= 0:
            req.finish_reason = FinishReason.LENGTH

    def rewrite_tail(self, req: Req, num_drop: int, new_tokens: list[int]) -> None:
        """Replace the last `num_drop` output tokens by `new_tokens` (jump-forward), extend
        or redo the text, and set `req.finish_reason` if the request is now at its length
        limit. The new tokens get logprob 0 (the constraint left no choice)."""
        out = req.out
        keep = len(req.output_ids) - num_drop
        del req.output_ids[keep:]
        req.output_ids += new_tokens
        if req.params.logprobs is not None:  # also before the first sampled token
            out.logprobs = (out.logprobs or [])[:keep]
            out.logprobs += [TokenLogprob(t, 0.0) for t in new_tokens]
        # NOTE: delta() holds back the tokens a jump may drop, so these stay as they are
        out.num_sent_tokens = min(out.num_sent_tokens, keep)
        out.num_sent_logprobs = min(out.num_sent_logprobs, keep)
        if num_drop:  # a fresh detokenizer, fed the whole output again
            out.detokenizer = self._detokenizer(req)
            out.text = ""
            if out.stops is not None:
                out.stops.reset()
            self._push_text(req, req.output_ids)
        else:
            self._push_text(req, new_tokens)
        self._check_length(req)

    def _push_text(self, req: Req, tokens: list[int]) -> None:
        out = req.out
        if out.detokenizer is None:
            return
        start = len(out.text)
        out.text += out.detokenizer.push(tokens)
        if out.stops is not None and len(out.text) > start:
            result = out.stops.feed(out.text, start, len(req.output_ids))
            if result.is_stopped:
                out.text = result.text
                req.finish_reason = FinishReason.STOP
                out.is_text_cut = True

    @staticmethod
    def record_scores(req: Req, logprobs: list[float]) -> None:
        """Append the logprobs of scored tokens (`Req.score_from`), in token order."""
        req.out.scored_logprobs += logprobs

    def finish_text(self, req: Req) -> None:
        """Flush held-back bytes once the request is finished by length or abort."""
        out = req.out
        if out.detokenizer is not None and req.finish_reason is not FinishReason.STOP:
            out.text += out.detokenizer.flush()

    def delta(self, req: Req) -> StreamDelta | None:
        """What is new since the last delta; streamed text never holds a partial stop string."""
        out = req.out
        end = len(out.text)
        if not req.is_finished and out.stops is not None:
            end = out.stops.safe_len(out.text)
        text = out.text[out.num_sent_chars : end]
        token_end = len(req.output_ids)
        if not req.is_finished and req.constraint is not None:  # a jump may replace these
            token_end = max(out.num_sent_tokens, token_end - req.constraint.num_unstable_tokens)
        tokens = req.output_ids[out.num_sent_tokens : token_end]
        logprobs = (out.logprobs or [])[out.num_sent_logprobs : token_end]
        if not text and not tokens and not req.is_finished:
            return None
        out.num_sent_chars = max(end, out.num_sent_chars)
        out.num_sent_tokens = max(token_end, out.num_sent_tokens)
        out.num_sent_logprobs += len(logprobs)
        return StreamDelta(
            req.rid, req.index, text, tokens, req.finish_reason,
            logprobs if out.logprobs is not None else None, req.error, req.prompt_index,
        )

    @staticmethod
    def output(req: Req) -> Output:
        queue_s, prefill_s, decode_s = stage_seconds(req.times, time.perf_counter())
        return Output(
            rid=req.rid,
            index=req.index,
            text=req.out.text,
            token_ids=list(req.output_ids),
            finish_reason=req.finish_reason,
            usage=Usage(
                len(req.prompt_ids), req.num_cached_prompt_tokens, len(req.output_ids),
                req.num_forward_passes,
                0 if req.constraint is None else req.constraint.num_forced_tokens,
                queue_s=queue_s, prefill_s=prefill_s, decode_s=decode_s,
            ),
            logprobs=req.out.logprobs,
            error=req.error,
            is_valid=None if req.constraint is None else (
                req.constraint.is_valid and not req.out.is_text_cut
            ),
            prompt_index=req.prompt_index,
            forced_positions=() if req.constraint is None else
            tuple(req.constraint.forced_positions),
        )


def stage_seconds(times: ReqTimes, now: float) -> tuple[float | None, ...]:
    """(queue, prefill, decode) seconds of a request ending `now`; None for a stage it did
    not reach."""

    def gap(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else round(max(end - start, 0.0), 6)

    first_token = times.first_token
    return (gap(times.arrived, times.scheduled), gap(times.scheduled, first_token),
            gap(first_token, now))
