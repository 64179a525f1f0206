"""The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from sglc.runtime.core import Output, StreamDelta
from sglc.runtime.server.engine_api import Prompt
from sglc.runtime.server.jobs import Job, stream_error
from sglc.runtime.server.protocol import ChatCompletionRequest, CompletionRequest
from sglc.runtime.server.responses import (
    CompletionLogprobs,
    chat_logprobs,
    finish_reason,
    new_id,
    now_s,
    usage,
)
from sglc.runtime.server.sampling import (
    chat_messages,
    chat_params,
    completion_params,
    completion_prompts,
)
from sglc.runtime.server.state import ServerState


@dataclass(frozen=True)
class Echo:
    """A prompt as `echo` shows it; ids and logprobs only when logprobs were asked for."""

    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None


def openai_router(state: ServerState) -> APIRouter:
    router = APIRouter()
    model = state.config.model_name

    def model_card() -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 0, "owned_by": "sglc",
                "max_model_len": state.engine.max_context_len}

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @router.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> dict[str, Any]:
        state.check_model(model_id)
        return model_card()

    @router.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        arrived = time.perf_counter()
        state.check_model(body.model)
        params = completion_params(body, state.limits)
        prompts = completion_prompts(body, state.limits)
        echoes = await _echoes(state, prompts, body.logprobs is not None) if body.echo else None
        cid, created = new_id("cmpl"), now_s()
        head = {"id": cid, "object": "text_completion", "created": created, "model": model}
        as_ids = body.return_tokens_as_token_ids

        def logprob_state(i: int) -> CompletionLogprobs | None:
            return None if body.logprobs is None else CompletionLogprobs(state.token_text, as_ids)

        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)

            async def chunks(job: Job) -> AsyncIterator[dict[str, Any]]:
                lps = [logprob_state(i) for i in range(len(prompts) * body.n)]
                extra = {"usage": None} if include_usage else {}
                for i, echo in enumerate(echoes or ()):
                    for k in range(body.n):
                        lp = lps[i * body.n + k]
                        yield {**head, **extra, "choices": [_completion_choice(
                            i * body.n + k, echo.text, _echo_logprobs(lp, echo), None)]}
                outputs = []
                async for event in job:
                    if isinstance(event, Output):
                        outputs.append(event)
                    elif event.error:
                        yield stream_error(event.error)
                        return
                    elif event.text or event.finish_reason or event.logprobs:
                        index = job.prompt_index[event.rid] * body.n + event.index
                        lp = lps[index]
                        yield {**head, **extra, "choices": [_completion_choice(
                            index, event.text, lp and lp.build(event.logprobs or ()),
                            finish_reason(event.finish_reason))]}
                if include_usage:
                    yield {**head, "choices": [], "usage": usage(outputs)}

            return await state.jobs.stream(prompts, [params] * len(prompts), arrived, chunks)

        outputs = await state.jobs.complete(request, prompts, [params] * len(prompts), arrived)
        choices = []
        for index, out in enumerate(outputs):
            echo = echoes[index // body.n] if echoes else None
            lp = logprob_state(index)
            logprobs = None
            if lp is not None:
                head_lp = _echo_logprobs(lp, echo)
                tail = lp.build(out.logprobs or ())
                logprobs = tail if head_lp is None else {k: head_lp[k] + tail[k] for k in tail}
            text = (echo.text if echo else "") + out.text
            choices.append(_completion_choice(index, text, logprobs,
                                              finish_reason(out.finish_reason)))
        return {**head, "choices": choices, "usage": usage(outputs), "system_fingerprint": None}

    @router.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        arrived = time.perf_counter()
        state.check_model(body.model)
        params = chat_params(body, state.limits)
        prompts = [chat_messages(body.messages)]
        cid, created = new_id("chatcmpl"), now_s()
        as_ids = body.return_tokens_as_token_ids

        def logprobs_of(entries: Sequence[Any] | None) -> dict[str, Any] | None:
            return chat_logprobs(entries or (), state.token_text, as_ids) if body.logprobs else None

        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            head = {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": None}
            if include_usage:
                head["usage"] = None

            def chunk(index: int, delta: dict[str, Any], event: StreamDelta | None
                      ) -> dict[str, Any]:
                return {**head, "choices": [{
                    "index": index, "delta": delta,
                    "logprobs": logprobs_of(event.logprobs) if event else None,
                    "finish_reason": finish_reason(event.finish_reason) if event else None}]}

            async def chunks(job: Job) -> AsyncIterator[dict[str, Any]]:
                for index in range(body.n):
                    yield chunk(index, {"role": "assistant", "content": ""}, None)
                outputs = []
                async for event in job:
                    if isinstance(event, Output):
                        outputs.append(event)
                    elif event.error:
                        yield stream_error(event.error)
                        return
                    elif event.text or event.finish_reason or event.logprobs:
                        delta = {"content": event.text} if event.text else {}
                        yield chunk(event.index, delta, event)
                if include_usage:
                    yield {**head, "choices": [], "usage": usage(outputs)}

            return await state.jobs.stream(prompts, [params], arrived, chunks)

        outputs = await state.jobs.complete(request, prompts, [params], arrived)
        choices = [{
            "index": out.index,
            "message": {"role": "assistant", "content": out.text, "refusal": None},
            "logprobs": logprobs_of(out.logprobs),
            "finish_reason": finish_reason(out.finish_reason),
        } for out in outputs]
        return {"id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": choices, "usage": usage(outputs), "system_fingerprint": None}

    return router


def _completion_choice(index: int, text: str, logprobs: dict[str, Any] | None,
                       reason: str | None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": reason}


def _echo_logprobs(lp: CompletionLogprobs | None, echo: Echo | None) -> dict[str, Any] | None:
    if lp is None or echo is None or echo.token_ids is None:
        return None
    return lp.build_prompt(echo.token_ids, echo.logprobs or [])


async def _echoes(state: ServerState, prompts: Sequence[Prompt], with_logprobs: bool
                  ) -> list[Echo]:
    """Each prompt's text; with logprobs, its token ids and their logprobs (Engine.score of
    the tokens after the first, which also leaves the prompt in the prefix cache)."""
    engine = state.engine

    def compute(prompt: Prompt) -> Echo:
        if isinstance(prompt, str):
            text = prompt
            ids = engine.tokenizer.encode(prompt, add_special_tokens=True) if with_logprobs else []
        else:
            ids = list(prompt)  # type: ignore[arg-type]
            text = engine.tokenizer.decode(ids, skip_special_tokens=True)
        if not with_logprobs:
            return Echo(text)
        scores = engine.score(ids[:1], [ids[1:]])[0].token_logprobs if len(ids) > 1 else []
        return Echo(text, ids, list(scores))

    return [await state.wait_for_engine(compute, p) for p in prompts]
