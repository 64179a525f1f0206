"""Triton top-k/top-p/min-p filtering and inverse-CDF draw; contract of ``sample_tokens``.

Softmax, the sort and the greedy argmax stay in torch (:mod:`sglc.kernels.sampling`); the
kernel replaces ``pick_sorted_index``: one program per row walks the sorted probabilities in
chunks, so any vocabulary size fits. Passes over the row (the kept set is a prefix, so the
later passes stop at it):

    1. counts: num_k (>= k-th prob), num_min (>= min_p * p[0]), num_pos (> 0), mass_k
    2. running cumsum over the first num_k: num_p (skipped when top_p >= 1)
    3. mass of the kept prefix
    4. running cumsum over the kept prefix: the drawn index
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.sampling import choose_tokens, sort_probs

_BLOCK = 1024


@triton.jit
def _count_pass(row_ptr, vocab_size, kth, min_p_threshold, BLOCK: tl.constexpr):
    """num_k, num_min, num_pos and mass_k (the mass of the probs >= kth) in one sweep."""
    num_at_least_kth = tl.zeros((), dtype=tl.int32)
    num_min = tl.zeros((), dtype=tl.int32)
    num_pos = tl.zeros((), dtype=tl.int32)
    mass_k = tl.zeros((), dtype=tl.float32)
    for start in range(0, vocab_size, BLOCK):
        positions = start + tl.arange(0, BLOCK)
        probs = tl.load(row_ptr + positions, mask=positions < vocab_size, other=-1.0)
        at_least_kth = probs >= kth
        num_at_least_kth += tl.sum(at_least_kth.to(tl.int32), axis=0)
        num_min += tl.sum((probs >= min_p_threshold).to(tl.int32), axis=0)
        num_pos += tl.sum((probs > 0).to(tl.int32), axis=0)
        mass_k += tl.sum(tl.where(at_least_kth, probs, 0.0), axis=0)
    return num_at_least_kth, num_min, num_pos, mass_k


@triton.jit
def _count_cumulative(row_ptr, length, threshold, INCLUSIVE: tl.constexpr, BLOCK: tl.constexpr):
    """#{j < length : cum[j] < threshold} (or ``<=`` when INCLUSIVE), cum the running sum."""
    count = tl.zeros((), dtype=tl.int32)
    carry = tl.zeros((), dtype=tl.float32)
    for start in range(0, length, BLOCK):
        positions = start + tl.arange(0, BLOCK)
        in_prefix = positions < length
        probs = tl.load(row_ptr + positions, mask=in_prefix, other=0.0)
        cumulative = carry + tl.cumsum(probs, axis=0)
        if INCLUSIVE:
            hit = cumulative <= threshold
        else:
            hit = cumulative < threshold
        count += tl.sum((hit & in_prefix).to(tl.int32), axis=0)
        carry += tl.sum(probs, axis=0)
    return count


@triton.jit
def _prefix_mass(row_ptr, length, BLOCK: tl.constexpr):
    mass = tl.zeros((), dtype=tl.float32)
    for start in range(0, length, BLOCK):
        positions = start + tl.arange(0, BLOCK)
        mass += tl.sum(tl.load(row_ptr + positions, mask=positions < length, other=0.0), axis=0)
    return mass


@triton.jit
def _pick_sorted_index_kernel(
    sorted_probs_ptr,
    top_ks_ptr,
    top_ps_ptr,
    min_ps_ptr,
    uniforms_ptr,
    out_ptr,
    vocab_size,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    row_ptr = sorted_probs_ptr + row * vocab_size
    top_k = tl.load(top_ks_ptr + row).to(tl.int64)
    top_p = tl.load(top_ps_ptr + row).to(tl.float32)
    is_top_k = (top_k > 0) & (top_k < vocab_size)
    # Without a top-k filter the "k-th" is the smallest prob, so every token counts.
    kth = tl.load(row_ptr + tl.where(is_top_k, top_k - 1, vocab_size - 1))
    min_p_threshold = tl.load(min_ps_ptr + row).to(tl.float32) * tl.load(row_ptr)

    num_k, num_min, num_pos, mass_k = _count_pass(row_ptr, vocab_size, kth, min_p_threshold, BLOCK)
    num_keep = tl.minimum(tl.minimum(num_k, num_min), num_pos)
    if top_p < 1.0:
        num_p = 1 + _count_cumulative(row_ptr, num_k - 1, top_p * mass_k, False, BLOCK)
        num_keep = tl.minimum(num_keep, num_p)

    target = tl.load(uniforms_ptr + row).to(tl.float32) * _prefix_mass(row_ptr, num_keep, BLOCK)
    index = _count_cumulative(row_ptr, num_keep, target, True, BLOCK)
    tl.store(out_ptr + row, tl.minimum(index, num_keep - 1).to(tl.int64))


def triton_pick_sorted_index(
    sorted_probs: Tensor, top_ks: Tensor, top_ps: Tensor, min_ps: Tensor, uniforms: Tensor
) -> Tensor:
    """Same contract as the reference ``pick_sorted_index``; ``sorted_probs`` float32."""
    batch, vocab_size = sorted_probs.shape
    out = torch.empty(batch, dtype=torch.int64, device=sorted_probs.device)
    if batch == 0:
        return out
    _pick_sorted_index_kernel[(batch,)](
        sorted_probs.float().contiguous(),
        top_ks.contiguous(),
        top_ps.float().contiguous(),
        min_ps.float().contiguous(),
        uniforms.float().contiguous(),
        out,
        vocab_size,
        BLOCK=min(_BLOCK, triton.next_power_of_2(vocab_size)),
    )
    return out


def triton_sample_tokens(
    logits: Tensor,
    temperatures: Tensor,
    top_ks: Tensor,
    top_ps: Tensor,
    min_ps: Tensor,
    uniforms: Tensor,
) -> Tensor:
    """Same contract as the reference ``sample_tokens`` (see :mod:`sglc.kernels.sampling`)."""
    sorted_probs, order = sort_probs(logits, temperatures)
    sorted_index = triton_pick_sorted_index(sorted_probs, top_ks, top_ps, min_ps, uniforms)
    return choose_tokens(logits, temperatures, order, sorted_index)
