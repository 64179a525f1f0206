"""Bad input fails alone: each kind of bad request gets the right status and an
OpenAI-shaped error naming the problem, and the server keeps serving (a good request right
after each one succeeds). Auth, the body size limit and the in-flight limit."""

from __future__ import annotations

import json
import time

import openai
import pytest

from server.support import API_KEY, metric

GOOD = {"model": "default", "prompt": "Hello", "max_tokens": 2, "temperature": 0}
CHAT = {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


def assert_error(response, status, param=None, code=None, contains=""):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert contains in error["message"]
    return error


def assert_still_serving(http):
    r = http.post("/v1/completions", json=GOOD)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] in ("stop", "length")


BAD_COMPLETIONS = [
    # (body changes, status, param, message part)
    ({"max_tokens": "ten"}, 400, "max_tokens", "valid integer"),
    ({"max_tokens": 2.5}, 400, "max_tokens", "valid integer"),
    ({"temperature": -1}, 400, "temperature", "greater than or equal to 0"),
    ({"temperature": "hot"}, 400, "temperature", "valid number"),
    ({"top_p": 0}, 400, "top_p", "greater than 0"),
    ({"n": 0}, 400, "n", ">= 1" if False else "greater than or equal to 1"),
    ({"n": 5}, 400, "n", "n must be <= 4"),
    ({"max_tokens": 5000}, 400, "max_tokens", "max_tokens must be <= 900"),
    ({"logprobs": 50}, 400, "logprobs", "logprobs must be <= 20"),
    ({"presence_penalty": 3}, 400, "presence_penalty", "less than or equal to 2"),
    ({"stop": [""]}, 400, "stop", "non-empty"),
    ({"stream": "yes"}, 400, "stream", "valid boolean"),
    ({"frobnicate": 1}, 400, "frobnicate", "unrecognized request argument"),
    ({"prompt": None}, 400, "prompt", "expected a string"),
    ({"prompt": []}, 400, "prompt", "expected a string"),
    ({"prompt": [1, "a"]}, 400, "prompt", "expected a string"),
    ({"prompt": [10**9]}, 400, None, "outside the vocabulary"),
    ({"prompt": "word " * 3000}, 400, None, "longer than this engine allows"),
    ({"regex": "[0-9"}, 400, None, "invalid constraint"),
    ({"regex": "[0-9", "stream": True}, 400, None, "invalid constraint"),  # before the stream
    ({"regex": "a+", "choices": ["x"]}, 400, "choices", "at most one of"),
    ({"choices": []}, 400, "choices", "non-empty"),
    ({"response_format": {"type": "json_schema"}}, 400, "response_format.json_schema",
     "needs a `json_schema`"),
    ({"response_format": {"type": "xml"}}, 400, "response_format.type", "json_object"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "not": {}}}}},
     400, None, "accepts no value"),
    ({"logit_bias": {"50": 5}}, 400, "logit_bias", "not supported"),
    ({"suffix": "end"}, 400, "suffix", "not supported"),
    ({"best_of": 3}, 400, "best_of", "equal to n"),
    ({"attention_sparsity": [0, 1]}, 400, None, "attention_sparsity must be None or a pair"),
    ({"attention_sparsity": [0.5, 0.25]}, 400, None, "needs an engine started with "
     "sparsity_calibration"),
]


@pytest.mark.parametrize(("change", "status", "param", "message"), BAD_COMPLETIONS,
                         ids=[json.dumps(c)[:40] for c, *_ in BAD_COMPLETIONS])
def test_bad_completion_request_fails_alone(http, change, status, param, message):
    body = {**GOOD, **change}
    if change.get("prompt", 0) is None:
        del body["prompt"]
    r = http.post("/v1/completions", json=body)
    if change.get("prompt", 0) is None:
        assert_error(r, 400, "prompt", contains="missing required field")
    else:
        assert_error(r, status, param, contains=message)
    assert_still_serving(http)


