"""Group-wise quantized KV cache (FlexGen's asymmetric min/max groups), reference ops.

A quantized layer buffer stores each slot's ``[Hkv, D]`` row flattened to ``Hkv * D`` values,
cut into groups of ``group_size`` consecutive values (64, FlexGen's choice, or the largest
power of two dividing ``Hkv * D`` below it). Each group keeps its minimum (``zeros``) and
its step ``(max - min) / (2**bits - 1)`` (``scales``), both float16, and its values as
unsigned ``bits``-bit codes ``round((x - zero) / scale)``; int4 packs two codes per byte,
the even element in the low nibble::

    QuantizedKV (one layer's K, or its V)          slot s, Hkv * D = 128, group_size 64
      data   [num_slots, Hkv * D * bits / 8] uint8   | codes 0..63 | codes 64..127 |
      scales [num_slots, Hkv * D / group_size] fp16  |  scale g0   |   scale g1    |
      zeros  [num_slots, Hkv * D / group_size] fp16  |  zero  g0   |   zero  g1    |

    value = zero[g] + scale[g] * code      (g = flat index // group_size)

Values are quantized when stored (`store_quantized`) and dequantized only where an attention
op reads them (`gather_rows` here for the PyTorch paths; the compiled CPU kernel reads the
codes itself). The scale and zero are rounded to float16 *before* the codes are computed,
so the codes absorb that rounding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

KV_CACHE_DTYPES = ("auto", "int8", "int4")
_BITS = {"int8": 8, "int4": 4}
MAX_GROUP_SIZE = 64
_PARAM_DTYPE = torch.float16
_PARAM_BYTES = 2


class QuantizedKV(NamedTuple):
    """One layer's K (or V) pool, quantized; ``shape`` is the unquantized ``[S, Hkv, D]``."""

    data: Tensor  # uint8 [num_slots, Hkv * D * bits // 8]
    scales: Tensor  # float16 [num_slots, Hkv * D // group_size]
    zeros: Tensor  # float16 [num_slots, Hkv * D // group_size]
    bits: int
    group_size: int
    num_kv_heads: int
    head_dim: int

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.data.shape[0], self.num_kv_heads, self.head_dim))

    @property
    def device(self) -> torch.device:
        return self.data.device


KVBuffer = Tensor | QuantizedKV


def kv_bits(kv_cache_dtype: str) -> int | None:
    """Bits per stored K/V value for a `kv_cache_dtype` name; None for "auto" (unquantized).
    ValueError naming the option and its choices for anything else."""
    if kv_cache_dtype not in KV_CACHE_DTYPES:
        raise ValueError(f"unknown kv_cache_dtype {kv_cache_dtype!r}; choose one of "
                         f"{', '.join(KV_CACHE_DTYPES)}")
    return _BITS.get(kv_cache_dtype)


def group_size_for(row_len: int) -> int:
    """Values per quantization group for a slot row of `row_len` (= Hkv * D) values."""
    size = math.gcd(row_len, MAX_GROUP_SIZE)
    if size < 2:
        raise ValueError(f"a KV row of {row_len} values cannot be quantized in groups "
                         "(Hkv * head_dim must be even)")
    return size


def bytes_per_row(row_len: int, bits: int) -> int:
    """Bytes one slot row of `row_len` values takes quantized: codes plus scale and zero."""
    return row_len * bits // 8 + 2 * _PARAM_BYTES * (row_len // group_size_for(row_len))


def allocate(num_slots: int, num_kv_heads: int, head_dim: int, bits: int,
             device: torch.device | str) -> QuantizedKV:
    """A zeroed quantized buffer (every slot dequantizes to 0)."""
    row_len = num_kv_heads * head_dim
    group = group_size_for(row_len)
    num_groups = row_len // group
    return QuantizedKV(
        torch.zeros((num_slots, row_len * bits // 8), dtype=torch.uint8, device=device),
        torch.zeros((num_slots, num_groups), dtype=_PARAM_DTYPE, device=device),
        torch.zeros((num_slots, num_groups), dtype=_PARAM_DTYPE, device=device),
        bits, group, num_kv_heads, head_dim,
    )


def quantize(x: Tensor, bits: int, group_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """``x [T, ...]`` (flattened per row) -> (codes uint8 packed, scales, zeros) per row."""
    rows = x.reshape(x.shape[0], -1, group_size).float()
    levels = (1 << bits) - 1
    zeros = rows.amin(dim=-1).to(_PARAM_DTYPE)
    span = rows.amax(dim=-1) - zeros.float()
    scales = (span / levels).to(_PARAM_DTYPE)
    # A constant group (span 0) keeps scale 0 and codes 0: it dequantizes to its zero.
    safe = torch.where(scales > 0, scales.float(), torch.ones_like(span))
    codes = ((rows - zeros.float()[..., None]) / safe[..., None]).round_().clamp_(0, levels)
    codes = codes.to(torch.uint8).reshape(x.shape[0], -1)
    if bits == 4:
        codes = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return codes, scales, zeros


def dequantize(data: Tensor, scales: Tensor, zeros: Tensor, bits: int,
               group_size: int) -> Tensor:
    """The float32 values ``[N, row_len]`` of quantized rows (inverse of `quantize` up to
    rounding)."""
    if bits == 4:
        data = torch.stack((data & 0xF, data >> 4), dim=-1).reshape(data.shape[0], -1)
    codes = data.float().view(data.shape[0], -1, group_size)
    values = codes * scales.float()[..., None] + zeros.float()[..., None]
    return values.view(data.shape[0], -1)


def store_quantized(buffer: QuantizedKV, loc: Tensor, x: Tensor) -> None:
    """Quantize ``x [T, Hkv, D]`` and write it into slots `loc` of `buffer`."""
    codes, scales, zeros = quantize(x, buffer.bits, buffer.group_size)
    buffer.data.index_copy_(0, loc, codes)
    buffer.scales.index_copy_(0, loc, scales)
    buffer.zeros.index_copy_(0, loc, zeros)


def copy_rows(buffer: KVBuffer, src: Tensor, dst: Tensor) -> None:
    """Copy slots `src` of one layer's buffer into slots `dst` (codes copied as they are)."""
    if isinstance(buffer, QuantizedKV):
        for part in (buffer.data, buffer.scales, buffer.zeros):
            part[dst] = part[src]
    else:
        buffer[dst] = buffer[src]


def gather_rows(buffer: KVBuffer, slots: Tensor) -> Tensor:
    """Slots' K or V as float32 ``[*slots.shape, Hkv, D]``, dequantized if need be."""
    flat = slots.reshape(-1).long()
    if isinstance(buffer, QuantizedKV):
        rows = dequantize(buffer.data.index_select(0, flat), buffer.scales.index_select(0, flat),
                          buffer.zeros.index_select(0, flat), buffer.bits, buffer.group_size)
    else:
        rows = buffer.index_select(0, flat).float()
    return rows.view(*slots.shape, buffer.shape[1], buffer.shape[2])
