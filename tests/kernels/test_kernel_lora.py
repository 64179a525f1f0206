"""Segmented LoRA: the reference against dense per-row math, the Triton kernels against it."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from sglc.kernels.lora import NO_ADAPTER, lora_expand, lora_shrink  # noqa: E402
from sglc.kernels.triton_lora import triton_lora_expand, triton_lora_shrink  # noqa: E402

HIDDEN, OUT = 40, 48
RANKS = [8, 16, 64]  # adapters 0, 1, 2
SCALINGS = [2.0, 0.5, 0.25]
# (segment lengths, adapter per segment): mixed ranks, no-adapter and empty segments,
# a segment longer than one row block, a single token.
LAYOUTS = {
    "mixed": ([3, 2, 20, 1, 4], [2, NO_ADAPTER, 0, 1, 2]),
    "empty-segments": ([0, 5, 0, 3], [1, 0, NO_ADAPTER, 2]),
    "single-token": ([1], [1]),
    "no-adapters": ([4, 2], [NO_ADAPTER, NO_ADAPTER]),
}
TOLERANCE = {
    torch.float32: {"rtol": 1e-4, "atol": 1e-4},
    torch.bfloat16: {"rtol": 2e-2, "atol": 5e-2},
}


class LoraCase:
    """Random adapters padded to the max rank (padding filled with junk that must be ignored)."""

    def __init__(
        self,
        lengths: list[int],
        adapters: list[int],
        dtype: torch.dtype,
        seed: int = 0,
        device="cpu",
    ):
        gen = torch.Generator().manual_seed(seed)
        max_rank, num_adapters = max(RANKS), len(RANKS)
        self.num_tokens = sum(lengths)
        self.x = torch.randn(self.num_tokens, HIDDEN, generator=gen).to(dtype)
        self.a = (torch.randn(num_adapters, max_rank, HIDDEN, generator=gen) / 4).to(dtype)
        self.b = (torch.randn(num_adapters, OUT, max_rank, generator=gen) / 4).to(dtype)
        for adapter, rank in enumerate(RANKS):
            self.a[adapter, rank:] = 1e4
            self.b[adapter, :, rank:] = 1e4
        self.base = torch.randn(self.num_tokens, OUT, generator=gen).to(dtype)
        self.seg_indptr = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
        self.seg_adapter = torch.tensor(adapters, dtype=torch.int32)
        self.ranks = torch.tensor(RANKS, dtype=torch.int32)
        self.scalings = torch.tensor(SCALINGS)
        self.row_adapters = [a for a, n in zip(adapters, lengths, strict=True) for _ in range(n)]
        for name in ("x", "a", "b", "base", "seg_indptr", "seg_adapter", "ranks", "scalings"):
            setattr(self, name, getattr(self, name).to(device))

    @property
    def segments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.seg_indptr, self.seg_adapter, self.ranks


def dense_per_row(case: LoraCase) -> tuple[torch.Tensor, torch.Tensor]:
    """y and out one token at a time with plain matmuls."""
    y = torch.zeros(case.num_tokens, max(RANKS))
    out = case.base.float().clone()
    for t, adapter in enumerate(case.row_adapters):
        if adapter == NO_ADAPTER:
            continue
        rank = RANKS[adapter]
        y[t, :rank] = case.a[adapter, :rank].float() @ case.x[t].float()
        y_row = y[t, :rank].to(case.b.dtype).float()
        out[t] += SCALINGS[adapter] * (case.b[adapter, :, :rank].float() @ y_row)
    return y, out.to(case.base.dtype)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_reference_matches_dense_per_row(layout):
    case = LoraCase(*layout, torch.float32)
    y = lora_shrink(case.x, case.a, *case.segments)
    out = lora_expand(y, case.b, *case.segments, case.scalings, case.base)
    expected_y, expected_out = dense_per_row(case)
    torch.testing.assert_close(y, expected_y)
    torch.testing.assert_close(out, expected_out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_triton_matches_reference(layout, dtype, device):
    case = LoraCase(*layout, dtype, seed=1, device=device)
    y = triton_lora_shrink(case.x, case.a, *case.segments)
    expected_y = lora_shrink(case.x, case.a, *case.segments)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected_y, **TOLERANCE[torch.float32])
    out = triton_lora_expand(expected_y, case.b, *case.segments, case.scalings, case.base)
    expected_out = lora_expand(expected_y, case.b, *case.segments, case.scalings, case.base)
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected_out, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_rows_without_adapter_are_untouched(dtype, device):
    case = LoraCase(*LAYOUTS["mixed"], dtype, seed=2, device=device)
    y = triton_lora_shrink(case.x, case.a, *case.segments)
    out = triton_lora_expand(y, case.b, *case.segments, case.scalings, case.base)
    no_adapter = torch.tensor([a == NO_ADAPTER for a in case.row_adapters], device=device)
    assert (y[no_adapter] == 0).all()
    assert torch.equal(out[no_adapter], case.base[no_adapter])
    assert not torch.equal(out[~no_adapter], case.base[~no_adapter])


def test_expand_leaves_base_out_alone(device):
    case = LoraCase(*LAYOUTS["mixed"], torch.float32, device=device)
    base = case.base.clone()
    y = lora_shrink(case.x, case.a, *case.segments)
    for expand in (lora_expand, triton_lora_expand):
        expand(y, case.b, *case.segments, case.scalings, case.base)
        assert torch.equal(case.base, base)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_rank_zero_adapter_leaves_its_rows_alone(backend, device):
    # an adapter without weights for this projection (the pool gives it rank 0)
    shrink, expand = ((lora_shrink, lora_expand) if backend == "reference"
                      else (triton_lora_shrink, triton_lora_expand))
    case = LoraCase(*LAYOUTS["mixed"], torch.float32, seed=3, device=device)
    ranks = case.ranks.clone()
    ranks[2] = 0
    segments = (case.seg_indptr, case.seg_adapter, ranks)
    y = shrink(case.x, case.a, *segments)
    out = expand(y, case.b, *segments, case.scalings, case.base)
    of_two = torch.tensor([a == 2 for a in case.row_adapters], device=device)
    assert (y[of_two] == 0).all()
    assert torch.equal(out[of_two], case.base[of_two])
    full = lora_expand(lora_shrink(case.x, case.a, *case.segments), case.b, *case.segments,
                       case.scalings, case.base)
    torch.testing.assert_close(out[~of_two], full[~of_two], rtol=1e-4, atol=1e-4)
