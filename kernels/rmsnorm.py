"""RMSNorm reference, with the fused residual add of the Llama pre-norm pattern."""

from __future__ import annotations

from typing import overload

import torch
from torch import Tensor


@overload
def rms_norm(x: Tensor, weight: Tensor, eps: float, residual: None = None) -> Tensor: ...


@overload
def rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor) -> tuple[Tensor, Tensor]: ...


def rms_norm(
    x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """RMS-normalise the last dimension of ``x`` and scale by ``weight``.

    Without ``residual``: returns ``norm(x) * weight``. With it: ``s = x + residual`` (added in
    ``x.dtype``, as the decoder layer adds it) and returns ``(norm(s) * weight, s)``; ``s`` is
    the next layer's residual. The statistics run in float32 and the normalised values are cast
    to ``x.dtype`` before the weight multiply, exactly like HF ``LlamaRMSNorm``; the result is
    in ``x.dtype``.
    """
    if residual is None:
        return _normalize(x, weight, eps)
    summed = x + residual
    return _normalize(summed, weight, eps), summed


def _normalize(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    hidden = x.float()
    hidden = hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + eps)
    return (weight * hidden.to(x.dtype)).to(x.dtype)
