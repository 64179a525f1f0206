"""`OpenAIWire`: model calls to any OpenAI-compatible server over `POST /v1/completions`.

    gen          prompt as token ids (else the text they spell), the OpenAI sampling fields
                 and the vLLM/SGLang extras (`top_k`, `min_p`, `repetition_penalty`, ...)
                 only where set; the sampled ids come back via `logprobs` +
                 `return_tokens_as_token_ids` where the server has it
    constrained  the constraint's canonical regex in the server's regex field; else, for a
                 JSON schema, `response_format`; else an error naming what is missing
    select       each option's logprobs via `echo` + `logprobs` (one request, every option),
                 else one greedy gen under the options' choice regex
    max_new_tokens=0 (a prefetch) asks for one token, as not every server takes 0, and drops it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sglc.constraints import ConstraintError, regex_for_choices, request_regex
from sglc.runtime.backends.http import JSON, Transport
from sglc.runtime.backends.openai_features import TOKEN_ID_PREFIX, Features, regex_body
from sglc.runtime.backends.options import RemoteError
from sglc.runtime.backends.wire import OnDelta, RemoteScore, finish_reason_of
from sglc.runtime.core import FinishReason, Output, SamplingParams, StreamDelta, TokenLogprob, Usage
from sglc.runtime.executor.client import Tokenizer

PATH = "/v1/completions"


@dataclass
class _Sample:
    """One choice as it arrives (whole, or chunk by chunk)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None

    def add(self, choice: dict[str, Any]) -> tuple[str, list[int]]:
        """Take in one choice (chunk): its new (text, token ids)."""
        text = choice.get("text") or ""
        entries = _logprob_entries(choice.get("logprobs"))
        ids = [e.token_id for e in entries]
        self.text += text
        self.token_ids += ids
        self.logprobs += entries
        reason = finish_reason_of(choice.get("finish_reason"))
        self.finish_reason = reason or self.finish_reason
        return text, ids


