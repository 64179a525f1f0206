"""Triton KV write: scatter new tokens' keys and values into their pool slots.

Grid ``(T,)``: program t copies token t's whole ``[Hkv, D]`` key and value rows (one
``[BLOCK_H, BLOCK_D]`` tile each, padded to powers of two and masked) into slot ``loc[t]``
of ``k_buffer``/``v_buffer``, casting to the pool dtype. Same contract as
:func:`sglc.kernels.kv_store.store_kv`.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.triton_common import check_launchable, next_power_of_2, store_dtype


@triton.jit
def _store_kv_kernel(
    k_buffer, v_buffer, loc, k, v,
    stride_kb_slot, stride_kb_head, stride_kb_dim,
    stride_vb_slot, stride_vb_head, stride_vb_dim,
    stride_k_tok, stride_k_head, stride_k_dim,
    stride_v_tok, stride_v_head, stride_v_dim,
    num_heads, head_dim,
    BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    token = tl.program_id(0)
    slot = tl.load(loc + token).to(tl.int64)
    heads = tl.arange(0, BLOCK_H)[:, None]
    dims = tl.arange(0, BLOCK_D)[None, :]
    mask = (heads < num_heads) & (dims < head_dim)
    token = token.to(tl.int64)
    key = tl.load(k + token * stride_k_tok + heads * stride_k_head + dims * stride_k_dim, mask=mask)
    value = tl.load(
        v + token * stride_v_tok + heads * stride_v_head + dims * stride_v_dim, mask=mask
    )
    k_dst = k_buffer + slot * stride_kb_slot + heads * stride_kb_head + dims * stride_kb_dim
    v_dst = v_buffer + slot * stride_vb_slot + heads * stride_vb_head + dims * stride_vb_dim
    tl.store(k_dst, key.to(k_buffer.dtype.element_ty), mask=mask)
    tl.store(v_dst, value.to(v_buffer.dtype.element_ty), mask=mask)


def triton_store_kv(k_buffer: Tensor, v_buffer: Tensor, loc: Tensor, k: Tensor, v: Tensor) -> None:
    """Write ``k``/``v`` ``[T, Hkv, D]`` into slots ``loc`` (int ``[T]``) of the pool, in place.

    ``k_buffer``/``v_buffer`` are ``[num_slots, Hkv, D]`` (any strides); values are cast to
    the buffer dtype. Slots in ``loc`` must be distinct (a repeated slot keeps an unspecified
    one of its writes).
    """
    if (
        k.shape != v.shape or k_buffer.shape != v_buffer.shape
        or k.shape[1:] != k_buffer.shape[1:] or k.shape[0] != loc.shape[0]
    ):  # fmt: skip
        raise ValueError(
            f"k {tuple(k.shape)} / v {tuple(v.shape)} / loc {tuple(loc.shape)} do not fit "
            f"a pool of {tuple(k_buffer.shape)}"
        )
    check_launchable(_store_kv_kernel, k_buffer, v_buffer, loc, k, v)
    num_tokens, num_heads, head_dim = k.shape
    if num_tokens == 0:
        return
    if store_dtype(_store_kv_kernel, k_buffer.dtype) != k_buffer.dtype:
        # Under the interpreter, round with torch (see store_dtype) and copy the bits.
        k, v = k.to(k_buffer.dtype), v.to(v_buffer.dtype)
    _store_kv_kernel[(num_tokens,)](
        k_buffer, v_buffer, loc, k, v,
        *k_buffer.stride(), *v_buffer.stride(), *k.stride(), *v.stride(),
        num_heads, head_dim,
        BLOCK_H=next_power_of_2(num_heads), BLOCK_D=next_power_of_2(head_dim),
    )  # fmt: skip
