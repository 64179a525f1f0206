"""Fused MoE: the reference against a per-token loop, the alignment, and Triton against both."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sglc.kernels.moe import fused_moe, moe_align  # noqa: E402
from sglc.kernels.triton_moe import triton_fused_moe  # noqa: E402

HIDDEN, INTERMEDIATE, NUM_EXPERTS = 48, 40, 6
# bf16: the interpreter rounds float32 -> bf16 toward zero (GPUs round to nearest); the bias
# of the rounded intermediates adds up over the second product.
TOLERANCE = {
    torch.float32: {"rtol": 1e-4, "atol": 1e-4},
    torch.bfloat16: {"rtol": 3e-2, "atol": 8e-2},
}


def moe_case(topk_ids: list[list[int]], dtype: torch.dtype, seed: int = 0, device="cpu"):
    """x, w13, w2 and softmax routing weights for the given (uneven) expert choices."""
    gen = torch.Generator().manual_seed(seed)
    num_tokens, top_k = len(topk_ids), len(topk_ids[0])
    x = torch.randn(num_tokens, HIDDEN, generator=gen).to(dtype)
    w13 = (torch.randn(NUM_EXPERTS, 2 * INTERMEDIATE, HIDDEN, generator=gen) / 4).to(dtype)
    w2 = (torch.randn(NUM_EXPERTS, HIDDEN, INTERMEDIATE, generator=gen) / 4).to(dtype)
    weights = torch.softmax(torch.randn(num_tokens, top_k, generator=gen), dim=-1)
    return [t.to(device) for t in (x, w13, w2, torch.tensor(topk_ids), weights)]


def skewed_topk_ids(num_tokens: int) -> list[list[int]]:
    """Expert 0 takes most tokens, expert 4 a few, experts 2 and 5 none (top-2 routing)."""
    return [[0, 1 if t % 2 else 3] if t % 5 else [4, 0] for t in range(num_tokens)]


def per_token_loop(x, w13, w2, topk_ids, topk_weights) -> torch.Tensor:
    """Plain float32 math, one token and one expert at a time."""
    out = torch.zeros(x.shape[0], HIDDEN)
    for t in range(x.shape[0]):
        for expert, weight in zip(topk_ids[t].tolist(), topk_weights[t].tolist(), strict=True):
            gate, up = (w13[expert].float() @ x[t].float()).chunk(2)
            out[t] += weight * (w2[expert].float() @ (F.silu(gate) * up))
    return out


CASES = {
    "skewed-top2": skewed_topk_ids(21),
    "single-token": [[3, 1]],
    "top1": [[5], [5], [0], [5]],
    "top3-runs-over-two-blocks": [[1, 2, 3]] * 17,
}


@pytest.mark.parametrize("topk_ids", CASES.values(), ids=CASES.keys())
def test_reference_matches_per_token_loop(topk_ids):
    case = moe_case(topk_ids, torch.float32)
    torch.testing.assert_close(fused_moe(*case), per_token_loop(*case), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("topk_ids", CASES.values(), ids=CASES.keys())
def test_triton_matches_reference(topk_ids, dtype, device):
    case = moe_case(topk_ids, dtype, seed=1, device=device)
    out = triton_fused_moe(*case)
    assert out.dtype == dtype and out.shape == (len(topk_ids), HIDDEN)
    torch.testing.assert_close(out, fused_moe(*case), **TOLERANCE[dtype])


def test_triton_with_larger_blocks(device):
    case = moe_case(skewed_topk_ids(9), torch.float32, seed=2, device=device)
    torch.testing.assert_close(
        triton_fused_moe(*case, block_size=32), fused_moe(*case), **TOLERANCE[torch.float32]
    )


@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_moe_align_groups_slots_by_expert_in_padded_blocks(block_size):
    topk_ids = torch.tensor(skewed_topk_ids(21))
    num_slots = topk_ids.numel()
    flat = topk_ids.flatten()
    sorted_slots, block_experts, offsets = moe_align(topk_ids, NUM_EXPERTS, block_size)
    assert sorted_slots.numel() == block_experts.numel() * block_size
    real = sorted_slots[sorted_slots < num_slots]
    assert sorted(real.tolist()) == list(range(num_slots))
    for expert in range(NUM_EXPERTS):
        run = sorted_slots[offsets[expert] : offsets[expert + 1]]
        expected = (flat == expert).nonzero()[:, 0]
        assert torch.equal(run[: expected.numel()], expected)  # stable: ascending slots
        assert (run[expected.numel() :] == num_slots).all()
        assert run.numel() == -(-expected.numel() // block_size) * block_size
        blocks = block_experts[offsets[expert] // block_size : offsets[expert + 1] // block_size]
        assert (blocks == expert).all()
    assert (block_experts[offsets[-1] // block_size :] == -1).all()


def test_moe_align_skips_experts_without_tokens():
    _, block_experts, offsets = moe_align(torch.tensor([[1, 0], [1, 3]]), 4, 4)
    assert offsets.tolist() == [0, 4, 8, 8, 12]
    assert block_experts.tolist() == [0, 1, 3, -1]
