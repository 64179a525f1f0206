"""Engine(kv_cache_dtype=...): quantized KV against the unquantized cache on a tiny model;
prefix cache, chunked prefill, retraction and constrained decoding unchanged; bad names
refused before anything loads."""

from __future__ import annotations

import json

import pytest

import sglc
from sglc.runtime.core import InvalidRequest

PROMPTS = [list(range(3, 40)), [1, 5, 7, 9, 11, 13, 15, 17, 19, 21], list(range(50, 75))]
GREEDY = {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}


def _tokens(engine, prompts=PROMPTS, params=GREEDY):
    return [o.token_ids for o in engine.generate(prompts, params)]


@pytest.fixture(scope="module")
def unquantized(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=2048, kernel_backend="torch") as engine:
        return _tokens(engine), engine.score(PROMPTS[0], [list(range(40, 48))])[0]


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_int8_decodes_as_the_unquantized_cache_does(llama_dir, unquantized, backend):
    want, _ = unquantized
    with sglc.Engine(llama_dir, max_total_tokens=2048, kv_cache_dtype="int8",
                     kernel_backend=backend) as engine:
        assert _tokens(engine) == want


def test_int4_keeps_the_first_tokens_and_the_likelihood(llama_dir, unquantized):
    # a random-weight model's next-token logits are nearly flat, so int4's coarser KV turns
    # greedy paths after a few tokens; the likelihood of a fixed continuation stays close
    want, want_score = unquantized
    with sglc.Engine(llama_dir, max_total_tokens=2048, kv_cache_dtype="int4") as engine:
        got = _tokens(engine)
        score = engine.score(PROMPTS[0], [list(range(40, 48))])[0]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert got[0][:6] == want[0][:6]
    assert score.logprob == pytest.approx(want_score.logprob, rel=0.02)
    assert score.logprob != want_score.logprob  # it did read quantized KV


def test_prefix_cache_chunking_and_retraction_change_nothing(llama_dir):
    base = {"kv_cache_dtype": "int8", "kernel_backend": "cpu"}
    with sglc.Engine(llama_dir, max_total_tokens=2048, disable_radix_cache=True,
                     chunked_prefill_size=0, **base) as engine:
        want = _tokens(engine)
    # a shared prefix served from the cache, prompts prefilled in chunks of 8
    with sglc.Engine(llama_dir, max_total_tokens=2048, chunked_prefill_size=8, **base) as engine:
        engine.generate([PROMPTS[0][:20]], GREEDY)
        outs = engine.generate(PROMPTS, GREEDY)
        assert [o.token_ids for o in outs] == want
        assert outs[0].usage.cached_tokens > 0
    # a pool too small for every request at once: some are retracted and rerun
    with sglc.Engine(llama_dir, max_total_tokens=80, **base) as engine:
        assert _tokens(engine, PROMPTS * 2) == want * 2
        assert engine.stats()["num_retractions"] > 0


def test_constrained_decoding_on_a_quantized_cache(llama_dir):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    with sglc.Engine(llama_dir, max_total_tokens=2048, kv_cache_dtype="int4") as engine:
        out = engine.generate(["x"], {"max_new_tokens": 40, "temperature": 0,
                                      "json_schema": json.dumps(schema)})[0]
        regex = engine.generate(["y"], {"max_new_tokens": 8, "temperature": 0,
                                        "regex": "[ab]{3}c"})[0]
    assert isinstance(json.loads(out.text)["ok"], bool)
    assert len(regex.text) == 4 and regex.text.endswith("c")


def test_unknown_kv_cache_dtype_is_refused_before_loading(tmp_path):
    with pytest.raises(InvalidRequest, match="kv_cache_dtype 'fp8'.*auto, int8, int4"):
        sglc.Engine(tmp_path / "no-such-model", kv_cache_dtype="fp8")