class OpenAIWire:
    def __init__(self, transport: Transport, model: str, tokenizer: Tokenizer) -> None:
        self.transport = transport
        self.model = model
        self.tokenizer = tokenizer
        self.features = Features(transport, model,
                                 list(tokenizer.encode("Hello", add_special_tokens=True)))

    # -- gen ----------------------------------------------------------------------------------
    async def generate(self, rid: str, prompt_ids: list[int], params: SamplingParams,
                       on_delta: OnDelta | None) -> list[Output]:
        body = await self._body(prompt_ids, params)
        usage: dict[str, Any] = {}
        samples: dict[int, _Sample] = {}
        if on_delta is None or params.max_new_tokens == 0:
            data = await self.transport.post_json(PATH, body)
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                raise RemoteError(f"{self.transport.base_url}{PATH} answered in an unknown "
                                  f"shape: {data!r:.200}")
            for choice in data["choices"]:
                samples.setdefault(int(choice.get("index", 0)), _Sample()).add(choice)
            usage = data.get("usage") or {}
        else:
            stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
            async for event in self.transport.post_stream(PATH, stream):
                usage = event.get("usage") or usage
                for choice in event.get("choices") or ():
                    index = int(choice.get("index", 0))
                    text, ids = samples.setdefault(index, _Sample()).add(choice)
                    on_delta(StreamDelta(rid, index, text, ids,
                                         finish_reason_of(choice.get("finish_reason"))))
        return [self._output(rid, index, sample, usage, params, len(prompt_ids), len(samples))
                for index, sample in sorted(samples.items())]

    async def _body(self, prompt_ids: list[int], params: SamplingParams) -> dict[str, Any]:
        features = self.features
        prompt: list[int] | str = prompt_ids if await features.token_prompts() else \
            self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        body: dict[str, Any] = {"model": self.model, "prompt": prompt,
                                "max_tokens": max(params.max_new_tokens, 1),
                                "temperature": params.temperature, "top_p": params.top_p,
                                "n": params.n}
        optional = {"stop": list(params.stop), "seed": params.seed,
                    "frequency_penalty": params.frequency_penalty,
                    "presence_penalty": params.presence_penalty, "top_k": params.top_k,
                    "min_p": params.min_p, "stop_token_ids": list(params.stop_token_ids),
                    "ignore_eos": params.ignore_eos,
                    "repetition_penalty": params.repetition_penalty,
                    "skip_special_tokens": params.skip_special_tokens}
        defaults = SamplingParams()
        body.update({k: v for k, v in optional.items()
                     if v != getattr(defaults, k) and v != []})
        if params.logprobs is not None or await features.token_outputs():
            body["logprobs"] = params.logprobs or 0
            if await features.token_outputs():
                body["return_tokens_as_token_ids"] = True
        if params.is_constrained:
            body.update(await self._constraint(params))
        return body

    async def _constraint(self, params: SamplingParams) -> dict[str, Any]:
        if params.grammar is not None:
            raise RemoteError(
                f"{self.transport.base_url} is an OpenAI-compatible server: grammar "
                "constraints (and schemas no regex expresses) need an sglc server (sglc serve)")
        field_name = await self.features.regex_field()
        if field_name is not None:
            try:
                regex = request_regex(params.regex, params.json_schema, params.choices)
            except ConstraintError as exc:
                raise RemoteError(f"invalid constraint: {exc}") from None
            return regex_body(field_name, regex or "")
        if params.json_schema is not None:
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": "output", "schema": json.loads(params.json_schema), "strict": True}}}
        raise RemoteError(
            f"{self.transport.base_url} does not decode under a regex (it took none of the "
            "`regex`, `guided_regex`, `structured_outputs` request fields), so typed and "
            "constrained gens cannot run there; use an sglc, vLLM or SGLang server")

    def _output(self, rid: str, index: int, sample: _Sample, usage: dict[str, Any],
                params: SamplingParams, num_prompt_tokens: int, num_samples: int) -> Output:
        if params.max_new_tokens == 0:  # the one token asked for instead of none
            sample = _Sample(finish_reason=FinishReason.LENGTH)
        details = usage.get("prompt_tokens_details") or {}
        completion = len(sample.token_ids) if sample.token_ids or not sample.text else \
            int(usage.get("completion_tokens") or 0) // max(num_samples, 1)
        return Output(
            rid, index, sample.text, sample.token_ids, sample.finish_reason,
            Usage(int(usage.get("prompt_tokens") or num_prompt_tokens),
                  int(details.get("cached_tokens") or 0), completion),
            sample.logprobs if params.logprobs is not None else None,
            is_valid=_is_valid(params, sample.text),
        )

    # -- select -------------------------------------------------------------------------------
    async def score(self, prompt_ids: list[int],
                    options: Sequence[str | list[int]]) -> list[RemoteScore]:
        continuations = [list(o) if not isinstance(o, str) else
                         list(self.tokenizer.encode(o, add_special_tokens=False))
                         for o in options]
        if await self.features.echo_logprobs():
            return await self._echo_scores(prompt_ids, continuations)
        return await self._choice_scores(prompt_ids, continuations)

    async def _echo_scores(self, prompt_ids: list[int],
                           continuations: list[list[int]]) -> list[RemoteScore]:
        body = {"model": self.model, "prompt": [prompt_ids + c for c in continuations],
                "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 0}
        data = await self.transport.post_json(PATH, body)
        choices = sorted(data.get("choices") or (), key=lambda c: c.get("index", 0))
        if len(choices) != len(continuations):
            raise RemoteError(f"{self.transport.base_url}{PATH} scored {len(choices)} of "
                              f"{len(continuations)} options")
        start = len(prompt_ids)
        scores = []
        for choice, cont in zip(choices, continuations, strict=True):
            values = ((choice.get("logprobs") or {}).get("token_logprobs") or [])
            values = values[start : start + len(cont)]
            if len(values) != len(cont) or any(v is None for v in values):
                raise RemoteError(f"{self.transport.base_url}{PATH} echoed no logprobs for "
                                  "an option's tokens")
            scores.append(RemoteScore(sum(values), len(cont), tuple(values)))
        return scores

    async def _choice_scores(self, prompt_ids: list[int],
                             continuations: list[list[int]]) -> list[RemoteScore]:
        """No echo: let the model write one option, greedily, under their choice regex."""
        if await self.features.regex_field() is None:
            raise RemoteError(f"{self.transport.base_url} can neither score options (echo + "
                              "logprobs) nor decode under a choice of them (a regex field)")
        texts = [self.tokenizer.decode(c, skip_special_tokens=False) for c in continuations]
        longest = max(len(c) for c in continuations)
        params = SamplingParams(max_new_tokens=longest + 4, temperature=0,
                                regex=regex_for_choices(texts))
        (out,) = await self.generate("select", prompt_ids, params, None)
        if out.text not in texts:
            raise RemoteError(f"{self.transport.base_url} wrote {out.text!r}, none of the "
                              "options")
        return [RemoteScore(0.0 if t == out.text else -math.inf, len(c))
                for t, c in zip(texts, continuations, strict=True)]

    async def prepare(self, regexes: Sequence[str]) -> None:
        if regexes:
            await self.features.regex_field()


def _logprob_entries(logprobs: JSON) -> list[TokenLogprob]:
    """The sampled tokens of a choice's `logprobs` (tokens spelled `token_id:N`); [] when the
    tokens are strings (a server without `return_tokens_as_token_ids`)."""
    if not isinstance(logprobs, dict):
        return []
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or [0.0] * len(tokens)
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    entries = []
    for token, value, top in zip(tokens, values, tops, strict=False):
        token_id = _token_id(token)
        if token_id is None:
            return []
        alternatives = tuple((t, float(v)) for t, v in ((_token_id(k), v) for k, v in
                                                         (top or {}).items()) if t is not None)
        entries.append(TokenLogprob(token_id, float(value or 0.0), alternatives))
    return entries


def _token_id(token: object) -> int | None:
    if isinstance(token, str) and token.startswith(TOKEN_ID_PREFIX):
        try:
            return int(token[len(TOKEN_ID_PREFIX):])
        except ValueError:
            return None
    return None


def _is_valid(params: SamplingParams, text: str) -> bool | None:
    """As the engine says it: whether a constrained text is a complete match."""
    if not params.is_constrained or params.grammar is not None:
        return None
    try:
        regex = request_regex(params.regex, params.json_schema, params.choices)
    except ConstraintError:
        return None
    return regex is not None and re.fullmatch(regex, text) is not None
