"""Helpers shared by the Triton attention and KV-store kernels: block sizes, devices, metadata.

The kernels run on CUDA tensors, or on CPU tensors under Triton's interpreter. The
interpreter is chosen when a kernel is *decorated* (``triton.jit`` reads
``TRITON_INTERPRET`` at import time), so the variable must be set before these modules are
imported; :func:`check_launchable` turns a mismatch into a clear error instead of a crash
deep inside Triton.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.attention_common import AttentionShape
from sglc.kernels.kv_quant import KVBuffer, QuantizedKV

# Smallest tile side `tl.dot` accepts; every dot operand dimension is padded up to it.
MIN_DOT_BLOCK = 16


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= ``n`` (1 for ``n <= 1``)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def dot_block(n: int) -> int:
    """A tile side covering ``n`` elements that `tl.dot` accepts: a power of two >= 16."""
    return max(MIN_DOT_BLOCK, next_power_of_2(n))


def is_interpreted(kernel: object) -> bool:
    """Whether ``kernel`` was decorated under ``TRITON_INTERPRET=1`` (runs on CPU tensors)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(kernel, InterpretedFunction)


def check_launchable(kernel: object, *tensors: Tensor) -> None:
    """Raise ValueError unless ``tensors`` are where ``kernel`` runs (CUDA; CPU if interpreted)."""
    interpreted = is_interpreted(kernel)
    for tensor in tensors:
        if interpreted and tensor.device.type != "cpu":
            raise ValueError(
                f"Triton interpreter kernels take CPU tensors, got one on {tensor.device}"
            )
        if not interpreted and tensor.device.type != "cuda":
            raise ValueError(
                f"Triton kernels need CUDA tensors, got one on {tensor.device}; for CPU set "
                "TRITON_INTERPRET=1 before importing the sglc.kernels.triton_* modules"
            )


def store_dtype(kernel: object, dtype: torch.dtype) -> torch.dtype:
    """The dtype ``kernel`` should write an output of ``dtype`` in: float32 under the
    interpreter, whose float32 -> 16-bit casts truncate where GPUs round to nearest even;
    the caller casts the result with torch."""
    return torch.float32 if is_interpreted(kernel) and dtype.itemsize < 4 else dtype


def int32_tensor(values: list[int], device: torch.device) -> Tensor:
    """Kernel metadata as an int32 tensor on ``device`` (one host-to-device copy)."""
    return torch.tensor(values, dtype=torch.int32).to(device)


def check_plan_matches(
    plan_shape: AttentionShape,
    plan_window: int | None,
    shape: AttentionShape,
    sliding_window: int | None,
) -> None:
    """Raise ValueError if a plan was built for other heads or another sliding window."""
    if plan_shape != shape:
        raise ValueError(f"plan made for {plan_shape}, got q/k/v of {shape}")
    if plan_window != sliding_window:
        raise ValueError(f"plan made for sliding_window {plan_window}, got {sliding_window}")


def require_unit_last_stride(*tensors: Tensor) -> None:
    """Raise ValueError unless each tensor's last dim is contiguous (the kernels assume it)."""
    for tensor in tensors:
        if tensor.stride(-1) != 1:
            raise ValueError(f"expected a contiguous last dim, got strides {tensor.stride()}")


class KVOperand(NamedTuple):
    """One layer's K (or V) pool as the attention kernels take it (see `load_kv_rows`).

    A plain pool is ``data`` itself with ``bits`` 0 (``scales``/``zeros`` alias it, unread).
    A quantized pool (`kv_quant`) gives its codes, float16 scales and zeros; a kv head's
    values start at value ``kv_head * stride_head`` of the slot's flattened row."""

    data: Tensor
    scales: Tensor
    zeros: Tensor
    stride_slot: int
    stride_head: int
    stride_param: int
    bits: int
    group_size: int


def kv_operand(buffer: KVBuffer) -> KVOperand:
    """`buffer` as kernel arguments; ValueError unless its rows are contiguous."""
    if isinstance(buffer, QuantizedKV):
        require_unit_last_stride(buffer.data, buffer.scales, buffer.zeros)
        if buffer.scales.stride(0) != buffer.zeros.stride(0):
            raise ValueError("a quantized pool's scales and zeros must share one layout")
        return KVOperand(buffer.data, buffer.scales, buffer.zeros, buffer.data.stride(0),
                         buffer.head_dim, buffer.scales.stride(0), buffer.bits,
                         buffer.group_size)
    require_unit_last_stride(buffer)
    return KVOperand(buffer, buffer, buffer, buffer.stride(0), buffer.stride(1), 0, 0, 1)


