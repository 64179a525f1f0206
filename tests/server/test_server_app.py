"""The app in-process (httpx.ASGITransport) over a scripted engine: what the real default
model cannot be made to do on demand (fail a request, stop answering), the body limit on a
chunked upload, and the request-model and metrics helpers."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from sglc.runtime.core import (
    EngineError,
    FinishReason,
    InvalidRequest,
    Output,
    SamplingParams,
    StreamDelta,
    Usage,
)
from sglc.runtime.server import ServerConfig, create_app
from sglc.runtime.server.errors import validation_message
from sglc.runtime.server.metrics import ThroughputWindow
from sglc.runtime.server.protocol import ChatCompletionRequest
from sglc.runtime.server.sampling import Limits, chat_messages, chat_params


class ScriptedTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return "".join(f"<{i}>" for i in ids)


class ScriptedEngine:
    """The public Engine API, answering every sample with `text` token by token, or with
    `error`; `stats` raises once shut down."""

    max_context_len = 64

    def __init__(self, text="abc", error=None):
        self.text, self.error = text, error
        self.tokenizer = ScriptedTokenizer()
        self.is_shut_down = False
        self.aborted = []

    def submit(self, prompts, params, *, on_output, on_delta=None, rids=None):
        if prompts == ["invalid"]:
            raise InvalidRequest("the engine refuses this prompt")

        def run():
            for rid, p in zip(rids, params, strict=True):
                for k in range(p.n):
                    for i, ch in enumerate(self.text):
                        on_delta(StreamDelta(rid, k, ch, [i]))
                    reason = FinishReason.ABORT if self.error else FinishReason.STOP
                    on_delta(StreamDelta(rid, k, "", [], reason, None, self.error))
                    on_output(Output(rid, k, self.text, list(range(len(self.text))), reason,
                                     Usage(3, 1, len(self.text)), error=self.error))

        threading.Thread(target=run).start()
        return list(rids)

    def abort(self, rid):
        self.aborted.append(rid)

    def stats(self):
        if self.is_shut_down:
            raise EngineError("the engine is shut down")
        return {"num_running": 0, "num_waiting": 0, "free_slots": 10, "total_slots": 10,
                "cache": {"hit_rate": 0.5, "cached_tokens": 0}}


def call(engine, method, path, config=None, **kwargs):
    async def go():
        app = create_app(engine, config or ServerConfig())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_scripted_engine_answers():
    r = call(ScriptedEngine(), "POST", "/v1/chat/completions", json=CHAT)
    assert r.json()["choices"][0]["message"]["content"] == "abc"
    assert r.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}


def test_an_engine_failure_is_a_500_and_a_stream_error_event():
    engine = ScriptedEngine(error="boom")
    r = call(engine, "POST", "/v1/chat/completions", json=CHAT)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "engine_error" and "boom" in r.json()["error"]["message"]
    r = call(engine, "POST", "/v1/completions", json={"prompt": "x", "stream": True})
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["type"] == "server_error"


def test_engine_refusal_at_submit_is_a_400():
    r = call(ScriptedEngine(), "POST", "/v1/completions", json={"prompt": "invalid"})
    assert r.status_code == 400 and "refuses" in r.json()["error"]["message"]


def test_health_is_503_when_the_engine_is_down():
    engine = ScriptedEngine()
    assert call(engine, "GET", "/health").status_code == 200
    engine.is_shut_down = True
    r = call(engine, "GET", "/health")
    assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
    assert call(engine, "GET", "/metrics").status_code == 200  # metrics still answer


def test_chunked_body_over_the_limit_is_413():
    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    r = call(ScriptedEngine(), "POST", "/v1/completions", content=chunks(),
             config=ServerConfig(max_body_bytes=1000))
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_bad_content_length_is_400():
    r = call(ScriptedEngine(), "POST", "/v1/completions", content=b"{}",
             headers={"content-length": "abc"})
    assert r.status_code == 400


def test_validation_message_names_the_field():
    assert validation_message([{"loc": ("body", "messages", 0, "role"), "type": "literal_error",
                                "msg": "Input should be 'user'"}]) == \
        ("invalid value for 'messages.0.role': Input should be 'user'", "messages.0.role")
    assert validation_message([{"loc": ("body", "x"), "type": "extra_forbidden", "msg": ""}]) \
        == ("unrecognized request argument 'x'", "x")
    assert validation_message([{"loc": ("body", 3), "type": "json_invalid", "msg": ""}])[1] \
        is None
    assert validation_message([{"loc": ("body", "stop"), "type": "value_error",
                                "msg": "Value error, expected a string"}])[0] == \
        "invalid value for 'stop': expected a string"


def test_a_union_field_is_reported_once_with_its_types():
    r = call(ScriptedEngine(), "POST", "/v1/chat/completions",
             json={"messages": [{"role": "user", "content": 5}]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages.0.content"
    assert r.json()["error"]["message"] == \
        "invalid value for 'messages.0.content': expected list[TextPart] or str"
    two_fields = [{"loc": ("body", "messages", 0, "role"), "type": "literal_error", "msg": "a"},
                  {"loc": ("body", "messages", 1, "role"), "type": "literal_error", "msg": "b"}]
    assert validation_message(two_fields) == ("invalid value for 'messages.0.role': a",
                                              "messages.0.role")


def test_chat_params_defaults_and_names():
    limits = Limits(max_n=4, max_prompts=8, max_tokens=100, max_logprobs=5)
    req = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "developer", "content": [{"type": "text", "text": "be "},
                                                        {"type": "text", "text": "brief"}]}],
         "top_k": -1, "logprobs": True})
    params = chat_params(req, limits)
    assert params == SamplingParams(max_new_tokens=100, top_k=None, logprobs=0)
    assert chat_messages(req.messages) == [{"role": "system", "content": "be brief"}]


def test_throughput_window_counts_the_last_seconds():
    window = ThroughputWindow(window_s=10)
    window._started = 0.0
    window.add(50, now=1.0)
    window.add(100, now=12.0)
    assert window.rate(now=15.0) == pytest.approx(10.0)  # the first 50 left the window


class SleepyProgram:
    """Stands in for a Program whose run awaits for `seconds` (a long model call)."""

    entry = "main"

    def __init__(self, seconds):
        self.seconds = seconds
        self.was_cancelled = threading.Event()

    async def run_async(self, fn, *args, runtime=None, trace=None, out=None, **kwargs):
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.was_cancelled.set()
            raise
        return {"slept": self.seconds}


def test_program_timeout_is_504_and_cancels_the_run():
    from sglc.runtime.server.errors import APIError
    from sglc.runtime.server.programs import ProgramRunner

    runner = ProgramRunner(ScriptedEngine(), ServerConfig(program_timeout_s=0.2))
    program = SleepyProgram(30)
    with pytest.raises(APIError) as info:
        asyncio.run(runner.run(program, None, {}, want_trace=False))
    assert info.value.status == 504 and info.value.code == "program_timeout"
    assert program.was_cancelled.wait(5)
    quick = asyncio.run(runner.run(SleepyProgram(0), None, {}, want_trace=True))
    assert quick["value"] == {"slept": 0} and quick["trace"]["num_calls"] == 0


def test_programs_past_the_run_limit_get_503():
    from sglc.runtime.server.errors import APIError
    from sglc.runtime.server.programs import ProgramRunner

    runner = ProgramRunner(ScriptedEngine(), ServerConfig(max_program_runs=1))

    async def two_at_once():
        first = asyncio.ensure_future(runner.run(SleepyProgram(0.5), None, {}, False))
        await asyncio.sleep(0.1)
        with pytest.raises(APIError) as info:
            await runner.run(SleepyProgram(0), None, {}, False)
        assert info.value.status == 503
        await first
        return await runner.run(SleepyProgram(0), None, {}, False)  # free again

    assert asyncio.run(two_at_once())["value"] == {"slept": 0}
