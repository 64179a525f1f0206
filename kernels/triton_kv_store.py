"""Triton KV write: scatter new tokens' keys and values into their pool slots.

Grid ``(T,)``: program t copies token t's whole ``[Hkv, D]`` key and value rows (one
``[BLOCK_H, BLOCK_D]`` tile each, padded to powers of two and masked) into slot ``loc[t]``
of ``k_buffer``/``v_buffer``, casting to the pool dtype. Same contract as
:func:`sglc.kernels.kv_store.store_kv`.

A quantized pool (`kv_quant`) takes another kernel, launched for K and then for V with grid
``(T,)``: program t sees token t's flattened ``Hkv * D`` row as a ``[BLOCK_G, GROUP]`` tile,
one group a row, takes each group's min and max, rounds scale and zero to float16 and writes
the codes (two a byte for int4: a group's even and odd values are loaded as two halves).
It computes exactly what `kv_quant.quantize` does: the same float16 rounding, division and
round-half-to-even.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.kv_quant import KVBuffer, QuantizedKV
from sglc.kernels.kv_store import check_store
from sglc.kernels.triton_common import (
    check_launchable,
    next_power_of_2,
    require_unit_last_stride,
    store_dtype,
)


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


def triton_store_kv(k_buffer: KVBuffer, v_buffer: KVBuffer, loc: Tensor, k: Tensor,
                    v: Tensor) -> None:
    """Write ``k``/``v`` ``[T, Hkv, D]`` into slots ``loc`` (int ``[T]``) of the pool, in place.

    ``k_buffer``/``v_buffer`` are ``[num_slots, Hkv, D]`` (any strides); values are cast to
    the buffer dtype, or quantized for a quantized pool. Slots in ``loc`` must be distinct (a
    repeated slot keeps an unspecified one of its writes).
    """
    check_store(k_buffer, loc, k, v)
    if k_buffer.shape != v_buffer.shape:
        raise ValueError(f"K pool {tuple(k_buffer.shape)} and V pool {tuple(v_buffer.shape)} "
                         "differ")
    if isinstance(k_buffer, QuantizedKV) and isinstance(v_buffer, QuantizedKV):
        _store_quantized(k_buffer, v_buffer, loc, k, v)
        return
    if isinstance(k_buffer, QuantizedKV) or isinstance(v_buffer, QuantizedKV):
        raise ValueError("the K and V pools must both be quantized or neither")
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


def _store_quantized(k_buffer: QuantizedKV, v_buffer: QuantizedKV, loc: Tensor, k: Tensor,
                     v: Tensor) -> None:
    if (k_buffer.bits, k_buffer.group_size) != (v_buffer.bits, v_buffer.group_size):
        raise ValueError("the K and V pools must be quantized alike")
    parts = [p for b in (k_buffer, v_buffer) for p in (b.data, b.scales, b.zeros)]
    require_unit_last_stride(*parts)
    if any(b.scales.stride(0) != b.zeros.stride(0) for b in (k_buffer, v_buffer)):
        raise ValueError("a quantized pool's scales and zeros must share one layout")
    check_launchable(_store_quantized_kernel, *parts, loc, k, v)
    num_tokens, num_heads, head_dim = k.shape
    if num_tokens == 0:
        return
    group = k_buffer.group_size
    num_groups = num_heads * head_dim // group
    for buffer, x in ((k_buffer, k), (v_buffer, v)):
        _store_quantized_kernel[(num_tokens,)](
            x, loc, buffer.data, buffer.scales, buffer.zeros,
            *x.stride(), buffer.data.stride(0), buffer.scales.stride(0), head_dim, num_groups,
            BITS=buffer.bits, GROUP=group, BLOCK_G=next_power_of_2(num_groups),
        )  # fmt: skip


@triton.jit
def _store_quantized_kernel(
    x, loc, data, scales, zeros,
    stride_tok, stride_head, stride_dim, stride_data_slot, stride_param_slot,
    head_dim, num_groups,
    BITS: tl.constexpr, GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
):  # fmt: skip
    token = tl.program_id(0).to(tl.int64)
    slot = tl.load(loc + token).to(tl.int64)
    groups = tl.arange(0, BLOCK_G)
    is_group = groups < num_groups
    src = x + token * stride_tok
    levels = (1 << BITS) - 1
    if BITS == 8:
        values = groups[:, None] * GROUP + tl.arange(0, GROUP)[None, :]
        x = _load_row_values(src, values, is_group, head_dim, stride_head, stride_dim)
        zero, scale = _group_params(tl.min(x, 1), tl.max(x, 1), levels)
        codes = _codes(x, zero, scale, levels)
        tl.store(data + slot * stride_data_slot + values, codes, mask=is_group[:, None])
    else:  # int4: even values in the low nibble, odd in the high one
        pairs = groups[:, None] * GROUP + 2 * tl.arange(0, GROUP // 2)[None, :]
        even = _load_row_values(src, pairs, is_group, head_dim, stride_head, stride_dim)
        odd = _load_row_values(src, pairs + 1, is_group, head_dim, stride_head, stride_dim)
        lo = tl.minimum(tl.min(even, 1), tl.min(odd, 1))
        hi = tl.maximum(tl.max(even, 1), tl.max(odd, 1))
        zero, scale = _group_params(lo, hi, levels)
        packed = _codes(even, zero, scale, levels) | (_codes(odd, zero, scale, levels) << 4)
        tl.store(data + slot * stride_data_slot + pairs // 2, packed, mask=is_group[:, None])
    params = slot * stride_param_slot + groups
    tl.store(scales + params, scale, mask=is_group)
    tl.store(zeros + params, zero, mask=is_group)


@triton.jit
def _load_row_values(src, values, is_group, head_dim, stride_head, stride_dim):
    """Values at positions `values` of a token's flattened ``[Hkv, D]`` row, as float32."""
    ptrs = src + (values // head_dim) * stride_head + (values % head_dim) * stride_dim
    return tl.load(ptrs, mask=is_group[:, None], other=0.0).to(tl.float32)


@triton.jit
def _group_params(lo, hi, levels):
    """Float16 (zero, scale) of groups spanning ``lo .. hi``, rounded as `kv_quant` does."""
    zero = lo.to(tl.float16, fp_downcast_rounding="rtne")
    span = hi - zero.to(tl.float32)
    scale = tl.math.div_rn(span, levels * 1.0).to(tl.float16, fp_downcast_rounding="rtne")
    return zero, scale


@triton.jit
def _codes(x, zero, scale, levels):
    """uint8 codes ``round((x - zero) / scale)`` (half to even), clamped to 0 .. levels."""
    step = scale.to(tl.float32)
    step = tl.where(step > 0, step, 1.0)  # a constant group keeps codes 0
    t = tl.math.div_rn(x - zero.to(tl.float32)[:, None], step[:, None])
    r = tl.floor(t + 0.5)
    r = tl.where((r - t == 0.5) & (r % 2 == 1), r - 1.0, r)  # ties go to the even code
    return tl.minimum(tl.maximum(r, 0.0), levels * 1.0).to(tl.uint8)
