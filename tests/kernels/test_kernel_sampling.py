"""Batched sampling: the reference's kept set and draw, and the Triton kernel against it."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from sglc.kernels.sampling import num_kept, sample_tokens, sort_probs  # noqa: E402
from sglc.kernels.triton_sampling import triton_sample_tokens  # noqa: E402
from sglc.runtime.core import SamplingParams  # noqa: E402
from sglc.runtime.sampling import SamplingBatch, filtered_probs  # noqa: E402

# (temperature, top_k, top_p, min_p) per row: greedy, plain, each filter alone and combined,
# "off" spelled every way (0, -1, >= V, the runtime's 2**31-1).
ROW_PARAMS = [
    (0.0, 0, 1.0, 0.0),
    (1.0, -1, 1.0, 0.0),
    (0.7, 5, 1.0, 0.0),
    (1.3, 0, 0.8, 0.0),
    (1.0, 0, 1.0, 0.1),
    (0.9, 40, 0.9, 0.02),
    (1.0, 2**31 - 1, 0.5, 0.0),
    (2.0, 1, 1.0, 0.0),
    (0.5, 3, 0.3, 0.3),
]


def batch_params(rows=ROW_PARAMS):
    temps, top_ks, top_ps, min_ps = zip(*rows, strict=True)
    return (
        torch.tensor(temps),
        torch.tensor(top_ks, dtype=torch.int64),
        torch.tensor(top_ps),
        torch.tensor(min_ps),
    )


def random_logits(batch: int, vocab_size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(batch, vocab_size, generator=gen)


def uniforms(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, generator=torch.Generator().manual_seed(seed))


def kept_tokens_by_loop(logits, temperature, top_k, top_p, min_p) -> set[int]:
    """The tokens a row may emit, spelled out the slow way (runtime semantics)."""
    probs = torch.softmax(logits / temperature, dim=-1).tolist()
    ranked = sorted(range(len(probs)), key=lambda t: (-probs[t], t))
    if 0 < top_k < len(probs):
        kth = probs[ranked[top_k - 1]]
        ranked = [t for t in ranked if probs[t] >= kth]
    total, kept, above = sum(probs[t] for t in ranked), [], 0.0
    for t in ranked:
        if top_p < 1 and kept and above / total >= top_p:
            break
        kept.append(t)
        above += probs[t]
    return {t for t in kept if probs[t] >= min_p * probs[ranked[0]] and probs[t] > 0}


def kept_tokens(logits, temperatures, top_ks, top_ps, min_ps) -> list[set[int]]:
    sorted_probs, order = sort_probs(logits, temperatures)
    counts = num_kept(sorted_probs, top_ks, top_ps, min_ps)
    return [set(order[b, : int(n)].tolist()) for b, n in enumerate(counts)]


def test_kept_set_matches_slow_loop():
    logits = random_logits(len(ROW_PARAMS), 50)
    params = batch_params()
    sampled_rows = [b for b, row in enumerate(ROW_PARAMS) if row[0] > 0]
    kept = kept_tokens(logits, *params)
    for b in sampled_rows:
        assert kept[b] == kept_tokens_by_loop(logits[b], *ROW_PARAMS[b])


def test_kept_set_matches_runtime_filtered_probs():
    logits = random_logits(len(ROW_PARAMS), 300, seed=1)
    params = [
        SamplingParams(temperature=t, top_k=k if 0 < k < 2**31 - 1 else None, top_p=p, min_p=m)
        for t, k, p, m in ROW_PARAMS
    ]
    batch = SamplingBatch.prepare(params, [[]] * len(params), [[]] * len(params), "cpu")
    runtime_kept = filtered_probs(logits, batch) > 0
    kept = kept_tokens(logits, *batch_params())
    for b, row in enumerate(ROW_PARAMS):
        if row[0] > 0:
            assert kept[b] == set(runtime_kept[b].nonzero()[:, 0].tolist())


def on(device, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(device) for t in tensors]


@pytest.mark.parametrize("sample", [sample_tokens, triton_sample_tokens], ids=["torch", "triton"])
def test_never_emits_excluded_tokens(sample, device):
    logits, *params = on(device, random_logits(len(ROW_PARAMS), 64, seed=2), *batch_params())
    kept = kept_tokens(logits, *params)
    edge = torch.tensor([0.0, 1 - 2**-24, 0.5])
    draws = [edge[i % 3].repeat(len(ROW_PARAMS)) for i in range(3)]
    draws += [uniforms(len(ROW_PARAMS), seed) for seed in range(10)]
    for u in draws:
        tokens = sample(logits, *params, u.to(device))
        assert tokens.dtype == torch.int64
        for b, token in enumerate(tokens.tolist()):
            assert token in kept[b] or ROW_PARAMS[b][0] == 0


@pytest.mark.parametrize("sample", [sample_tokens, triton_sample_tokens], ids=["torch", "triton"])
def test_masked_tokens_never_come_even_with_wide_filters(sample, device):
    logits = random_logits(3, 40, seed=3)
    logits[:, 5:] = float("-inf")
    top_ks = torch.tensor([0, 30, 39])
    params = on(device, logits, torch.ones(3), top_ks, torch.ones(3), torch.zeros(3))
    for u in (torch.zeros(3), torch.full((3,), 1 - 2**-24), uniforms(3, 0)):
        assert (sample(*params, u.to(device)) < 5).all()


def test_greedy_and_top_k_1_rows_take_the_argmax_whatever_the_uniform():
    logits = random_logits(4, 30, seed=4)
    logits[0, [3, 7]] = 50.0  # a tie: the lowest id wins
    temps, top_ks = torch.tensor([0.0, 0.0, 1.0, 0.8]), torch.tensor([0, 0, 1, 1])
    expected = logits.argmax(dim=-1)
    assert expected[0] == 3
    for seed in range(3):
        u = uniforms(4, seed)
        tokens = sample_tokens(logits, temps, top_ks, torch.ones(4), torch.zeros(4), u)
        assert torch.equal(tokens, expected)


def test_inverse_cdf_frequencies_follow_the_kept_probabilities():
    logits = random_logits(1, 12, seed=5)
    temp, top_k, top_p, min_p = (
        torch.tensor([1.0]),
        torch.tensor([6]),
        torch.tensor([0.9]),
        torch.zeros(1),
    )
    num_draws = 4000
    u = (torch.arange(num_draws) + 0.5) / num_draws
    repeat = [t.repeat(num_draws) for t in (temp, top_k, top_p, min_p)]
    tokens = sample_tokens(logits.repeat(num_draws, 1), *repeat, u)
    sorted_probs, order = sort_probs(logits, temp)
    count = int(num_kept(sorted_probs, top_k, top_p, min_p))
    kept_probs = sorted_probs[0, :count] / sorted_probs[0, :count].sum()
    frequency = torch.bincount(tokens, minlength=12)[order[0, :count]].float() / num_draws
    torch.testing.assert_close(frequency, kept_probs, atol=2 / num_draws, rtol=0)


@pytest.mark.parametrize("vocab_size", [1, 7, 1000, 32001])
def test_triton_equals_reference(vocab_size, device):
    logits = random_logits(len(ROW_PARAMS), vocab_size, seed=vocab_size)
    logits, *params = on(device, logits, *batch_params())
    for seed in range(3):
        u = uniforms(len(ROW_PARAMS), seed).to(device)
        expected = sample_tokens(logits, *params, u)
        assert torch.equal(triton_sample_tokens(logits, *params, u), expected)
