"""Token bitmask: pack/unpack layout, the reference apply, and the Triton kernel against it."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from outlines_core import Guide, Index, Vocabulary  # noqa: E402

from sglc.kernels.bitmask import (  # noqa: E402
    apply_token_bitmask,
    num_mask_words,
    pack_allowed,
    unpack_bitmask,
)
from sglc.kernels.triton_bitmask import triton_apply_token_bitmask  # noqa: E402

APPLIERS = [apply_token_bitmask, triton_apply_token_bitmask]
APPLIER_IDS = ["torch", "triton"]


def random_allowed(
    batch: int, vocab_size: int, density: float = 0.3, seed: int = 0, device="cpu"
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, vocab_size, generator=gen) < density).to(device)


def random_logits(
    batch: int, vocab_size: int, dtype=torch.float32, seed: int = 1, device="cpu"
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, vocab_size, generator=gen).to(device=device, dtype=dtype)


def masked_by_loop(logits: torch.Tensor, allowed: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Plain per-element expectation: row rows[i] keeps exactly the tokens allowed[i] allows."""
    expected = logits.clone()
    for i, row in enumerate(rows):
        for token in range(logits.shape[1]):
            if not allowed[i, token]:
                expected[row, token] = float("-inf")
    return expected


def test_pack_layout_is_little_endian_per_word():
    allowed = torch.zeros(1, 70, dtype=torch.bool)
    allowed[0, [0, 31, 32, 69]] = True
    words = pack_allowed(allowed)
    assert words.dtype == torch.int32 and words.shape == (1, 3)
    assert words[0].tolist() == [1 - 2**31, 1, 1 << 5]


@pytest.mark.parametrize("vocab_size", [1, 31, 32, 33, 1000, 32001])
def test_pack_unpack_round_trip(vocab_size):
    allowed = random_allowed(3, vocab_size, density=0.5)
    words = pack_allowed(allowed)
    assert words.shape == (3, num_mask_words(vocab_size))
    assert torch.equal(unpack_bitmask(words, vocab_size), allowed)


def test_layout_matches_outlines_core_guide():
    tokens = {chr(ord("a") + i): [i] for i in range(26)} | {str(d): [26 + d] for d in range(10)}
    vocab = Vocabulary(36, tokens | {"ab": [37], "a1": [38]})
    guide = Guide(Index("a[0-9]+", vocab))
    guide.advance(0)
    words = torch.zeros(1, num_mask_words(39), dtype=torch.int32)
    guide.write_mask_into(words.data_ptr(), words.numel(), 4)
    expected = torch.zeros(1, 39, dtype=torch.bool)
    expected[0, guide.get_tokens()] = True
    assert torch.equal(unpack_bitmask(words, 39), expected)
    assert torch.equal(pack_allowed(expected), words)


def test_reference_matches_loop_on_small_vocab():
    allowed, logits = random_allowed(2, 45), random_logits(2, 45)
    apply = logits.clone()
    apply_token_bitmask(apply, pack_allowed(allowed))
    assert torch.equal(apply, masked_by_loop(logits, allowed, [0, 1]))


def test_reference_with_indices_matches_loop():
    allowed, logits = random_allowed(2, 40), random_logits(4, 40)
    apply = logits.clone()
    apply_token_bitmask(apply, pack_allowed(allowed), torch.tensor([3, 1]))
    assert torch.equal(apply, masked_by_loop(logits, allowed, [3, 1]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("batch, vocab_size", [(1, 1), (3, 33), (2, 1000), (2, 32001)])
def test_triton_matches_reference(batch, vocab_size, dtype, device):
    allowed = random_allowed(batch, vocab_size, device=device)
    allowed[:, 0] = True
    logits = random_logits(batch, vocab_size, dtype, device=device)
    expected, got = logits.clone(), logits.clone()
    apply_token_bitmask(expected, pack_allowed(allowed))
    triton_apply_token_bitmask(got, pack_allowed(allowed))
    assert torch.equal(got, expected)
    assert torch.equal(torch.isfinite(got), allowed)


@pytest.mark.parametrize("apply", APPLIERS, ids=APPLIER_IDS)
def test_indices_touch_only_their_rows(apply, device):
    allowed, logits = random_allowed(2, 100, device=device), random_logits(5, 100, device=device)
    got = logits.clone()
    apply(got, pack_allowed(allowed), torch.tensor([4, 0], dtype=torch.int32, device=device))
    assert torch.equal(torch.isfinite(got[[4, 0]]), allowed)
    assert torch.equal(got[1:4], logits[1:4])


@pytest.mark.parametrize("apply", APPLIERS, ids=APPLIER_IDS)
def test_bits_past_the_vocabulary_are_ignored(apply, device):
    words = torch.full((2, 2), -1, dtype=torch.int32, device=device)  # all 64 bits set
    words[1, 0] = 0
    logits = random_logits(2, 40, device=device)
    got = logits.clone()
    apply(got, words)
    assert torch.equal(got[0], logits[0])
    assert torch.isinf(got[1, :32]).all() and torch.equal(got[1, 32:], logits[1, 32:])


@pytest.mark.parametrize("apply", APPLIERS, ids=APPLIER_IDS)
def test_rejects_too_narrow_bitmask_and_row_mismatch(apply):
    with pytest.raises(ValueError, match="fewer than the vocabulary"):
        apply(torch.zeros(1, 65), torch.zeros(1, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="rows"):
        apply(torch.zeros(2, 64), torch.zeros(1, 2, dtype=torch.int32))
