"""Our model code and engine against transformers on the same random weights (fp32)."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import ARCHS, make_model_dir

import sglc
from sglc.runtime.models.attention import DenseCausalAttention
from sglc.runtime.models.loader import load_model_dir

PROMPTS = [[1, 5, 7, 9, 11, 13], [1, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110], [3, 4]]
GREEDY = {"max_new_tokens": 24, "temperature": 0, "ignore_eos": True}


def hf_greedy(model, prompt: list[int], num: int) -> list[int]:
    out = model.generate(
        torch.tensor([prompt]), max_new_tokens=num, do_sample=False,
        eos_token_id=None, pad_token_id=0,
    )
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch_setup(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    hf = make_model_dir(path, request.param)
    return request.param, path, hf


def test_forward_logits_match_transformers(arch_setup):
    _, path, hf = arch_setup
    ours = load_model_dir(path, dtype="float32").model
    ids = torch.tensor([PROMPTS[1] + list(range(120, 150))])  # longer than mistral's window
    with torch.no_grad():
        ref = hf(ids).logits
    got = ours.forward_dense(ids)
    torch.testing.assert_close(got, ref, atol=2e-4, rtol=1e-4)


def test_forward_keep_rows_equals_full_forward_rows(arch_setup):
    # the last layer computes only the kept rows (their logits), the K/V of all of them
    _, path, _ = arch_setup
    ours = load_model_dir(path, dtype="float32").model
    ids = torch.tensor([PROMPTS[1], PROMPTS[0] + PROMPTS[2] + [8, 8, 8]])
    b, t = ids.shape
    positions = torch.arange(t).repeat(b)
    keep = torch.tensor([t - 1, 3, 2 * t - 1])
    with torch.no_grad():
        full = ours(ids.reshape(-1), positions, DenseCausalAttention(b, t))
        kept = ours(ids.reshape(-1), positions, DenseCausalAttention(b, t), keep)
        none = ours(ids.reshape(-1), positions, DenseCausalAttention(b, t), keep[:0])
    torch.testing.assert_close(kept, full[keep], atol=1e-5, rtol=1e-5)
    assert none.shape == (0, full.shape[1])


def test_greedy_generation_matches_transformers(arch_setup):
    arch, path, hf = arch_setup
    with sglc.Engine(path, max_total_tokens=2048) as engine:
        outs = engine.generate(PROMPTS, GREEDY)
    for prompt, out in zip(PROMPTS, outs, strict=True):
        assert out.token_ids == hf_greedy(hf, prompt, 24), arch
        assert out.finish_reason is sglc.FinishReason.LENGTH
        assert out.usage.completion_tokens == 24


def test_score_matches_transformers_logprobs(arch_setup):
    _, path, hf = arch_setup
    prompt, conts = [1, 5, 7, 9, 11, 13], [[20, 21, 22], [30], [40, 41]]
    with sglc.Engine(path, max_total_tokens=2048) as engine:
        scores = engine.score(prompt, conts)
        stats = engine.stats()
    for cont, score in zip(conts, scores, strict=True):
        ids = torch.tensor([prompt + cont])
        with torch.no_grad():
            logp = torch.log_softmax(hf(ids).logits[0].float(), dim=-1)
        ref = [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(cont)]
        assert score.token_logprobs == pytest.approx(ref, abs=1e-4)
        assert score.num_tokens == len(cont)
    # the prompt was computed once and shared by the three continuations
    assert stats["cache"]["matched_tokens"] >= 3 * (len(prompt) - 1)


def test_bf16_runs_close_to_fp32(tmp_path):
    hf = make_model_dir(tmp_path, "llama")
    ours = load_model_dir(tmp_path, dtype="bfloat16").model
    ids = torch.tensor([PROMPTS[1]])
    with torch.no_grad():
        ref = hf(ids).logits
    got = ours.forward_dense(ids)
    assert got.dtype == torch.float32  # logits are returned in fp32
    assert (got - ref).abs().max().item() < 0.15 * ref.abs().max().item()
