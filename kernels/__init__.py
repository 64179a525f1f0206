"""Serving kernels: PyTorch reference ops, Triton kernels and a compiled CPU decode attention
behind a backend switch ("torch", "triton", "cpu").

A kernel backend (the engine's `kernel_backend` option) picks the implementation of every op
of a :class:`KernelOps` table, RMSNorm and the logits bitmask as much as attention. The model
runner asks ``get_ops(name)`` once for the table and calls its fields.
Every backend implements the contracts of the PyTorch reference ops (see each module's
docstring). A new backend registers a factory in ``_BACKENDS``; it may replace only some
ops, e.g. ``dataclasses.replace(torch_ops(), decode_attention=triton_decode_attention)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import Tensor

from sglc.kernels.activation import silu_and_mul
from sglc.kernels.attention_common import AttentionShape
from sglc.kernels.attention_scores import accumulate_key_scores
from sglc.kernels.bitmask import apply_token_bitmask
from sglc.kernels.decode_attention import decode_attention, plan_decode
from sglc.kernels.extend_attention import extend_attention, plan_extend
from sglc.kernels.kv_store import store_kv
from sglc.kernels.lora import lora_expand, lora_shrink
from sglc.kernels.moe import fused_moe
from sglc.kernels.rmsnorm import rms_norm
from sglc.kernels.rope import apply_rope, build_rope_cache
from sglc.kernels.weight_quant import quant_linear


@dataclass(frozen=True)
class KernelOps:
    """The ops the model runner calls, one implementation each; see the torch modules."""

    store_kv: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], None]
    extend_attention: Callable[..., Tensor]
    decode_attention: Callable[..., Tensor]
    rms_norm: Callable[..., Tensor | tuple[Tensor, Tensor]]
    apply_rope: Callable[..., tuple[Tensor, Tensor]]
    silu_and_mul: Callable[[Tensor], Tensor]
    apply_token_bitmask: Callable[..., None]  # constrained decoding: -inf where not allowed
    # Build an attention layout once per forward pass (same metadata for every layer);
    # the result goes to decode/extend_attention as `plan=`. A backend whose kernels need
    # no layout returns None here.
    plan_decode: Callable[..., object | None]
    plan_extend: Callable[..., object | None]
    # mixture-of-experts models: routed expert MLPs (sglc.kernels.moe)
    fused_moe: Callable[..., Tensor]
    # multi-LoRA: segmented shrink (x @ Aᵀ) and expand (+= scaling * y @ Bᵀ) (sglc.kernels.lora)
    lora_shrink: Callable[..., Tensor]
    lora_expand: Callable[..., Tensor]
    # H2O KV eviction: attention probabilities summed per key (sglc.kernels.attention_scores;
    # every backend uses the reference)
    accumulate_key_scores: Callable[..., None] = accumulate_key_scores
    # whether store_kv and the attention ops take a quantized pool (sglc.kernels.kv_quant)
    reads_quantized_kv: bool = True
    # weight-only quantized linear layers (sglc.kernels.weight_quant)
    quant_linear: Callable[..., Tensor] = quant_linear


def torch_ops() -> KernelOps:
    """The PyTorch reference ops: the CPU production path and the ground truth for kernels."""
    return KernelOps(
        store_kv=store_kv,
        extend_attention=extend_attention,
        decode_attention=decode_attention,
        rms_norm=rms_norm,
        apply_rope=apply_rope,
        silu_and_mul=silu_and_mul,
        apply_token_bitmask=apply_token_bitmask,
        plan_decode=plan_decode,
        plan_extend=plan_extend,
        fused_moe=fused_moe,
        lora_shrink=lora_shrink,
        lora_expand=lora_expand,
    )


def triton_ops() -> KernelOps:
    """The Triton kernels (CUDA; CPU tensors only under ``TRITON_INTERPRET=1``, which must be
    set before this is first called: ``triton.jit`` reads it when the kernels are defined)."""
    from sglc.kernels.triton_activation import triton_silu_and_mul
    from sglc.kernels.triton_bitmask import triton_apply_token_bitmask
    from sglc.kernels.triton_decode_attention import triton_decode_attention, triton_plan_decode
    from sglc.kernels.triton_extend_attention import triton_extend_attention, triton_plan_extend
    from sglc.kernels.triton_kv_store import triton_store_kv
    from sglc.kernels.triton_lora import triton_lora_expand, triton_lora_shrink
    from sglc.kernels.triton_moe import triton_fused_moe
    from sglc.kernels.triton_rmsnorm import triton_rms_norm
    from sglc.kernels.triton_rope import triton_apply_rope

    return KernelOps(
        rms_norm=triton_rms_norm,
        apply_rope=triton_apply_rope,
        silu_and_mul=triton_silu_and_mul,
        apply_token_bitmask=triton_apply_token_bitmask,
        store_kv=triton_store_kv,
        extend_attention=triton_extend_attention,
        decode_attention=triton_decode_attention,
        plan_extend=triton_plan_extend,
        plan_decode=triton_plan_decode,
        fused_moe=triton_fused_moe,
        lora_shrink=triton_lora_shrink,
        lora_expand=triton_lora_expand,
    )


def cpu_ops() -> KernelOps:
    """The PyTorch reference ops with decode attention (and short extends), RMSNorm,
    SiLU-and-mul, RoPE, the quantized linear and the quantized KV store compiled for CPU (`cpu_decode_attention`, `cpu_elementwise`); ValueError if
    they cannot be built here."""
    from sglc.kernels.cpu_build import cpu_kernels_available
    from sglc.kernels.cpu_decode_attention import (
        cpu_decode_attention,
        cpu_extend_attention,
        cpu_plan_decode,
        cpu_plan_extend,
    )
    from sglc.kernels.cpu_elementwise import cpu_apply_rope, cpu_rms_norm, cpu_silu_and_mul
    from sglc.kernels.kv_store import cpu_store_kv
    from sglc.kernels.weight_quant import cpu_quant_linear

    if not cpu_kernels_available():
        raise ValueError("the 'cpu' backend's C++ kernels did not build (needs a C++ compiler "
                         "and ninja); use 'torch'")
    return replace(torch_ops(), decode_attention=cpu_decode_attention,
                   plan_decode=cpu_plan_decode, extend_attention=cpu_extend_attention,
                   plan_extend=cpu_plan_extend, rms_norm=cpu_rms_norm,
                   silu_and_mul=cpu_silu_and_mul, apply_rope=cpu_apply_rope,
                   quant_linear=cpu_quant_linear, store_kv=cpu_store_kv)


def for_kv_cache(ops: KernelOps, kv_cache_dtype: str) -> KernelOps:
    """`ops` for a pool of `kv_cache_dtype`: a quantized pool on a backend whose kernels
    read only plain pools (``reads_quantized_kv=False``) stores and attends through the
    PyTorch reference ops. The built-in backends all read quantized pools."""
    if kv_cache_dtype == "auto" or ops.reads_quantized_kv:
        return ops
    return replace(ops, store_kv=store_kv, decode_attention=decode_attention,
                   extend_attention=extend_attention, plan_decode=plan_decode,
                   plan_extend=plan_extend, reads_quantized_kv=True)


def triton_interpreted() -> bool:
    """Whether Triton kernels run under the interpreter (CPU tensors) in this process."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_BACKENDS: dict[str, Callable[[], KernelOps]] = {
    "torch": torch_ops, "triton": triton_ops, "cpu": cpu_ops,
}


def check_backend(backend: str) -> None:
    """ValueError naming the known backends if ``backend`` is not one (builds nothing)."""
    if backend not in _BACKENDS:
        known = ", ".join(sorted(_BACKENDS))
        raise ValueError(f"unknown kernel backend {backend!r}; known backends: {known}")


def get_ops(backend: str = "torch") -> KernelOps:
    """The ops of backend ``backend``; ValueError naming the known backends if unknown."""
    check_backend(backend)
    return _BACKENDS[backend]()


def default_backend(device_type: str) -> str:
    """Triton on CUDA; on CPU the compiled CPU kernels where they build (the first use on a
    machine compiles them, once: torch caches them), else the PyTorch reference ops; the
    reference elsewhere."""
    if device_type == "cuda":
        return "triton"
    if device_type == "cpu":
        from sglc.kernels.cpu_build import cpu_kernels_available

        return "cpu" if cpu_kernels_available() else "torch"
    return "torch"


__all__ = [
    "AttentionShape", "KernelOps", "build_rope_cache", "check_backend", "cpu_ops",
    "default_backend", "for_kv_cache", "get_ops", "torch_ops", "triton_interpreted", "triton_ops",
]
