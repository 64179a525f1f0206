"""Fair policies in the engine: requests carry their client through the API, every policy
counts per-client service, and vtc/dlpm change the order of work, never its results."""

from __future__ import annotations

import pytest

import sglc

PROMPTS = [[1, 5, 7, 9, 11, 13], [1, 20, 30, 40], [3, 4, 5, 6, 7], [8, 9, 10], [1, 2]]
CLIENTS = ["alice", "bob", "alice", None, "alice"]
NUM = 6


@pytest.mark.parametrize("policy", ["vtc", "dlpm", "lpm"])
def test_policies_serve_the_same_outputs_and_count_service(llama_dir, policy):
    params = [{"max_new_tokens": NUM, "temperature": 0, "ignore_eos": True, "client": c}
              for c in CLIENTS]
    with sglc.Engine(llama_dir, max_total_tokens=1024, policy="fcfs") as engine:
        expected = [o.token_ids for o in engine.generate(PROMPTS, params)]
    with sglc.Engine(llama_dir, max_total_tokens=1024, policy=policy,
                     fair_token_weights=(1.0, 3.0), track_client_service=True) as engine:
        outs = engine.generate(PROMPTS, params)
        service = engine.stats()["client_service"]
    assert [o.token_ids for o in outs] == expected
    # each prompt token counts 1, each generated token 3, per client ("" for none)
    want: dict[str, float] = {}
    for prompt, client in zip(PROMPTS, CLIENTS, strict=True):
        want[client or ""] = want.get(client or "", 0) + len(prompt) + 3 * NUM
    assert service == want


def test_fcfs_and_lpm_count_no_service_unless_asked(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=1024) as engine:
        engine.generate(PROMPTS[:2], {"max_new_tokens": 2, "client": "alice"})
        assert engine.stats()["client_service"] == {}


def test_bad_client_is_refused(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=1024, policy="vtc") as engine:
        with pytest.raises(sglc.InvalidRequest, match="client must be None or a string, got 3"):
            engine.generate([PROMPTS[0]], {"client": 3})
