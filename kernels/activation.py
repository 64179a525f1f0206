"""SiLU-and-mul reference: the gated MLP activation of Llama-style models."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def silu_and_mul(x: Tensor) -> Tensor:
    """``x[..., 2*I]`` (gate || up) -> ``silu(gate) * up`` of shape ``[..., I]``, in ``x.dtype``."""
    gate, up = x.chunk(2, dim=-1)
    return F.silu(gate) * up
