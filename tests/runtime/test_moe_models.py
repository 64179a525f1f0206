"""Mixture-of-experts models (Mixtral, Qwen2-MoE, Qwen3-MoE) against transformers on the same
random weights (fp32): logits, greedy generation through the engine, and the fused op's
backends."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import MOE_ARCHS, make_model_dir

import sglc
from sglc.runtime.models import MoeForCausalLM
from sglc.runtime.models.loader import load_model_dir

PROMPTS = [[1, 5, 7, 9, 11, 13], [1, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110], [3, 4]]
GREEDY = {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}


def hf_greedy(model, prompt: list[int], num: int) -> list[int]:
    out = model.generate(torch.tensor([prompt]), max_new_tokens=num, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module", params=sorted(MOE_ARCHS))
def moe_setup(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    return request.param, path, make_model_dir(path, request.param)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "hf-layout"])
def test_moe_logits_match_transformers(moe_setup, fuse):
    _, path, hf = moe_setup
    ours = load_model_dir(path, dtype="float32", fuse=fuse).model
    assert isinstance(ours, MoeForCausalLM)
    ids = torch.tensor([PROMPTS[1] + list(range(120, 150)), list(range(3, 44))])
    with torch.no_grad():
        ref = hf(ids).logits
    torch.testing.assert_close(ours.forward_dense(ids), ref, atol=2e-4, rtol=1e-4)


def test_moe_greedy_generation_matches_transformers(moe_setup):
    arch, path, hf = moe_setup
    with sglc.Engine(path, max_total_tokens=2048) as engine:
        outs = engine.generate(PROMPTS, GREEDY)
    for prompt, out in zip(PROMPTS, outs, strict=True):
        assert out.token_ids == hf_greedy(hf, prompt, 16), arch


def test_moe_config_reads_the_routing(moe_setup):
    arch, path, _ = moe_setup
    moe = load_model_dir(path, dtype="float32", load_tokenizer=False).config.moe
    assert moe is not None and moe.num_experts == 4 and moe.top_k == 2
    assert moe.norm_topk_prob == (arch != "qwen2-moe")
    assert (moe.shared_expert_intermediate_size > 0) == (arch == "qwen2-moe")
    assert moe.sparse_layers == ((True, False) if arch == "qwen2-moe" else (True, True))


def test_moe_triton_backend_matches_torch(tmp_path):
    # the Triton fused MoE (interpreted on CPU) inside the whole model
    pytest.importorskip("triton")
    from sglc.kernels import triton_interpreted

    if not triton_interpreted():
        pytest.skip("needs TRITON_INTERPRET=1 (set by the kernel tests' conftest)")
    make_model_dir(tmp_path, "mixtral")
    from sglc.kernels import get_ops

    ids = torch.tensor([PROMPTS[0]])
    ref = load_model_dir(tmp_path, dtype="float32", ops=get_ops("torch")).model
    tri = load_model_dir(tmp_path, dtype="float32", ops=get_ops("triton")).model
    with torch.no_grad():
        torch.testing.assert_close(tri.forward_dense(ids), ref.forward_dense(ids),
                                   atol=1e-3, rtol=1e-3)
