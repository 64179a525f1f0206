"""`sglc serve --dp 2`: one port in front of two replicas; completions are the single
engine's, the metrics and engine stats report both replicas."""

from __future__ import annotations

from server.support import API_KEY, start_server, stop_server

import sglc

PROMPTS = [[1, 5, 7, 9, 11, 13], [1, 40, 41, 42], [1, 5, 7, 9, 11, 14]]


def test_serve_dp2_answers_as_one_engine(llama_dir, tmp_path):
    with sglc.Engine(llama_dir, kernel_backend="torch") as engine:
        expected = [o.token_ids for o in engine.generate(
            PROMPTS, {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True})]
    server = start_server(["--model", str(llama_dir), "--served-model-name", "default",
                           "--api-key", API_KEY, "--dp", "2", "--kernel-backend", "torch",
                           "--max-total-tokens", "2048", "--log-level", "warning"],
                          tmp_path / "server.log")
    try:
        client = server.client()
        for prompt, ids in zip(PROMPTS, expected, strict=True):
            reply = client.completions.create(
                model="default", prompt=prompt, max_tokens=6, temperature=0, logprobs=0,
                extra_body={"ignore_eos": True, "return_tokens_as_token_ids": True})
            tokens = reply.choices[0].logprobs.tokens
            assert [int(t.removeprefix("token_id:")) for t in tokens] == ids
        with server.http() as http:
            assert http.get("/metrics").status_code == 200
    finally:
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()
