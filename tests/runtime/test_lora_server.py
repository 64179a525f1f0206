"""`sglc serve --lora NAME=PATH --policy vtc`: the OpenAI routes take a `lora` field (the
adapter's output, as the engine gives it), refuse an adapter the server does not serve, and
make `user` the request's client (whom the fair policies share the engine between)."""

from __future__ import annotations

import pytest
from lora_fixtures import hf_greedy, make_adapter, merged
from model_fixtures import make_model_dir
from server.support import API_KEY, start_server, stop_server

PROMPT = [1, 5, 7, 9, 11, 13]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-server")
    hf = make_model_dir(root / "model", "llama")
    make_adapter(root / "qv", hf, ("q_proj", "v_proj"), rank=4, alpha=8, seed=1)
    server = start_server(["--model", str(root / "model"), "--served-model-name", "default",
                           "--api-key", API_KEY,
                           "--lora", f"qv={root / 'qv'}", "--policy", "vtc",
                           "--max-total-tokens", "2048", "--log-level", "warning"],
                          root / "server.log")
    yield server, hf, merged(hf, root / "qv")
    stop_server(server)
    assert "Traceback" not in server.log(), server.log()


def test_completions_with_an_adapter_match_the_merged_model(served):
    server, hf, tuned = served
    client = server.client()
    common = {"model": "default", "prompt": PROMPT, "max_tokens": 8, "temperature": 0}
    with_adapter = client.completions.create(**common, extra_body={
        "lora": "qv", "ignore_eos": True, "return_tokens_as_token_ids": True}, user="alice",
        logprobs=0)
    base = client.completions.create(**common, extra_body={
        "ignore_eos": True, "return_tokens_as_token_ids": True}, user="bob", logprobs=0)

    def ids(choice) -> list[int]:
        return [int(t.removeprefix("token_id:")) for t in choice.logprobs.tokens]

    assert ids(with_adapter.choices[0]) == hf_greedy(tuned, PROMPT, 8)
    assert ids(base.choices[0]) == hf_greedy(hf, PROMPT, 8)
    with server.http() as http:
        metrics = http.get("/metrics").text
    assert metrics  # the server stays healthy


def test_an_adapter_the_server_does_not_serve_is_a_400(served):
    server, _, _ = served
    with server.http() as http:
        reply = http.post("/v1/completions", json={"model": "default", "prompt": "hi",
                                                    "max_tokens": 2, "lora": "nope"})
    assert reply.status_code == 400
    assert "unknown LoRA adapter 'nope'" in reply.json()["error"]["message"]


def test_native_generate_takes_lora_and_client(served):
    server, _, tuned = served
    with server.http() as http:
        reply = http.post("/generate", json={"input_ids": PROMPT, "sampling_params": {
            "max_new_tokens": 8, "temperature": 0, "ignore_eos": True, "lora": "qv",
            "client": "carol"}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output_ids"] == hf_greedy(tuned, PROMPT, 8)


def test_user_is_the_client_and_lora_the_adapter():
    from sglc.runtime.server.protocol import ChatCompletionRequest, CompletionRequest
    from sglc.runtime.server.sampling import Limits, chat_params, completion_params

    limits = Limits(max_n=4, max_prompts=4, max_tokens=64, max_logprobs=5)
    params = completion_params(CompletionRequest(prompt="hi", user="alice", lora="qv"), limits)
    assert (params.client, params.lora) == ("alice", "qv")
    chat = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}])
    assert (chat_params(chat, limits).client, chat_params(chat, limits).lora) == (None, None)
