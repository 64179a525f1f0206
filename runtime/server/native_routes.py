"""The native routes: `POST /generate` (SGLang's shape, the engine's SamplingParams),
`POST /score` (Engine.score: log-likelihoods of continuations) and `GET /tokenizer` (the
served tokenizer's files, so a remote client, `sglc run --endpoint`, tokenizes as the engine
does: `{"model", "files": {name: base64}}`, what `save_pretrained` writes).

/generate takes one of `text` (a string or a list), `input_ids` (a list or a list of
lists) or `messages`, and `sampling_params` with SamplingParams' own field names
(`max_new_tokens`, `regex`, `json_schema`, ...). It answers one object for one prompt and
one sample, else a list (prompt by prompt, sample by sample):

    {"text", "output_ids", "meta_info": {"id", "index", "prompt_tokens", "cached_tokens",
     "completion_tokens", "finish_reason": {"type": "stop"|"length"|"abort"} | null,
     "is_valid", "output_token_logprobs": [[logprob, id], ...],
     "output_top_logprobs": [[[logprob, id], ...], ...]}}

With `"stream": true` it sends server-sent events: `{"index", "text", "output_ids",
"finish_reason"}` per delta (new text only), then each sample's full object as above with
`"done": true`, then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from sglc.runtime.core import InvalidRequest, Output, SamplingParams
from sglc.runtime.server.engine_api import Prompt
from sglc.runtime.server.errors import APIError, bad_request
from sglc.runtime.server.jobs import Job, stream_error
from sglc.runtime.server.protocol import GenerateRequest, ScoreRequest
from sglc.runtime.server.responses import finish_reason
from sglc.runtime.server.sampling import Limits, chat_messages
from sglc.runtime.server.state import ServerState


def generate_params(raw: dict[str, Any], limits: Limits) -> SamplingParams:
    try:
        params = SamplingParams.coerce(raw)
    except InvalidRequest as exc:
        raise bad_request(str(exc), "sampling_params") from None
    if params.n > limits.max_n:
        raise bad_request(f"n must be <= {limits.max_n} on this server", "sampling_params.n")
    if params.max_new_tokens > limits.max_tokens:
        raise bad_request(f"max_new_tokens must be <= {limits.max_tokens} on this server",
                          "sampling_params.max_new_tokens")
    if params.logprobs is not None and params.logprobs > limits.max_logprobs:
        raise bad_request(f"logprobs must be <= {limits.max_logprobs} on this server",
                          "sampling_params.logprobs")
    return params


def generate_prompts(body: GenerateRequest, limits: Limits) -> tuple[list[Prompt], bool]:
    """(prompts, is_batch)."""
    given = [n for n in ("text", "input_ids", "messages") if getattr(body, n) is not None]
    if len(given) != 1:
        raise bad_request("give exactly one of text, input_ids, messages", (given or ["text"])[-1])
    prompts: list[Prompt]
    if body.messages is not None:
        prompts, is_batch = [chat_messages(body.messages)], False
    elif isinstance(body.text, str):
        prompts, is_batch = [body.text], False
    elif body.text is not None:
        prompts, is_batch = list(body.text), True
    elif body.input_ids and isinstance(body.input_ids[0], int):
        prompts, is_batch = [list(body.input_ids)], False  # type: ignore[arg-type]
    else:
        prompts, is_batch = [list(p) for p in body.input_ids or ()], True  # type: ignore[union-attr]
    if not prompts or any(not p for p in prompts):
        raise bad_request("prompts must be non-empty", given[0])
    if len(prompts) > limits.max_prompts:
        raise bad_request(f"at most {limits.max_prompts} prompts per request", given[0])
    return prompts, is_batch


def output_item(out: Output, position: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "id": out.rid, "index": position, "prompt_tokens": out.usage.prompt_tokens,
        "cached_tokens": out.usage.cached_tokens,
        "completion_tokens": out.usage.completion_tokens,
        "finish_reason": None if out.finish_reason is None else {"type": finish_reason(
            out.finish_reason)},
        "is_valid": out.is_valid,
    }
    if out.logprobs is not None:
        meta["output_token_logprobs"] = [[e.logprob, e.token_id] for e in out.logprobs]
        meta["output_top_logprobs"] = [[[lp, t] for t, lp in e.top] for e in out.logprobs]
    if out.error:
        meta["error"] = out.error
    return {"text": out.text, "output_ids": list(out.token_ids), "meta_info": meta}


def tokenizer_files(tokenizer: Any) -> dict[str, str]:
    """What `tokenizer.save_pretrained` writes, by file name, base64-encoded."""
    with tempfile.TemporaryDirectory(prefix="sglc-tokenizer-") as folder:
        tokenizer.save_pretrained(folder)
        return {path.name: base64.b64encode(path.read_bytes()).decode("ascii")
                for path in sorted(Path(folder).iterdir()) if path.is_file()}


def native_router(state: ServerState) -> APIRouter:
    router = APIRouter()
    saved_tokenizer: list[dict[str, str]] = []  # computed on first request

    @router.post("/generate")
    async def generate(body: GenerateRequest, request: Request) -> Any:
        arrived = time.perf_counter()
        state.check_model(body.model)
        params = generate_params(body.sampling_params, state.limits)
        prompts, is_batch = generate_prompts(body, state.limits)
        n = params.n
        if body.stream:
            async def events(job: Job) -> AsyncIterator[dict[str, Any]]:
                async for event in job:
                    position = job.prompt_index[event.rid] * n + event.index
                    if isinstance(event, Output):
                        yield {**output_item(event, position), "done": True}
                    elif event.error:
                        yield stream_error(event.error)
                        return
                    elif event.text or event.token_ids or event.finish_reason:
                        yield {"index": position, "text": event.text,
                               "output_ids": list(event.token_ids),
                               "finish_reason": finish_reason(event.finish_reason)}

            return await state.jobs.stream(prompts, [params] * len(prompts), arrived, events)
        outputs = await state.jobs.complete(request, prompts, [params] * len(prompts), arrived)
        items = [output_item(out, i) for i, out in enumerate(outputs)]
        return items if is_batch or n > 1 else items[0]

    @router.post("/score")
    async def score(body: ScoreRequest) -> Any:
        state.check_model(body.model)
        if len(body.continuations) > state.limits.max_prompts:
            raise bad_request(f"at most {state.limits.max_prompts} continuations",
                              "continuations")
        with state.jobs.admission.hold(len(body.continuations)):
            results = await state.wait_for_engine(state.engine.score, body.prompt,
                                                  body.continuations)
        return {"model": state.config.model_name, "scores": [
            {"logprob": r.logprob, "num_tokens": r.num_tokens, "normalized": r.normalized,
             "token_logprobs": r.token_logprobs} for r in results]}

    @router.get("/tokenizer")
    async def tokenizer() -> Any:
        if state.engine.tokenizer is None:
            raise APIError(404, "the served model has no tokenizer (token-id prompts only)",
                           code="no_tokenizer")
        if not saved_tokenizer:
            saved_tokenizer.append(await asyncio.to_thread(tokenizer_files,
                                                           state.engine.tokenizer))
        return {"model": state.config.model_name, "files": saved_tokenizer[0]}

    return router
