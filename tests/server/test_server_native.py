"""Native routes: /generate (SGLang's shape, the engine's own SamplingParams) and /score."""

from __future__ import annotations

import json

import pytest

GREEDY = {"max_new_tokens": 8, "temperature": 0}


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


def test_generate_equals_the_engine(http, local_engine):
    r = http.post("/generate", json={"text": "Hello, my name is", "sampling_params": GREEDY})
    assert r.status_code == 200, r.text
    body = r.json()
    (expected,) = local_engine.generate("Hello, my name is", GREEDY)
    assert body["text"] == expected.text
    assert body["output_ids"] == expected.token_ids
    meta = body["meta_info"]
    assert meta["finish_reason"] == {"type": expected.finish_reason.value}
    assert meta["prompt_tokens"] == expected.usage.prompt_tokens
    assert meta["completion_tokens"] == len(expected.token_ids)


def test_generate_batches_and_samples_return_lists(http):
    batch = http.post("/generate", json={"text": ["The sky is", "Dogs are"],
                                         "sampling_params": GREEDY}).json()
    assert [item["meta_info"]["index"] for item in batch] == [0, 1]
    ids = http.post("/generate", json={"input_ids": [[5, 6, 7]],
                                       "sampling_params": {**GREEDY, "n": 2}}).json()
    assert len(ids) == 2
    chat = http.post("/generate", json={"messages": [{"role": "user", "content": "Hi"}],
                                        "sampling_params": GREEDY}).json()
    assert isinstance(chat, dict) and chat["meta_info"]["prompt_tokens"] > 1


def test_generate_constraints_and_logprobs(http):
    body = http.post("/generate", json={"text": "Pick: ", "sampling_params": {
        **GREEDY, "regex": "(yes|no)", "logprobs": 2}}).json()
    assert body["text"] in ("yes", "no") and body["meta_info"]["is_valid"] is True
    meta = body["meta_info"]
    assert len(meta["output_token_logprobs"]) == len(body["output_ids"])
    assert all(len(top) <= 2 for top in meta["output_top_logprobs"])


def test_generate_stream(http):
    whole = http.post("/generate", json={"text": "Hello", "sampling_params": GREEDY}).json()
    with http.stream("POST", "/generate", json={"text": "Hello", "sampling_params": GREEDY,
                                                "stream": True}) as r:
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    deltas = [e for e in parsed if not e.get("done")]
    assert "".join(e["text"] for e in deltas) == whole["text"]
    (final,) = [e for e in parsed if e.get("done")]
    assert final["text"] == whole["text"] and final["meta_info"]["completion_tokens"] > 0


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"text": "x", "sampling_params": {"max_tokens": 3}}, "sampling_params", "unknown key"),
    ({"text": "x", "sampling_params": {"max_new_tokens": 5000}},
     "sampling_params.max_new_tokens", "<= 900"),
    ({"text": "x", "sampling_params": {"n": 9}}, "sampling_params.n", "<= 4"),
    ({"text": "x", "input_ids": [1]}, "input_ids", "exactly one of"),
    ({}, "text", "exactly one of"),
    ({"text": ""}, "text", "non-empty"),
    ({"input_ids": [1, -2]}, "input_ids", "expected list[int] or list[list[int]]"),
])
def test_bad_generate_requests(http, body, param, message):
    r = http.post("/generate", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] is not None and error["param"].startswith(param)
    assert message in error["message"]
    assert http.post("/generate", json={"text": "ok", "sampling_params": GREEDY}).status_code \
        == 200


def test_score_equals_the_engine(http, local_engine):
    body = {"prompt": "The capital of France is", "continuations": [" Paris", " Rome"]}
    r = http.post("/score", json=body).json()
    expected = local_engine.score(body["prompt"], body["continuations"])
    for got, want in zip(r["scores"], expected, strict=True):
        assert got["logprob"] == pytest.approx(want.logprob, abs=1e-4)
        assert got["num_tokens"] == want.num_tokens
        assert got["normalized"] == pytest.approx(want.normalized, abs=1e-4)


def test_bad_score_requests(http):
    assert http.post("/score", json={"prompt": "x", "continuations": []}).status_code == 400
    r = http.post("/score", json={"prompt": "", "continuations": ["a"]})
    assert r.status_code == 400 and "empty prompt" in r.json()["error"]["message"]
    assert http.post("/score", json={"prompt": "x", "continuations": ["a"],
                                     "model": "other"}).status_code == 404
