"""OpenAI response bodies and stream chunks, built from engine Outputs and StreamDeltas.

Choice `index` is `prompt_index * n + sample_index` (the OpenAI and vLLM convention).
Usage counts each prompt once (with its first sample's cached tokens) and every sample's
completion tokens. Token strings in logprobs are each token decoded alone (a byte-level
token that is part of a character shows as U+FFFD), or `token_id:<id>` on request.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sglc.runtime.core import FinishReason, Output, TokenLogprob

_MIN_LOGPROB = -9999.0  # JSON has no -inf


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now_s() -> int:
    return int(time.time())


def finish_reason(reason: FinishReason | None) -> str | None:
    return None if reason is None else reason.value


def usage(outputs: Sequence[Output]) -> dict[str, Any]:
    first: dict[str, Output] = {}
    for out in outputs:
        if out.rid not in first or out.index < first[out.rid].index:
            first[out.rid] = out
    prompt = sum(o.usage.prompt_tokens for o in first.values())
    cached = sum(o.usage.cached_tokens for o in first.values())
    completion = sum(o.usage.completion_tokens for o in outputs)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def _logprob(value: float | None) -> float | None:
    if value is None:
        return None
    return _MIN_LOGPROB if math.isnan(value) else max(value, _MIN_LOGPROB)


class TokenText:
    """Token id -> the string that logprobs show for it (cached; event loop only)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, token_id: int, as_id: bool = False) -> str:
        if as_id:
            return f"token_id:{token_id}"
        text = self._cache.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            if len(self._cache) < 1 << 18:
                self._cache[token_id] = text
        return text


class CompletionLogprobs:
    """`choices[i].logprobs` of /v1/completions: tokens, token_logprobs, top_logprobs,
    text_offset. Stateful across stream chunks (text offsets continue)."""

    def __init__(self, text: TokenText, as_ids: bool, offset: int = 0) -> None:
        self.text = text
        self.as_ids = as_ids
        self.offset = offset

    def build(self, entries: Sequence[TokenLogprob]) -> dict[str, Any]:
        rows = [(e.token_id, e.logprob, ((e.token_id, e.logprob), *e.top)) for e in entries]
        return self._rows(rows)

    def build_prompt(self, token_ids: Sequence[int], logprobs: Sequence[float]) -> dict[str, Any]:
        """Echoed prompt tokens: the first has no logprob, the others their own only."""
        values: list[float | None] = [None, *logprobs]
        rows = [(t, lp, () if lp is None else ((t, lp),))
                for t, lp in zip(token_ids, values, strict=True)]
        return self._rows(rows)

    def _rows(self, rows: Sequence[tuple[int, float | None, Sequence[tuple[int, float]]]]
              ) -> dict[str, Any]:
        tokens, offsets = [], []
        for token_id, _, _ in rows:
            token = self.text(token_id, self.as_ids)
            tokens.append(token)
            offsets.append(self.offset)
            self.offset += len(token)
        return {
            "tokens": tokens,
            "token_logprobs": [_logprob(lp) for _, lp, _ in rows],
            "top_logprobs": [
                None if lp is None else {self.text(t, self.as_ids): _logprob(v) for t, v in top}
                for _, lp, top in rows
            ],
            "text_offset": offsets,
        }


def chat_logprobs(entries: Sequence[TokenLogprob], text: TokenText,
                  as_ids: bool) -> dict[str, Any]:
    """`choices[i].logprobs` of /v1/chat/completions."""

    def item(token_id: int, logprob: float) -> dict[str, Any]:
        token = text(token_id, as_ids)
        return {"token": token, "logprob": _logprob(logprob),
                "bytes": list(token.encode("utf-8", errors="replace"))}

    content = [{**item(e.token_id, e.logprob), "top_logprobs": [item(t, v) for t, v in e.top]}
               for e in entries]
    return {"content": content, "refusal": None}
