"""Triton rotary embedding; contract of :func:`sglc.kernels.rope.apply_rope`.

Any scaling (linear, llama3) lives in the cos/sin cache that ``build_rope_cache`` builds, so
the kernel only reads row ``positions[t]`` of it and rotates pairs of elements.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _rope_kernel(
    x_ptr,
    out_ptr,
    positions_ptr,
    cache_ptr,
    num_heads,
    stride_token,
    stride_head,
    head_dim,
    half_rotary,
    IS_NEOX: tl.constexpr,
    BLOCK_HEADS: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    BLOCK_PASS: tl.constexpr,
):
    """One program per token: all its heads at once, ``[BLOCK_HEADS, BLOCK_HALF]`` pairs."""
    token = tl.program_id(0).to(tl.int64)
    position = tl.load(positions_ptr + token).to(tl.int64)
    pair = tl.arange(0, BLOCK_HALF)
    pair_mask = pair < half_rotary
    cache_row = cache_ptr + position * 2 * half_rotary
    cos = tl.load(cache_row + pair, mask=pair_mask, other=0.0).to(tl.float32)[None, :]
    sin = tl.load(cache_row + half_rotary + pair, mask=pair_mask, other=0.0).to(tl.float32)
    sin = sin[None, :]
    if IS_NEOX:
        first, second = pair, pair + half_rotary
    else:
        first, second = 2 * pair, 2 * pair + 1
    heads = tl.arange(0, BLOCK_HEADS)
    mask = (heads < num_heads)[:, None] & pair_mask[None, :]
    in_base = x_ptr + token * stride_token + heads[:, None] * stride_head
    out_base = out_ptr + (token * num_heads + heads[:, None]) * head_dim
    x1 = tl.load(in_base + first[None, :], mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(in_base + second[None, :], mask=mask, other=0.0).to(tl.float32)
    out_ty = out_ptr.dtype.element_ty
    tl.store(out_base + first[None, :], (x1 * cos - x2 * sin).to(out_ty), mask=mask)
    tl.store(out_base + second[None, :], (x2 * cos + x1 * sin).to(out_ty), mask=mask)
    # Dims past the rotary dim pass through unchanged.
    rest = 2 * half_rotary + tl.arange(0, BLOCK_PASS)
    rest_mask = (heads < num_heads)[:, None] & (rest < head_dim)[None, :]
    passed = tl.load(in_base + rest[None, :], mask=rest_mask, other=0.0)
    tl.store(out_base + rest[None, :], passed, mask=rest_mask)


def triton_apply_rope(
    q: Tensor, k: Tensor, positions: Tensor, cos_sin_cache: Tensor, *, is_neox: bool = True
) -> tuple[Tensor, Tensor]:
    """Rotate ``q[T, Hq, D]`` and ``k[T, Hk, D]`` by the angles of ``positions`` (``[T]``).

    Same contract as the reference ``apply_rope``: neox (rotate-half) or GPT-J (interleaved)
    pairs, rotary width R = the cache width (dims past R pass through), float32 math, new
    tensors in the input dtypes. q and k may be strided views (e.g. slices of a fused qkv).
    """
    positions = positions.contiguous()
    cache = cos_sin_cache.contiguous()
    return _rotate(q, positions, cache, is_neox), _rotate(k, positions, cache, is_neox)


def _rotate(x: Tensor, positions: Tensor, cache: Tensor, is_neox: bool) -> Tensor:
    if x.stride(-1) != 1:
        x = x.contiguous()
    num_tokens, num_heads, head_dim = x.shape
    rotary_dim = cache.shape[-1]
    out = torch.empty((num_tokens, num_heads, head_dim), dtype=x.dtype, device=x.device)
    if num_tokens == 0:
        return out
    _rope_kernel[(num_tokens,)](
        x,
        out,
        positions,
        cache,
        num_heads,
        x.stride(0),
        x.stride(1),
        head_dim,
        rotary_dim // 2,
        IS_NEOX=is_neox,
        BLOCK_HEADS=triton.next_power_of_2(num_heads),
        BLOCK_HALF=triton.next_power_of_2(rotary_dim // 2),
        BLOCK_PASS=triton.next_power_of_2(max(head_dim - rotary_dim, 1)),
    )
    return out