BAD_CHATS = [
    ({"messages": []}, 400, "messages", "at least 1"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role", "system"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     400, "messages.0.content", "only text content parts"),
    ({"messages": "hello"}, 400, "messages", "valid list"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools",
     "not supported"),
    ({"top_logprobs": 2}, 400, "top_logprobs", "needs logprobs"),
    ({"max_completion_tokens": 0}, 400, "max_completion_tokens", "greater than or equal"),
]


@pytest.mark.parametrize(("change", "status", "param", "message"), BAD_CHATS,
                         ids=[json.dumps(c)[:40] for c, *_ in BAD_CHATS])
def test_bad_chat_request_fails_alone(http, change, status, param, message):
    r = http.post("/v1/chat/completions", json={**CHAT, **change})
    assert_error(r, status, param, contains=message)
    assert_still_serving(http)


def test_content_parts_of_text_are_joined(http):
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    r = http.post("/v1/chat/completions", json={**CHAT, **parts, "temperature": 0})
    plain = http.post("/v1/chat/completions", json={**CHAT, "temperature": 0})
    assert r.json()["choices"][0]["message"] == plain.json()["choices"][0]["message"]


def test_invalid_json_body(http):
    r = http.post("/v1/completions", content=b'{"prompt": "x",',
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400, contains="not valid JSON")
    assert_still_serving(http)


def test_unknown_model_is_404(http, server):
    r = http.post("/v1/completions", json={**GOOD, "model": "gpt-4"})
    assert_error(r, 404, "model", code="model_not_found", contains="gpt-4")
    with pytest.raises(openai.NotFoundError):
        server.client().chat.completions.create(model="gpt-4", messages=CHAT["messages"])
    assert_still_serving(http)


def test_unknown_route_and_method(http):
    assert_error(http.get("/v1/nothing"), 404, code="not_found")
    assert_error(http.get("/v1/completions"), 405, code="method_not_allowed")
    assert_still_serving(http)


def test_body_over_the_limit_is_413(http):
    r = http.post("/v1/completions", json={**GOOD, "prompt": "x" * 70000})
    assert_error(r, 413, code="request_too_large", contains="65536 bytes")
    assert_still_serving(http)


@pytest.mark.parametrize("path", ["/v1/models", "/metrics", "/v1/programs"])
def test_routes_need_the_api_key(server, path):
    with server.http(api_key=None) as anonymous:
        error = assert_error(anonymous.get(path), 401, code="invalid_api_key",
                             contains="missing API key")
        assert error["type"] == "authentication_error"
    with server.http(api_key="wrong") as wrong:
        assert_error(wrong.get(path), 401, code="invalid_api_key", contains="invalid API key")
    with server.http() as good:
        assert good.get(path).status_code == 200


def test_post_routes_need_the_api_key(server):
    with server.http(api_key=None) as anonymous:
        assert anonymous.post("/v1/completions", json=GOOD).status_code == 401
        assert anonymous.post("/generate", json={"text": "x"}).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="wrong").completions.create(model="default", prompt="x")
    assert server.client(api_key=API_KEY).completions.create(
        model="default", prompt="x", max_tokens=1).choices


def test_health_needs_no_key(server):
    with server.http(api_key=None) as anonymous:
        r = anonymous.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_over_the_in_flight_limit_is_503(server):
    long_stream = {"model": "default", "prompt": "Count:", "max_tokens": 800, "n": 4,
                   "temperature": 1.0, "ignore_eos": True, "stream": True}
    with server.http() as http, server.http() as other:
        with http.stream("POST", "/v1/completions", json=long_stream) as first:
            first_lines = first.iter_lines()  # NOTE: a dropped line iterator closes the stream
            assert next(first_lines).startswith("data: ")
            fits = other.post("/v1/completions", json={**GOOD, "n": 4})  # 4 + 4 <= 8
            with other.stream("POST", "/v1/completions", json=long_stream) as second:
                second_lines = second.iter_lines()
                assert next(second_lines).startswith("data: ")
                with server.http() as third:
                    refused = third.post("/v1/completions", json=GOOD)  # 4 + 4 + 1 > 8
        assert fits.status_code == 200, fits.text
        assert_error(refused, 503, code="overloaded", contains="limit of 8 sequences")
        assert refused.json()["error"]["type"] == "server_overloaded"
        assert refused.headers["Retry-After"] == "1"
        # the streams closed: their sequences are released once the server sees the disconnects
        deadline = time.monotonic() + 30
        while metric(http.get("/metrics").text, "sglc:num_requests_in_flight") > 0:
            assert time.monotonic() < deadline, "closed streams still hold their sequences"
            time.sleep(0.05)
        assert_still_serving(http)


def test_request_larger_than_the_limit_is_400(http):
    r = http.post("/v1/completions", json={**GOOD, "prompt": ["a", "b", "c"], "n": 3})
    assert_error(r, 400, "n", contains="needs 9 sequences")
