"""KV eviction policies (h2o, window) against transformers decoding with the same tokens
masked out, step by step (greedy, fp32); memory per request bounded by the budget; the shared
prefix cache never serving evicted (inexact) KV; bad settings refused."""

from __future__ import annotations

import re

import pytest
import torch
from kv_policy_reference import hf_evicting_greedy
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import InvalidRequest

PROMPTS = [list(range(3, 40)), [1, 5, 7, 9, 11, 13, 15, 17, 19, 21], list(range(50, 75))]
NUM = 20
GREEDY = {"max_new_tokens": NUM, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("kv-policy")
    return path, make_model_dir(path, "llama")


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("policy", ["window", "h2o"])
def test_policy_matches_transformers_with_the_dropped_tokens_masked(model, policy, backend):
    path, hf = model
    with sglc.Engine(path, max_total_tokens=2048, kv_policy=policy, kv_budget=16,
                     kv_sink_tokens=2, kernel_backend=backend) as engine:
        outs = engine.generate(PROMPTS, GREEDY)
        assert engine.stats()["num_evicted_tokens"] > 0
    for prompt, out in zip(PROMPTS, outs, strict=True):
        # the short prompt starts evicting mid-decode, the long ones right after prefill
        assert out.token_ids == hf_evicting_greedy(hf, prompt, NUM, policy, 16, sinks=2)


def test_within_budget_nothing_changes(model):
    path, _ = model
    with sglc.Engine(path, max_total_tokens=2048) as engine:
        exact = [o.token_ids for o in engine.generate(PROMPTS, GREEDY)]
    with sglc.Engine(path, max_total_tokens=2048, kv_policy="h2o", kv_budget=64) as engine:
        assert [o.token_ids for o in engine.generate(PROMPTS, GREEDY)] == exact
        assert engine.stats()["num_evicted_tokens"] == 0


def test_memory_per_request_is_bounded_by_the_budget(model):
    # a 64-slot pool cannot hold 30 + 100 tokens exactly, but holds a 16-token budget
    path, _ = model
    long = {"max_new_tokens": 100, "temperature": 0, "ignore_eos": True}
    with sglc.Engine(path, max_total_tokens=64) as engine:
        assert engine.generate([PROMPTS[0][:30]], long)[0].usage.completion_tokens < 100
    with sglc.Engine(path, max_total_tokens=64, kv_policy="window", kv_budget=16,
                     disable_radix_cache=True) as engine:
        out = engine.generate([PROMPTS[0][:30]], long)[0]
        assert out.usage.completion_tokens == 100
        stats = engine.stats()
        assert stats["free_slots"] == stats["total_slots"]  # all of it given back


@pytest.mark.parametrize("policy", ["window", "h2o"])
def test_the_prefix_cache_never_serves_evicted_kv(model, policy):
    path, _ = model
    prompt = PROMPTS[0]
    with sglc.Engine(path, max_total_tokens=2048, kv_policy=policy, kv_budget=16) as engine:
        first = engine.generate([prompt], GREEDY)[0]
        # the same prompt again, the same output: window shares the exact prefill through
        # the cache; h2o computes it again (it ranks tokens by their prefill's attention)
        again = engine.generate([prompt], GREEDY)[0]
        # scoring runs one exact prefill: over the first request's output too, it must not
        # read the KV that request computed after evicting
        scores = engine.score(prompt + first.token_ids[:15], [first.token_ids[15:18]])
    assert again.token_ids == first.token_ids
    assert again.usage.cached_tokens == (len(prompt) - 1 if policy == "window" else 0)
    with sglc.Engine(path, max_total_tokens=2048) as exact:
        want = exact.score(prompt + first.token_ids[:15], [first.token_ids[15:18]])
    assert scores[0].token_logprobs == pytest.approx(want[0].token_logprobs, abs=1e-5)


def test_constrained_decoding_under_eviction_stays_valid():
    # jump-forward appends forced tokens to compacted rows (and may re-spell them)
    regex = r'\{"name": "[a-z]{3,12}", "age": [0-9]{1,2}, "city": "[a-z]{3,12}"\}'
    with sglc.Engine(kv_policy="window", kv_budget=8, kv_sink_tokens=2) as engine:
        outs = engine.generate(["Give a person as JSON: ", "Another: "],
                               {"max_new_tokens": 80, "temperature": 0}, regex=regex)
    for out in outs:
        assert out.is_valid and re.fullmatch(regex, out.text), out.text


def test_bad_settings_are_refused(model):
    path, _ = model
    cases = [({"kv_policy": "lru"}, "unknown kv_policy 'lru'"),
             ({"kv_policy": "h2o"}, "needs kv_budget >= 2"),
             ({"kv_policy": "window", "kv_budget": 8, "page_size": 4}, "needs page_size 1"),
             ({"kv_policy": "window", "kv_budget": 8, "kv_sink_tokens": 8}, "kv_sink_tokens"),
             ({"kv_policy": "h2o", "kv_budget": 8, "kv_recent_ratio": 0}, "kv_recent_ratio")]
    for options, message in cases:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            sglc.Engine(path, **options)


def test_key_scores_op_matches_dense_softmax():
    from sglc.kernels.attention_scores import accumulate_key_scores

    gen = torch.Generator().manual_seed(0)
    k_buffer = torch.randn(40, 2, 8, generator=gen)
    req_to_token = torch.randperm(39, generator=gen)[None].repeat(2, 1) + 1
    q = torch.randn(5, 4, 8, generator=gen)  # request 0: 3 queries after 6; request 1: 2 after 10
    scores = torch.zeros(2, 39)
    accumulate_key_scores(q, k_buffer, req_to_token, [0, 1], [6, 10], [3, 2], scores,
                          sm_scale=0.3, sliding_window=4)
    want = torch.zeros(2, 39)
    for row, (first, count, offset) in enumerate([(6, 3, 0), (10, 2, 3)]):
        for i in range(count):
            col = first + i
            for head in range(4):
                keys = k_buffer[req_to_token[row, : col + 1], head // 2]
                logits = keys @ q[offset + i, head] * 0.3
                logits[: max(0, col - 3)] = float("-inf")
                want[row, : col + 1] += torch.softmax(logits, dim=0)
    torch.testing.assert_close(scores, want)
