"""Batched sampler: greedy, penalties, filtering, seeds, logprobs."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from sglc.runtime.core import SamplingParams
from sglc.runtime.sampling import (
    SamplingBatch,
    apply_penalties,
    filtered_probs,
    sample,
    seed_for_step,
)


def prepare(
    params: list[SamplingParams],
    prompts: list[list[int]] | None = None,
    outputs: list[list[int]] | None = None,
) -> SamplingBatch:
    prompts = prompts if prompts is not None else [[] for _ in params]
    outputs = outputs if outputs is not None else [[] for _ in params]
    return SamplingBatch.prepare(params, prompts, outputs, "cpu")


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# --- greedy ---------------------------------------------------------------------------


def test_all_greedy_batch_takes_argmax() -> None:
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(0))
    params = [SamplingParams(temperature=0.0), SamplingParams(temperature=0.8, top_k=1)] * 3
    batch = prepare(params)
    assert batch.all_greedy
    assert sample(logits, batch).token_ids == logits.argmax(dim=-1).tolist()


def test_greedy_rows_in_a_mixed_batch_take_argmax_while_others_sample() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 50, generator=gen) * 0.1  # flat: sampled rows vary
    params = [SamplingParams(temperature=0.0), SamplingParams(temperature=1.0)] * 2
    batch = prepare(params)
    assert not batch.all_greedy
    draws = [sample(logits, batch, gen).token_ids for _ in range(20)]
    argmax = logits.argmax(dim=-1).tolist()
    assert all(d[0] == argmax[0] and d[2] == argmax[2] for d in draws)
    assert len({d[1] for d in draws}) > 5


def test_sample_leaves_the_logits_untouched() -> None:
    logits = torch.randn(2, 30, generator=torch.Generator().manual_seed(2))
    before = logits.clone()
    params = [
        SamplingParams(temperature=0.5, top_p=0.8, repetition_penalty=1.5, frequency_penalty=1.0),
        SamplingParams(temperature=0.0, min_p=0.1, presence_penalty=0.5),
    ]
    sample(logits, prepare(params, [[1, 2], [3]], [[4, 4], [5]]))
    assert torch.equal(logits, before)


# --- penalties ------------------------------------------------------------------------


def test_repetition_penalty_matches_transformers_processor() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 30, generator=gen) * 3  # both signs
    penalties = [1.3, 0.7, 1.0, 2.0]
    prompts = [[1, 2, 3], [4, 4, 5, 29], [6], [0, 7, 8, 9]]
    outputs = [[3, 10], [], [11, 12], [7, 7, 7]]
    # Make a penalized token the raw argmax in row 0 and row 3 so the penalty matters.
    logits[0, 10] = logits[0].max() + 0.1
    logits[3, 7] = logits[3].max() + 0.1
    params = [SamplingParams(temperature=0.0, repetition_penalty=p) for p in penalties]
    batch = prepare(params, prompts, outputs)
    expected = torch.cat(
        [
            RepetitionPenaltyLogitsProcessor(p)(torch.tensor([pr + out]), logits[i : i + 1])
            for i, (p, pr, out) in enumerate(zip(penalties, prompts, outputs, strict=True))
        ]
    )
    assert torch.equal(apply_penalties(logits, batch), expected)
    tokens = sample(logits, batch).token_ids
    assert tokens == expected.argmax(dim=-1).tolist()
    assert tokens[0] != 10 and tokens[3] != 7


def test_greedy_with_repetition_penalty_reproduces_transformers_generate() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).eval()
    prompt = [1, 5, 9, 5]
    hf_kwargs = dict(do_sample=False, max_new_tokens=12, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        hf = model.generate(torch.tensor([prompt]), repetition_penalty=1.5, **hf_kwargs)
        hf_plain = model.generate(torch.tensor([prompt]), **hf_kwargs)
        params = SamplingParams(temperature=0.0, repetition_penalty=1.5)
        output: list[int] = []
        for _ in range(12):
            logits = model(torch.tensor([prompt + output])).logits[:, -1]
            output += sample(logits, prepare([params], [prompt], [output])).token_ids
    assert output == hf[0, len(prompt) :].tolist()
    assert output != hf_plain[0, len(prompt) :].tolist()  # the penalty changed the text


def test_frequency_and_presence_penalties_count_generated_tokens_only() -> None:
    logits = torch.zeros(2, 6)
    params = [
        SamplingParams(frequency_penalty=0.5, presence_penalty=0.25),
        SamplingParams(frequency_penalty=-1.0, presence_penalty=0.0),
    ]
    batch = prepare(params, prompts=[[3, 1], [5]], outputs=[[1, 1, 2], [4, 4]])
    expected = torch.tensor(
        [
            [0.0, -(2 * 0.5 + 0.25), -(0.5 + 0.25), 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 2.0, 0.0],
        ]
    )
    assert torch.allclose(apply_penalties(logits, batch), expected)


def test_no_penalty_rows_are_left_alone_next_to_penalized_ones() -> None:
    logits = torch.randn(2, 10, generator=torch.Generator().manual_seed(4))
    params = [SamplingParams(repetition_penalty=2.0, presence_penalty=1.0), SamplingParams()]
    batch = prepare(params, [[1, 2], [1, 2]], [[3], [3]])
    assert batch.needs_penalties
    scores = apply_penalties(logits, batch)
    assert torch.equal(scores[1], logits[1])
    assert not torch.equal(scores[0], logits[0])


# --- logprobs -------------------------------------------------------------------------


def test_logprobs_come_from_log_softmax_of_the_raw_logits() -> None:
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(5))
    params = [
        SamplingParams(temperature=0.5, top_k=4, repetition_penalty=1.7, logprobs=3),
        SamplingParams(temperature=0.7),
        SamplingParams(temperature=0.0, frequency_penalty=2.0, logprobs=0),
    ]
    out = sample(logits, prepare(params, [[0, 1, 2]] * 3, [[3, 3]] * 3))
    raw = torch.log_softmax(logits, dim=-1)
    first, second, third = out.logprobs
    assert second is None
    assert first is not None and third is not None
    assert first.token_id == out.token_ids[0]
    assert first.logprob == pytest.approx(raw[0, first.token_id].item())
    top_values, top_ids = raw[0].topk(3)
    assert [t for t, _ in first.top] == top_ids.tolist()
    assert [v for _, v in first.top] == pytest.approx(top_values.tolist())
    assert third.token_id == out.token_ids[2]
    assert third.logprob == pytest.approx(raw[2, third.token_id].item())
    assert third.top == ()


# --- seeds ----------------------------------------------------------------------------


def test_seeded_row_reproduces_alone_and_in_any_batch_and_order() -> None:
    vocab_size = 64
    seeded = SamplingParams(temperature=1.0, top_p=0.95, seed=1234)
    others = [
        SamplingParams(temperature=1.0),
        SamplingParams(temperature=0.0),
        SamplingParams(temperature=0.7, top_k=5, min_p=0.1, seed=7),
        SamplingParams(temperature=1.3, top_p=0.5, repetition_penalty=1.2),
    ]
    gen = torch.Generator().manual_seed(6)
    row_logits = torch.randn(10, vocab_size, generator=gen) * 0.5
    rng = random.Random(0)
    alone_tokens = []
    for step in range(10):
        history = [rng.randrange(vocab_size) for _ in range(step)]
        alone = sample(row_logits[step : step + 1], prepare([seeded], [[1, 2]], [history]))
        alone_tokens.append(alone.token_ids[0])
        for trial in range(3):
            rows = [seeded, *others]
            order = list(range(len(rows)))
            rng.shuffle(order)
            logits = torch.randn(len(rows), vocab_size, generator=gen)
            logits[0] = row_logits[step]
            # A different history of the same length, other prompts, other RNG states.
            outputs = [[rng.randrange(vocab_size) for _ in range(step)] for _ in rows]
            prompts = [[rng.randrange(vocab_size)] for _ in rows]
            torch.manual_seed(trial)
            batch = prepare(
                [rows[i] for i in order], [prompts[i] for i in order], [outputs[i] for i in order]
            )
            generator = torch.Generator().manual_seed(100 + trial) if trial else None
            tokens = sample(logits[order], batch, generator).token_ids
            assert tokens[order.index(0)] == alone_tokens[step]
    assert len(set(alone_tokens)) > 3
    # Same logits, different step: a different draw (the step is mixed into the seed).
    same_logits = [
        sample(row_logits[:1], prepare([seeded], [[]], [[0] * step])).token_ids[0]
        for step in range(10)
    ]
    assert len(set(same_logits)) > 3


def test_different_seeds_give_different_tokens() -> None:
    logits = torch.zeros(1, 1000)
    tokens = {
        seed: sample(logits, prepare([SamplingParams(seed=seed)])).token_ids[0]
        for seed in range(20)
    }
    assert len(set(tokens.values())) > 15


def test_seed_for_step_mixes_seed_and_step() -> None:
    mixed = {seed_for_step(seed, step) for seed in (-1, 0, 1, 2**40) for step in range(50)}
    assert len(mixed) == 200
    assert all(0 <= x < 2**63 for x in mixed)


# --- filtering ------------------------------------------------------------------------


def reference_partition(logits: list[float], params: SamplingParams) -> tuple[set[int], set[int]]:
    """(surely kept, surely dropped) tokens, in float64; tokens near a threshold are neither."""
    eps = 1e-4
    vocab_size = len(logits)
    if params.is_greedy:
        best = max(logits)
        return {i for i, x in enumerate(logits) if x == best}, {
            i for i, x in enumerate(logits) if x != best
        }
    scaled = [x / params.temperature for x in logits]
    top = max(scaled)
    weights = [math.exp(x - top) for x in scaled]
    probs = [w / sum(weights) for w in weights]
    order = sorted(range(vocab_size), key=lambda i: (-probs[i], i))
    k = min(params.top_k or vocab_size, vocab_size)
    kth = probs[order[k - 1]]
    kept_k = {i for i in range(vocab_size) if probs[i] >= kth}
    total = sum(probs[i] for i in kept_k)
    kept, dropped, mass_above = set(), set(range(vocab_size)) - kept_k, 0.0
    for i in order:
        if i not in kept_k:
            continue
        above = mass_above / total
        ratio = probs[i] / probs[order[0]]
        mass_above += probs[i]
        if (params.top_p < 1 and above >= params.top_p + eps) or ratio < params.min_p - eps:
            dropped.add(i)
        elif (params.top_p == 1 or above < params.top_p - eps) and ratio >= params.min_p + eps:
            kept.add(i)
    return kept, dropped


row_params = st.builds(
    SamplingParams,
    temperature=st.sampled_from([0.0, 0.3, 0.7, 1.0, 1.5]),
    top_k=st.none() | st.integers(1, 12),
    top_p=st.sampled_from([1.0]) | st.floats(0.05, 1.0),
    min_p=st.sampled_from([0.0]) | st.floats(0.0, 0.9),
)
batch_rows = st.integers(2, 12).flatmap(
    lambda vocab_size: st.lists(
        st.tuples(
            row_params,
            st.lists(
                st.integers(-8, 8).map(lambda x: x * 0.5),
                min_size=vocab_size,
                max_size=vocab_size,
            ),
        ),
        min_size=1,
        max_size=3,
    )
)


@settings(max_examples=80, deadline=None)
@given(rows=batch_rows, seed=st.integers(0, 2**32))
def test_filtered_tokens_have_zero_probability_and_are_never_drawn(
    rows: list[tuple[SamplingParams, list[float]]], seed: int
) -> None:
    copies = 64  # draws per row config, all in one batched call, interleaved
    order = [i % len(rows) for i in range(copies * len(rows))]
    batch = prepare([rows[i][0] for i in order])
    logits = torch.tensor([rows[i][1] for i in order])
    probs = filtered_probs(apply_penalties(logits, batch), batch)
    tokens = torch.tensor(sample(logits, batch, torch.Generator().manual_seed(seed)).token_ids)
    for row_index, (params, row) in enumerate(rows):
        kept, dropped = reference_partition(row, params)
        copies_of_row = torch.tensor(order) == row_index
        assert not torch.isin(tokens[copies_of_row], torch.tensor(sorted(dropped))).any()
        if not params.is_greedy:
            row_probs = probs[copies_of_row]
            assert (row_probs[:, sorted(dropped)] == 0).all()
            assert (row_probs[:, sorted(kept)] > 0).all()


@pytest.mark.parametrize("other_row", [SamplingParams(), SamplingParams(top_p=0.9)])
def test_top_k_keeps_the_k_largest_and_ties_at_the_kth(other_row: SamplingParams) -> None:
    # other_row with top_p sends the whole batch through the sorting path.
    logits = torch.tensor(
        [[3.0, 2.9, 2.8, 1.0, 0.0, -1.0], [3.0, 2.0, 2.0, 1.0, 0.0, -1.0], [0.0] * 6]
    )
    params = [SamplingParams(top_k=2), SamplingParams(top_k=2), other_row]
    batch = prepare(params)
    kept = filtered_probs(apply_penalties(logits, batch), batch) > 0
    assert kept[0].nonzero().flatten().tolist() == [0, 1]
    assert kept[1].nonzero().flatten().tolist() == [0, 1, 2]  # ties kept, as HF does


def test_temperature_sampling_follows_the_softmax() -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    expected = torch.softmax(logits / 0.7, dim=-1)
    num_draws = 20000
    batch = prepare([SamplingParams(temperature=0.7)] * num_draws)
    tokens = sample(logits.expand(num_draws, -1), batch, torch.Generator().manual_seed(8))
    counts = torch.bincount(torch.tensor(tokens.token_ids), minlength=5).float()
    assert chi_square(counts, expected) < 30  # 4 degrees of freedom: p < 1e-5


def test_seeded_sampling_follows_the_softmax_across_seeds() -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    expected = torch.softmax(logits, dim=-1)
    num_draws = 4000
    batch = prepare([SamplingParams(seed=s) for s in range(num_draws)])
    tokens = sample(logits.expand(num_draws, -1), batch).token_ids
    counts = torch.bincount(torch.tensor(tokens), minlength=5).float()
    assert chi_square(counts, expected) < 30


def test_top_k_then_top_p_renormalizes_over_the_kept_tokens() -> None:
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -1.0])
    # Over the top_k=4 survivors the mass above token 3 is .90 >= .85, so top_p drops it;
    # over all six tokens it would be .83 < .85 and token 3 would stay.
    kept = torch.softmax(logits[:3], dim=-1)
    num_draws = 20000
    batch = prepare([SamplingParams(temperature=1.0, top_k=4, top_p=0.85)] * num_draws)
    tokens = sample(logits.expand(num_draws, -1), batch, torch.Generator().manual_seed(9))
    counts = torch.bincount(torch.tensor(tokens.token_ids), minlength=6).float()
    assert counts[3:].sum() == 0
    assert chi_square(counts[:3], kept) < 25  # 2 degrees of freedom


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=0.7, top_k=10),
        SamplingParams(temperature=1.3, top_p=0.6),
        SamplingParams(temperature=1.0, min_p=0.2),
        SamplingParams(temperature=0.9, top_k=8, top_p=0.7),
        SamplingParams(temperature=1.5, top_k=20, top_p=0.9, min_p=0.1),
    ],
)
def test_kept_tokens_match_transformers_warpers(params: SamplingParams) -> None:
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(10)) * 2
    warpers = [TemperatureLogitsWarper(params.temperature)]
    if params.top_k is not None:
        warpers.append(TopKLogitsWarper(params.top_k))
    if params.top_p < 1:
        warpers.append(TopPLogitsWarper(params.top_p))
    if params.min_p > 0:
        warpers.append(MinPLogitsWarper(params.min_p))
    expected = logits
    for warper in warpers:
        expected = warper(None, expected)
    # Alone, and next to a row that sends the batch through the other filtering path.
    for other in (params, SamplingParams(top_p=0.5), SamplingParams(top_k=3)):
        batch = prepare([params] * 8 + [other])
        both = torch.cat([logits, logits[:1]])
        kept = filtered_probs(apply_penalties(both, batch), batch)[:8] > 0
        assert torch.equal(kept, torch.isfinite(expected))
    assert not torch.isfinite(expected).all()  # the filter did drop tokens


def test_prepare_flags_only_count_sampled_rows() -> None:
    batch = prepare([SamplingParams(temperature=0.0, top_p=0.5, top_k=3, min_p=0.2)] * 2)
    assert batch.all_greedy
    assert not (batch.needs_top_k or batch.needs_top_p or batch.needs_min_p)
    assert not batch.needs_penalties and not batch.needs_logprobs
    mixed = prepare([SamplingParams(top_k=3), SamplingParams(top_p=0.5, logprobs=1)])
    assert mixed.needs_top_k and mixed.needs_top_p and not mixed.needs_min_p
    assert mixed.max_top_k == 3 and mixed.needs_logprobs
