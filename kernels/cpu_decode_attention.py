"""Decode attention as a compiled CPU kernel: read each request's K/V once, in place.

The PyTorch reference (`decode_attention.py`) gathers every request's keys and values out of
the pool into padded batches before attending: on a CPU decode step that copy (and the
padding) costs as much as the attention itself, and it is memory traffic, which is what CPU
decoding is short of. This kernel walks ``req_to_token`` and reads each K/V row straight from
the pool, once per KV head for the whole GQA group of query heads, with a blockwise online
softmax in float32 (the same maths as the reference: scale, optional tanh logit cap, sliding
window). A quantized pool (`kv_quant`) runs `cpu_sources_quant`'s variant, which
dequantizes each row's codes as it reads them. It is built with ``-ffast-math`` (vectorized ``exp`` and reductions), so every value
it handles is finite.

Work is split over (request, KV head), the next slot rows are prefetched (a pool row is
``Hkv * D`` values, so a request's keys cross a page every few keys and the hardware
prefetcher stops there), and float32 scores use AVX-512 where the CPU has it. The C++ is
`cpu_sources.DECODE_ATTENTION`, built with the other CPU kernels on first use (`cpu_build`);
``kernel_backend="cpu"`` selects it. Timings: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from sglc.kernels.attention_common import (
    AttentionShape,
    IndexLike,
    check_options,
    check_shapes,
    decode_rows_and_lens,
    to_int_list,
)
from sglc.kernels.cpu_build import cpu_kernels_available, extension
from sglc.kernels.cpu_prefill import CpuPrefillPlan, plan_prefill, run_prefill
from sglc.kernels.kv_quant import KVBuffer, QuantizedKV

__all__ = ["cpu_decode_attention", "cpu_extend_attention", "cpu_kernels_available",
           "cpu_plan_decode", "cpu_plan_extend"]

# Extends at most this long run on the kernel (each new token as its own decode query over
# its causal prefix); longer ones (prompt prefill) on the reference's batched SDPA, whose
# tiled matmuls beat a key-by-key walk once many queries share the keys.
MAX_KERNEL_EXTEND = 32


class CpuDecodePlan(NamedTuple):
    """Per-request pool row, first visible key position and sequence length (int64, CPU)."""

    rows: Tensor
    starts: Tensor
    lens: Tensor
    sliding_window: int | None


def cpu_plan_decode(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
) -> CpuDecodePlan:
    """The per-request metadata `cpu_decode_attention` reads, built once per forward pass."""
    del req_to_token, shape  # same signature as the other backends' planners
    check_options(sliding_window, None)
    rows, lens = decode_rows_and_lens(req_pool_indices, seq_lens)
    starts = [0 if sliding_window is None else max(0, n - sliding_window) for n in lens]
    as_tensor = functools.partial(torch.tensor, dtype=torch.int64)
    return CpuDecodePlan(as_tensor(rows), as_tensor(starts), as_tensor(lens), sliding_window)


def cpu_decode_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    seq_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: CpuDecodePlan | None = None,
) -> Tensor:
    """Same contract as `decode_attention.decode_attention`, for CPU tensors."""
    shape = check_shapes(q, k_buffer, v_buffer)
    check_options(sliding_window, logit_cap)
    if plan is None or plan.sliding_window != sliding_window:
        plan = cpu_plan_decode(req_to_token, req_pool_indices, seq_lens, shape,
                               sliding_window=sliding_window)
    if plan.lens.numel() != q.shape[0]:
        raise ValueError(f"q has {q.shape[0]} rows but the batch has {plan.lens.numel()}")
    if q.device.type != "cpu" or req_to_token.dtype != torch.int64:
        raise ValueError("cpu_decode_attention needs CPU tensors and an int64 req_to_token")
    if isinstance(k_buffer, QuantizedKV):
        return extension().decode_attention_quant(
            q.contiguous(), *_quantized_parts(k_buffer), *_quantized_parts(v_buffer),
            k_buffer.bits, k_buffer.group_size, k_buffer.num_kv_heads,
            req_to_token.contiguous(), plan.rows, plan.starts, plan.lens, float(sm_scale),
            float(logit_cap or 0.0),
        )
    if q.dtype != k_buffer.dtype:
        raise ValueError(f"q is {q.dtype} but the K/V buffers are {k_buffer.dtype}")
    if not (k_buffer.is_contiguous() and v_buffer.is_contiguous()):
        raise ValueError("cpu_decode_attention needs contiguous K/V buffers")
    return extension().decode_attention(
        q.contiguous(), k_buffer, v_buffer, req_to_token.contiguous(),
        plan.rows, plan.starts, plan.lens, float(sm_scale), float(logit_cap or 0.0),
    )


def _quantized_parts(buffer: QuantizedKV) -> tuple[Tensor, Tensor, Tensor]:
    parts = (buffer.data, buffer.scales, buffer.zeros)
    if not all(part.is_contiguous() for part in parts):
        raise ValueError("cpu_decode_attention needs contiguous quantized K/V buffers")
    return parts


def cpu_plan_extend(
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    shape: AttentionShape,
    *,
    sliding_window: int | None = None,
) -> CpuDecodePlan | CpuPrefillPlan:
    """An extend batch whose extends are all short (decode rows and jump-forward's forced
    tokens) becomes one decode query per new token; otherwise fresh prompts run one causal
    SDPA each and the rest the reference's plan (`cpu_prefill`)."""
    rows, prefixes, extends = (to_int_list(x) for x in (req_pool_indices, prefix_lens, extend_lens))
    if not extends or max(extends) > MAX_KERNEL_EXTEND:
        return plan_prefill(req_to_token, rows, prefixes, extends, shape, sliding_window)
    q_rows = [row for row, n in zip(rows, extends, strict=True) for _ in range(n)]
    q_lens = [p + i + 1 for p, n in zip(prefixes, extends, strict=True) for i in range(n)]
    return cpu_plan_decode(req_to_token, q_rows, q_lens, shape, sliding_window=sliding_window)


def cpu_extend_attention(
    q: Tensor,
    k_buffer: KVBuffer,
    v_buffer: KVBuffer,
    req_to_token: Tensor,
    req_pool_indices: IndexLike,
    prefix_lens: IndexLike,
    extend_lens: IndexLike,
    *,
    sm_scale: float,
    sliding_window: int | None = None,
    logit_cap: float | None = None,
    plan: CpuDecodePlan | CpuPrefillPlan | None = None,
) -> Tensor:
    """Same contract as `extend_attention.extend_attention`, for CPU tensors."""
    if plan is None or plan.sliding_window != sliding_window:
        plan = cpu_plan_extend(req_to_token, req_pool_indices, prefix_lens, extend_lens,
                               check_shapes(q, k_buffer, v_buffer),
                               sliding_window=sliding_window)
    if isinstance(plan, CpuDecodePlan):
        return cpu_decode_attention(q, k_buffer, v_buffer, req_to_token, None, None,
                                    sm_scale=sm_scale, sliding_window=sliding_window,
                                    logit_cap=logit_cap, plan=plan)
    return run_prefill(q, k_buffer, v_buffer, req_to_token, plan, sm_scale, logit_cap)
