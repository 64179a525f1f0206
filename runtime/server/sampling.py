"""OpenAI request fields -> the engine's SamplingParams and prompts, with the server's limits.

Every refusal here is a 400 naming the field; whatever the engine itself refuses
(`InvalidRequest`) becomes a 400 too, through the app's error handlers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.server.config import ServerConfig
from sglc.runtime.server.errors import bad_request
from sglc.runtime.server.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    SamplingFields,
)

ANY_JSON_SCHEMA = "{}"  # response_format json_object: any JSON value


@dataclass(frozen=True)
class Limits:
    """The server's per-request limits, with the engine's context length filled in."""

    max_n: int
    max_prompts: int
    max_tokens: int
    max_logprobs: int

    @classmethod
    def of(cls, config: ServerConfig, max_context_len: int) -> Limits:
        max_tokens = min(config.max_tokens or max_context_len, max_context_len)
        return cls(config.max_n, config.max_prompts, max_tokens, config.max_logprobs)


def completion_params(req: CompletionRequest, limits: Limits) -> SamplingParams:
    if req.best_of is not None and req.best_of != req.n:
        raise bad_request("best_of is only supported equal to n", "best_of")
    if req.suffix:
        raise bad_request("suffix is not supported", "suffix")
    max_tokens = 16 if req.max_tokens is None else req.max_tokens
    return _params(req, max_tokens, req.logprobs, limits)


def chat_params(req: ChatCompletionRequest, limits: Limits) -> SamplingParams:
    if req.tools:
        raise bad_request("tools are not supported by this server", "tools")
    if req.top_logprobs is not None and not req.logprobs:
        raise bad_request("top_logprobs needs logprobs: true", "top_logprobs")
    given = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = limits.max_tokens if given is None else given
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    return _params(req, max_tokens, logprobs, limits, max_tokens_param=param)


def _params(req: SamplingFields, max_tokens: int, logprobs: int | None, limits: Limits,
            max_tokens_param: str = "max_tokens") -> SamplingParams:
    if req.n > limits.max_n:
        raise bad_request(f"n must be <= {limits.max_n} on this server", "n")
    if max_tokens > limits.max_tokens:
        raise bad_request(
            f"{max_tokens_param} must be <= {limits.max_tokens} on this server", max_tokens_param
        )
    if logprobs is not None and logprobs > limits.max_logprobs:
        name = "top_logprobs" if isinstance(req, ChatCompletionRequest) else "logprobs"
        raise bad_request(f"{name} must be <= {limits.max_logprobs} on this server", name)
    if req.logit_bias:
        raise bad_request("logit_bias is not supported by this server", "logit_bias")
    regex, json_schema, choices, grammar = _constraint(req)
    try:
        return SamplingParams(
            max_new_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            top_k=None if req.top_k in (None, -1, 0) else req.top_k,
            min_p=req.min_p or 0.0,
            repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
            frequency_penalty=req.frequency_penalty or 0.0,
            presence_penalty=req.presence_penalty or 0.0,
            seed=req.seed,
            stop=tuple(req.stop or ()),
            stop_token_ids=tuple(req.stop_token_ids or ()),
            ignore_eos=req.ignore_eos,
            n=req.n,
            logprobs=logprobs,
            skip_special_tokens=req.skip_special_tokens,
            regex=regex,
            json_schema=json_schema,
            choices=choices,
            grammar=grammar,
            lora=req.lora,
            client=req.user,
            attention_sparsity=req.attention_sparsity,
        )
    except InvalidRequest as exc:
        raise bad_request(str(exc)) from None


def _constraint(
    req: SamplingFields,
) -> tuple[str | None, str | None, tuple[str, ...] | None, str | None]:
    """(regex, json_schema, choices, grammar): at most one of `regex`, `choices`,
    `response_format`, `grammar`."""
    fmt = req.response_format
    json_schema = None
    if fmt is not None and fmt.type == "json_object":
        json_schema = ANY_JSON_SCHEMA
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise bad_request("response_format json_schema needs a `json_schema` object",
                              "response_format.json_schema")
        json_schema = json.dumps(fmt.json_schema.schema_)
    given = [name for name, value in (("regex", req.regex), ("choices", req.choices),
                                      ("response_format", json_schema),
                                      ("grammar", req.grammar)) if value is not None]
    if len(given) > 1:
        raise bad_request(f"give at most one of regex, choices, response_format, grammar "
                          f"(got {', '.join(given)})", given[1])
    if req.choices is not None and (not req.choices or not all(req.choices)):
        raise bad_request("choices must be a non-empty list of non-empty strings", "choices")
    choices = tuple(req.choices) if req.choices is not None else None
    return req.regex, json_schema, choices, req.grammar


def completion_prompts(req: CompletionRequest, limits: Limits) -> list[str | list[int]]:
    """The prompts of a completions request, one per choice group."""
    prompt = req.prompt
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        prompts: list[str | list[int]] = [prompt]  # type: ignore[list-item]
    else:
        prompts = list(prompt)  # type: ignore[arg-type]
    if len(prompts) > limits.max_prompts:
        raise bad_request(f"at most {limits.max_prompts} prompts per request", "prompt")
    return prompts


def chat_messages(messages: Sequence[ChatMessage], param: str = "messages") -> list[dict[str, str]]:
    """Chat messages as the engine takes them: text content only, `developer` as `system`."""
    result = []
    for i, m in enumerate(messages):
        if m.role == "tool" or m.tool_calls:
            raise bad_request("tool messages and tool calls are not supported", f"{param}.{i}")
        if isinstance(m.content, list):
            kinds = {p.type for p in m.content} - {"text"}
            if kinds:
                raise bad_request(f"only text content parts are supported, got {sorted(kinds)}",
                                  f"{param}.{i}.content")
            content = "".join(p.text or "" for p in m.content)
        else:
            content = m.content or ""
        result.append({"role": "system" if m.role == "developer" else m.role,
                       "content": content})
    return result
