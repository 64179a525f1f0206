"""KV write reference: scatter new tokens' keys and values into their pool slots."""

from __future__ import annotations

from torch import Tensor

from sglc.kernels.kv_quant import KVBuffer, QuantizedKV, store_quantized


def store_kv(k_buffer: KVBuffer, v_buffer: KVBuffer, loc: Tensor, k: Tensor, v: Tensor) -> None:
    """Write ``k``/``v`` ``[T, Hkv, D]`` into slots ``loc`` (int64 ``[T]``) of the pool, in place.

    ``k_buffer``/``v_buffer`` are ``[num_slots, Hkv, D]``; values are cast to the buffer dtype,
    or quantized for a quantized pool (`kv_quant`). Slots in ``loc`` must be distinct (a
    repeated slot keeps an unspecified one of its writes).
    """
    check_store(k_buffer, loc, k, v)
    if isinstance(k_buffer, QuantizedKV):
        store_quantized(k_buffer, loc, k)
        store_quantized(v_buffer, loc, v)
        return
    k_buffer.index_copy_(0, loc, k.to(k_buffer.dtype))
    v_buffer.index_copy_(0, loc, v.to(v_buffer.dtype))


def cpu_store_kv(k_buffer: KVBuffer, v_buffer: KVBuffer, loc: Tensor, k: Tensor,
                 v: Tensor) -> None:
    """`store_kv` for CPU tensors: a quantized pool quantizes in the compiled
    kernel (`cpu_sources_quant`); a plain pool takes the reference's copy."""
    from sglc.kernels.cpu_build import extension

    if not isinstance(k_buffer, QuantizedKV):
        return store_kv(k_buffer, v_buffer, loc, k, v)
    check_store(k_buffer, loc, k, v)
    loc = loc.contiguous()
    for buffer, x in ((k_buffer, k), (v_buffer, v)):
        extension().quantize_store(x.contiguous(), loc, buffer.data, buffer.scales,
                                   buffer.zeros, buffer.bits, buffer.group_size)
    return None


def check_store(k_buffer: KVBuffer, loc: Tensor, k: Tensor, v: Tensor) -> None:
    """ValueError unless ``k``/``v`` ``[T, Hkv, D]`` and ``loc [T]`` fit the pool."""
    if k.shape != v.shape or k.shape[1:] != k_buffer.shape[1:] or k.shape[0] != loc.shape[0]:
        raise ValueError(
            f"k {tuple(k.shape)} / v {tuple(v.shape)} / loc {tuple(loc.shape)} do not fit "
            f"a pool of {tuple(k_buffer.shape)}"
        )
