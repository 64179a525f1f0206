"""Turn sampled tokens into text, decide when a request is finished, emit deltas."""

from __future__ import annotations

from typing import Any

from sglc.runtime.core import FinishReason, Output, Req, StreamDelta, TokenLogprob, Usage
from sglc.runtime.detokenize import IncrementalDetokenizer, StopChecker

# How many prompt tokens the detokenizer sees as context (SentencePiece leading spaces).
_PROMPT_CONTEXT = 4


class OutputProcessor:
    """Owns each request's detokenizer and stop checker (in `req.decode_state`)."""

    def __init__(self, tokenizer: Any | None, max_context_len: int) -> None:
        self.tokenizer = tokenizer
        self.max_context_len = max_context_len

    def start(self, req: Req) -> None:
        detok = None
        if self.tokenizer is not None:
            detok = IncrementalDetokenizer(
                self.tokenizer, req.params.skip_special_tokens, req.prompt_ids[-_PROMPT_CONTEXT:]
            )
        req.decode_state = (detok, StopChecker(req.params.stop) if req.params.stop else None)

    def append_token(self, req: Req, token: int, logprob: TokenLogprob | None) -> None:
        """Record one sampled token and set `req.finish_reason` if it ends the request."""
        params = req.params
        req.output_ids.append(token)
        if logprob is not None:
            if req.logprobs is None:
                req.logprobs = []
            req.logprobs.append(logprob)
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
        keep = len(req.output_ids) - num_drop
        del req.output_ids[keep:]
        req.output_ids += new_tokens
        if req.params.logprobs is not None:  # also before the first sampled token
            req.logprobs = (req.logprobs or [])[:keep]
            req.logprobs += [TokenLogprob(t, 0.0) for t in new_tokens]
        # NOTE: delta() holds back the tokens a jump may drop, so these stay as they are
        req.sent_token_len = min(req.sent_token_len, keep)
        req.sent_logprob_len = min(req.sent_logprob_len, keep)
        if num_drop:  # a fresh detokenizer, fed the whole output again
            self.start(req)
            req.text = ""
            self._push_text(req, req.output_ids)
        else:
            self._push_text(req, new_tokens)
        self._check_length(req)

    def _push_text(self, req: Req, tokens: list[int]) -> None:
        detok, stop = req.decode_state
        if detok is None:
            return
        start = len(req.text)
        req.text += detok.push(tokens)
        if stop is not None and len(req.text) > start:
            result = stop.feed(req.text, start)
            if result.is_stopped:
                req.text = result.text
                req.finish_reason = FinishReason.STOP
                req.is_text_cut = True

    def finish_text(self, req: Req) -> None:
        """Flush held-back bytes once the request is finished by length or abort."""
        detok, _ = req.decode_state
        if detok is not None and req.finish_reason is not FinishReason.STOP:
            req.text += detok.flush()

    def delta(self, req: Req) -> StreamDelta | None:
        """What is new since the last delta; streamed text never holds a partial stop string."""
        _, stop = req.decode_state
        end = len(req.text)
        if not req.is_finished and stop is not None:
            end = stop.safe_len(req.text)
        text = req.text[req.sent_text_len : end]
        token_end = len(req.output_ids)
        if not req.is_finished and req.constraint is not None:  # a jump may replace these
            token_end = max(req.sent_token_len, token_end - req.constraint.num_unstable_tokens)
        tokens = req.output_ids[req.sent_token_len : token_end]
        logprobs = (req.logprobs or [])[req.sent_logprob_len : token_end]
        if not text and not tokens and not req.is_finished:
            return None
        req.sent_text_len = max(end, req.sent_text_len)
        req.sent_token_len = max(token_end, req.sent_token_len)
        req.sent_logprob_len += len(logprobs)
        return StreamDelta(
            req.rid, req.index, text, tokens, req.finish_reason,
            logprobs if req.logprobs is not None else None, req.error,
        )

    @staticmethod
    def output(req: Req) -> Output:
        return Output(
            rid=req.rid,
            index=req.index,
            text=req.text,
            token_ids=list(req.output_ids),
            finish_reason=req.finish_reason,
            usage=Usage(
                len(req.prompt_ids), req.cached_len, len(req.output_ids), req.num_forward_passes,
                0 if req.constraint is None else req.constraint.num_forced_tokens,
            ),
            logprobs=req.logprobs,
            error=req.error,
            is_valid=None if req.constraint is None else (
                req.constraint.is_valid and not req.is_text_cut
            ),
        )
