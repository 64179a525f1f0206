"""Serving kernels: PyTorch reference ops and Triton kernels behind a backend switch.

The model runner asks ``get_ops(name)`` once for a :class:`KernelOps` and calls its fields.
Every backend implements the contracts of the PyTorch reference ops (see each module's
docstring). A new backend registers a factory in ``_BACKENDS``; it may replace only some
ops, e.g. ``dataclasses.replace(torch_ops(), decode_attention=triton_decode_attention)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from sglc.kernels.activation import silu_and_mul
from sglc.kernels.attention_common import AttentionShape
from sglc.kernels.decode_attention import decode_attention, plan_decode
from sglc.kernels.extend_attention import extend_attention, plan_extend
from sglc.kernels.kv_store import store_kv
from sglc.kernels.rmsnorm import rms_norm
from sglc.kernels.rope import apply_rope, build_rope_cache


@dataclass(frozen=True)
class KernelOps:
    """The ops the model runner calls, one implementation each; see the torch modules."""

    store_kv: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], None]
    extend_attention: Callable[..., Tensor]
    decode_attention: Callable[..., Tensor]
    rms_norm: Callable[..., Tensor | tuple[Tensor, Tensor]]
    apply_rope: Callable[..., tuple[Tensor, Tensor]]
    silu_and_mul: Callable[[Tensor], Tensor]
    # Build an attention layout once per forward pass (same metadata for every layer);
    # the result goes to decode/extend_attention as `plan=`. A backend whose kernels need
    # no layout returns None here.
    plan_decode: Callable[..., object | None]
    plan_extend: Callable[..., object | None]


def torch_ops() -> KernelOps:
    """The PyTorch reference ops: the CPU production path and the ground truth for kernels."""
    return KernelOps(
        store_kv=store_kv,
        extend_attention=extend_attention,
        decode_attention=decode_attention,
        rms_norm=rms_norm,
        apply_rope=apply_rope,
        silu_and_mul=silu_and_mul,
        plan_decode=plan_decode,
        plan_extend=plan_extend,
    )


_BACKENDS: dict[str, Callable[[], KernelOps]] = {"torch": torch_ops}


def get_ops(backend: str = "torch") -> KernelOps:
    """The ops of backend ``backend``; ValueError naming the known backends if unknown."""
    factory = _BACKENDS.get(backend)
    if factory is None:
        known = ", ".join(sorted(_BACKENDS))
        raise ValueError(f"unknown kernel backend {backend!r}; known backends: {known}")
    return factory()


__all__ = ["AttentionShape", "KernelOps", "build_rope_cache", "get_ops", "torch_ops"]
