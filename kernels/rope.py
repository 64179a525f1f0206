"""Rotary position embedding reference: the cos/sin cache and its application to q and k."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

RopeScaling = Mapping[str, Any]


def _scale_linear(inv_freq: Tensor, scaling: RopeScaling) -> Tensor:
    """Position interpolation: every frequency divided by ``factor``."""
    return inv_freq / scaling["factor"]


def _scale_llama3(inv_freq: Tensor, scaling: RopeScaling) -> Tensor:
    """Llama 3.1: low frequencies divided by ``factor``, high ones kept, a smooth ramp between."""
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]

    wavelen = 2 * math.pi / inv_freq
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


_SCALERS: dict[str, Callable[[Tensor, RopeScaling], Tensor]] = {
    "default": lambda inv_freq, _: inv_freq,
    "linear": _scale_linear,
    "llama3": _scale_llama3,
}


def rope_inv_freq(head_dim: int, base: float, scaling: RopeScaling | None = None) -> Tensor:
    """Float32 inverse frequencies ``[head_dim // 2]`` on CPU, computed as transformers does.

    ``scaling`` is a HF ``rope_scaling`` dict (``rope_type`` or legacy ``type`` key) or None.
    """
    if head_dim % 2 != 0:
        raise ValueError(f"rotary head_dim must be even, got {head_dim}")
    scaling = scaling or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type not in _SCALERS:
        raise ValueError(
            f"unsupported rope type {rope_type!r}; supported: {', '.join(sorted(_SCALERS))}"
        )
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (base**exponents)
    return _SCALERS[rope_type](inv_freq, scaling)


def build_rope_cache(
    head_dim: int,
    max_positions: int,
    base: float,
    scaling: RopeScaling | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The cos/sin table ``[max_positions, head_dim]``: ``cos || sin``, each ``head_dim // 2``.

    Row p holds ``cos(p * inv_freq)`` then ``sin(p * inv_freq)``, computed in float32 and then
    cast to ``dtype``. ``head_dim`` is the rotary dimension (the leading dims of each head that
    :func:`apply_rope` rotates). See :func:`rope_inv_freq` for ``scaling``.
    """
    inv_freq = rope_inv_freq(head_dim, base, scaling)
    freqs = torch.arange(max_positions, dtype=torch.int64).float()[:, None] * inv_freq[None, :]
    cache = torch.cat((freqs.cos(), freqs.sin()), dim=-1)
    return cache.to(device=device, dtype=dtype)


def apply_rope(
    q: Tensor, k: Tensor, positions: Tensor, cos_sin_cache: Tensor, *, is_neox: bool = True
) -> tuple[Tensor, Tensor]:
    """Rotate ``q[T, Hq, D]`` and ``k[T, Hk, D]`` by the angles of ``positions`` (int64 ``[T]``).

    ``is_neox``: halves ``(x[:R/2], x[R/2:])`` rotate together (HF Llama ``rotate_half``);
    otherwise GPT-J pairs ``(x[2i], x[2i+1])``. R is the cache width; dims past R pass through.
    Computed in float32, returned as new tensors in the input dtypes.
    """
    cos, sin = cos_sin_cache.index_select(0, positions).float().unsqueeze(1).chunk(2, dim=-1)
    return _rotate(q, cos, sin, is_neox), _rotate(k, cos, sin, is_neox)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor, is_neox: bool) -> Tensor:
    rotary_dim = 2 * cos.shape[-1]
    x_rot = x[..., :rotary_dim].float()
    if is_neox:
        x1, x2 = x_rot.chunk(2, dim=-1)
    else:
        x1, x2 = x_rot[..., 0::2], x_rot[..., 1::2]
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    if is_neox:
        rotated = torch.cat((out1, out2), dim=-1)
    else:
        rotated = torch.stack((out1, out2), dim=-1).flatten(-2)
    if rotary_dim < x.shape[-1]:
        rotated = torch.cat((rotated, x[..., rotary_dim:].float()), dim=-1)
    return rotated.to(x.dtype)
