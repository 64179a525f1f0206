"""A request's outputs as stored bytes (compact JSON), and back as fresh `Output`s.

What is stored is what the request's caller saw of each sample: text, token ids, finish
reason, token counts, logprobs and constraint validity. A hit is rebuilt for the request
that asked: its own request id, prompt position and sample indices, and a `Usage` that
says so (`cached_response=True`, no forward passes, every prompt token cached).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sglc.runtime.core import FinishReason, Output, TokenLogprob, Usage


def encode(outputs: Sequence[Output]) -> bytes:
    """The samples of one request, in index order."""
    samples = [{
        "text": o.text,
        "ids": list(o.token_ids),
        "finish": o.finish_reason.value if o.finish_reason else None,
        "prompt": o.usage.prompt_tokens,
        "forced": o.usage.forced_tokens,
        "logprobs": None if o.logprobs is None else
        [[t.token_id, t.logprob, [list(a) for a in t.top]] for t in o.logprobs],
        "valid": o.is_valid,
    } for o in sorted(outputs, key=lambda o: o.index)]
    return json.dumps(samples, separators=(",", ":"), ensure_ascii=False).encode()


def decode(blob: bytes, rid: str, prompt_index: int) -> list[Output]:
    """The stored samples as the Outputs of request `rid`."""
    outputs = []
    for index, s in enumerate(json.loads(blob)):
        logprobs = None if s["logprobs"] is None else [
            TokenLogprob(tid, lp, tuple((a, b) for a, b in top)) for tid, lp, top in s["logprobs"]]
        usage = Usage(prompt_tokens=s["prompt"], cached_tokens=s["prompt"],
                      completion_tokens=len(s["ids"]), forward_passes=0,
                      forced_tokens=s["forced"], cached_response=True)
        outputs.append(Output(
            rid=rid, index=index, text=s["text"], token_ids=list(s["ids"]),
            finish_reason=None if s["finish"] is None else FinishReason(s["finish"]),
            usage=usage, logprobs=logprobs, is_valid=s["valid"], prompt_index=prompt_index))
    return outputs
