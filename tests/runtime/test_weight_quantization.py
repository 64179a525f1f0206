"""Engine(quantization=...): weight-only int8 / int4 projections swapped in after loading;
outputs close to the float model's on a tiny model; bad names refused before loading."""

from __future__ import annotations

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import InvalidRequest
from sglc.runtime.quant import QuantizedLinear

PROMPTS = [list(range(3, 40)), [1, 5, 7, 9, 11, 13, 15, 17, 19, 21]]
GREEDY = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}
SCORED = list(range(40, 48))


@pytest.fixture(scope="module")
def float_model(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=1024) as engine:
        return ([o.token_ids for o in engine.generate(PROMPTS, GREEDY)],
                engine.score(PROMPTS[0], [SCORED])[0].logprob)


@pytest.mark.parametrize(("scheme", "backend", "rel"), [("int8", "cpu", 0.01),
                                                         ("int8", "torch", 0.01),
                                                         ("int4", "cpu", 0.05)])
def test_quantized_projections_stay_close(llama_dir, float_model, scheme, backend, rel):
    want, want_logprob = float_model
    with sglc.Engine(llama_dir, max_total_tokens=1024, quantization=scheme,
                     kernel_backend=backend) as engine:
        model = engine.loaded.model
        swapped = [m for m in model.modules() if isinstance(m, QuantizedLinear)]
        assert len(swapped) == 4 * len(model.model.layers)  # qkv, o, gate_up, down
        assert {m.bits for m in swapped} == {int(scheme[3:])}
        got = [o.token_ids for o in engine.generate(PROMPTS, GREEDY)]
        logprob = engine.score(PROMPTS[0], [SCORED])[0].logprob
    assert logprob == pytest.approx(want_logprob, rel=rel) and logprob != want_logprob
    # a random-weight model's next-token logits are nearly flat: int4 may turn greedy paths
    # from the first token on (the likelihood above stays close)
    if scheme == "int8":
        assert got == want


def test_quantized_weights_with_a_quantized_kv_cache(llama_dir, float_model):
    want, _ = float_model
    with sglc.Engine(llama_dir, max_total_tokens=1024, quantization="int8",
                     kv_cache_dtype="int8") as engine:
        assert [o.token_ids for o in engine.generate(PROMPTS, GREEDY)] == want


def test_unknown_quantization_is_refused_before_loading(tmp_path):
    with pytest.raises(InvalidRequest, match="quantization 'q4_k'.*int8, int4"):
        sglc.Engine(tmp_path / "no-such-model", quantization="q4_k")


def test_a_tied_lm_head_is_quantized_to_int8(tmp_path):
    make_model_dir(tmp_path, "qwen2")  # tie_word_embeddings
    with sglc.Engine(tmp_path, max_total_tokens=1024) as engine:
        want = engine.score(PROMPTS[0], [SCORED])[0].logprob
    with sglc.Engine(tmp_path, max_total_tokens=1024, quantization="int4") as engine:
        model = engine.loaded.model
        assert isinstance(model.lm_head, QuantizedLinear) and model.lm_head.bits == 8
        assert model.lm_head.weight is model.model.embed_tokens.weight  # no second copy
        assert model.lm_head_t is None
        got = engine.score(PROMPTS[0], [SCORED])[0].logprob
        assert len(engine.generate(PROMPTS, GREEDY)[0].token_ids) == GREEDY["max_new_tokens"]
    assert got == pytest.approx(want, rel=0.05) and got != want