def check_kv_pair(k: KVOperand, v: KVOperand) -> None:
    """K and V must be quantized alike: the kernels take one format for both."""
    if (k.bits, k.group_size) != (v.bits, v.group_size):
        raise ValueError(f"the K pool stores {_storage(k)}, the V pool {_storage(v)}; the "
                         "kernels read both alike")


def _storage(operand: KVOperand) -> str:
    if operand.bits == 0:
        return "no codes"
    return f"{operand.bits}-bit codes in groups of {operand.group_size}"


# NOTE: the helpers below are inlined into the attention kernels; scores leave
# `attention_scores` in log2 units so that the online softmax can use exp2.


@triton.jit
def tanh(x):
    """tanh that stays finite for large |x| (Triton has no portable tanh)."""
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def load_kv_tile(buffer, slots, kv_head, stride_slot, stride_head, dims, kv_mask):
    """Rows ``buffer[slots, kv_head, :]`` as a ``[BLOCK_N, BLOCK_D]`` tile, 0 where masked."""
    ptrs = buffer + slots[:, None] * stride_slot + kv_head * stride_head + dims[None, :]
    return tl.load(ptrs, mask=kv_mask, other=0.0)


@triton.jit
def load_kv_rows(data, scales, zeros, slots, kv_head, dims, kv_mask,
                 stride_slot, stride_head, stride_param,
                 BITS: tl.constexpr, GROUP: tl.constexpr):  # fmt: skip
    """`load_kv_tile` from a pool in `KVOperand` form: a plain pool's rows as stored, a
    quantized pool's dequantized to float32 (``zero + scale * code`` per group) as read."""
    if BITS == 0:
        tile = load_kv_tile(data, slots, kv_head, stride_slot, stride_head, dims, kv_mask)
    else:
        values = kv_head * stride_head + dims  # positions in the slot's flattened row
        rows = slots[:, None]
        if BITS == 8:
            codes = tl.load(data + rows * stride_slot + values[None, :], mask=kv_mask, other=0)
        else:  # two codes a byte, the even value in the low nibble
            packed = tl.load(data + rows * stride_slot + (values // 2)[None, :], mask=kv_mask,
                             other=0)
            codes = (packed >> ((values % 2) * 4).to(tl.uint8)[None, :]) & 0xF
        params = rows * stride_param + (values // GROUP)[None, :]
        scale = tl.load(scales + params, mask=kv_mask, other=0.0).to(tl.float32)
        zero = tl.load(zeros + params, mask=kv_mask, other=0.0).to(tl.float32)
        tile = codes.to(tl.float32) * scale + zero
    return tile


@triton.jit
def matmul(a, b, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    """``tl.dot(a, b)`` with a float32 result; ``UPCAST`` computes it from float32 copies of
    16-bit operands, which equals the GPU's exact-product float32-accumulate result and
    works around the interpreter multiplying bfloat16 bit patterns as integers."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def attention_scores(
    q, k, sm_scale, logit_cap,
    HAS_CAP: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    """Float32 scores ``q [M, D] . k [N, D]^T * sm_scale``, soft-capped, in log2 units."""
    s = matmul(q, tl.trans(k.to(q.dtype)), PRECISION, UPCAST)
    if HAS_CAP:
        s = logit_cap * tanh(s * sm_scale / logit_cap)
        return s * 1.4426950408889634  # log2(e)
    return s * (sm_scale * 1.4426950408889634)  # one multiply per score


@triton.jit
def online_softmax_step(acc, m_i, l_i, s, v, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    """Fold one block of masked log2 scores ``s [M, N]`` and values ``v [N, D]`` into the
    running float32 output ``acc``, row max ``m_i`` and denominator ``l_i``.

    ``m_i`` starts finite (not -inf) so that a row whose block is fully masked stays at
    alpha = 1, p = 0 instead of producing NaN. The probabilities are rounded to v's dtype
    for the product, as flash attention does."""
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + matmul(p.to(v.dtype), v, PRECISION, UPCAST)
    return acc, m_new, l_i


def dot_precision(dtype: torch.dtype) -> str:
    """`tl.dot` precision: exact float32 ("ieee", not TF32) for float32 inputs to match the
    reference; the argument is ignored for 16-bit inputs."""
    return "ieee" if dtype == torch.float32 else "tf32"


def dot_settings(dtype: torch.dtype) -> tuple[bool, str]:
    """(upcast operands to float32, tl.dot input_precision) for operands of ``dtype``."""
    # NOTE: the Triton 3.9 interpreter multiplies 16-bit dot operands as raw integers, so
    # under TRITON_INTERPRET they are upcast first. float32 uses exact ("ieee") products.
    interpreting = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    upcast = interpreting and dtype != torch.float32
    return upcast, "ieee" if upcast or dtype == torch.float32 else dot_precision(dtype)
