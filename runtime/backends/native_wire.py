"""`NativeWire`: model calls to an `sglc serve` over its native routes.

    gen     POST /generate {"input_ids", "sampling_params": the SamplingParams fields that
            differ from their defaults, "stream"} -> text, output_ids, meta_info (cached
            tokens, finish reason, is_valid): the same request the local engine would get
    select  POST /score {"prompt": ids, "continuations"} -> one log-likelihood per option
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sglc.runtime.backends.http import JSON, Transport
from sglc.runtime.backends.options import RemoteError
from sglc.runtime.backends.wire import OnDelta, RemoteScore, finish_reason_of
from sglc.runtime.core import Output, SamplingParams, StreamDelta, TokenLogprob, Usage


class NativeWire:
    def __init__(self, transport: Transport, model: str) -> None:
        self.transport = transport
        self.model = model

    async def generate(self, rid: str, prompt_ids: list[int], params: SamplingParams,
                       on_delta: OnDelta | None) -> list[Output]:
        body: dict[str, Any] = {"input_ids": prompt_ids, "sampling_params": params_json(params),
                                "model": self.model}
        if on_delta is None:
            data = await self.transport.post_json("/generate", body)
            items = data if isinstance(data, list) else [data]
            return [self._output(rid, item) for item in items]
        outputs = []
        async for event in self.transport.post_stream("/generate", {**body, "stream": True}):
            if event.get("done"):
                outputs.append(self._output(rid, event))
            else:
                on_delta(StreamDelta(rid, int(event.get("index", 0)), event.get("text", ""),
                                     list(event.get("output_ids") or ()),
                                     finish_reason_of(event.get("finish_reason"))))
        return outputs

    async def score(self, prompt_ids: list[int],
                    options: Sequence[str | list[int]]) -> list[RemoteScore]:
        body = {"prompt": prompt_ids, "continuations": list(options), "model": self.model}
        data = await self.transport.post_json("/score", body)
        try:
            return [RemoteScore(float(s["logprob"]), int(s["num_tokens"]),
                                tuple(s.get("token_logprobs") or ())) for s in data["scores"]]
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"{self.transport.base_url}/score answered in an unknown "
                              f"shape: {data!r:.200}") from None

    async def prepare(self, regexes: Sequence[str]) -> None:
        return None  # the server builds a regex's automaton with its first request

    def _output(self, rid: str, item: JSON) -> Output:
        try:
            meta = item["meta_info"]
            logprobs = None
            if meta.get("output_token_logprobs") is not None:
                tops = meta.get("output_top_logprobs") or [[] for _ in meta["output_token_logprobs"]]
                logprobs = [TokenLogprob(int(t), float(lp), tuple((int(u), float(v))
                                                                   for v, u in top))
                            for (lp, t), top in zip(meta["output_token_logprobs"], tops,
                                                    strict=True)]
            return Output(
                rid, int(meta.get("index", 0)), item["text"], [int(t) for t in item["output_ids"]],
                finish_reason_of(meta.get("finish_reason")),
                Usage(int(meta["prompt_tokens"]), int(meta.get("cached_tokens", 0)),
                      int(meta["completion_tokens"])),
                logprobs, meta.get("error"), meta.get("is_valid"),
            )
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"{self.transport.base_url}/generate answered in an unknown "
                              f"shape: {item!r:.200}") from None


def params_json(params: SamplingParams) -> dict[str, Any]:
    """The fields of `params` that differ from their defaults, as JSON values."""
    result: dict[str, Any] = {}
    for f in fields(SamplingParams):
        value = getattr(params, f.name)
        if value != f.default:
            result[f.name] = list(value) if isinstance(value, tuple) else value
    return result
