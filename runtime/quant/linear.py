"""Swap a loaded model's projection Linears for weight-only quantized ones.

Runs once after the checkpoint is loaded and the projections fused, so it works from the
usual safetensors files and leaves the model classes alone. The attention and MLP
projections (q|k|v, o, gate|up, down, of dense and MoE-shared MLPs) are quantized group-wise
(`sglc.kernels.weight_quant`); embeddings, the lm_head, norms and MoE routers keep the
model's dtype (the lm_head is tied to the embedding in the small models this serves, and a
router's few logits decide which experts run).
"""

from __future__ import annotations

import torch
from torch import nn

from sglc.kernels import KernelOps
from sglc.kernels.weight_quant import WEIGHT_BITS, QuantizedWeight, quantize_weight

QUANTIZATIONS = tuple(WEIGHT_BITS)
_PROJECTIONS = frozenset({"qkv_proj", "q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj",
                          "gate_proj", "up_proj", "down_proj"})


class QuantizedLinear(nn.Module):
    """`nn.Linear`'s forward over a `QuantizedWeight` (codes, scales, zeros as buffers)."""

    def __init__(self, linear: nn.Linear, bits: int, ops: KernelOps) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = quantize_weight(linear.weight, bits)
        self.register_buffer("codes", weight.codes)
        self.register_buffer("scales", weight.scales)
        self.register_buffer("zeros", weight.zeros)
        self.bits, self.group_size = bits, weight.group_size
        self.bias = linear.bias
        self._linear = ops.quant_linear

    @property
    def weight_q(self) -> QuantizedWeight:
        return QuantizedWeight(self.codes, self.scales, self.zeros, self.bits, self.group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._linear(x, self.weight_q, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"int{self.bits}, group_size={self.group_size}")


def quantize_model(model: nn.Module, quantization: str | None, ops: KernelOps) -> int:
    """Quantize `model`'s projections in place; returns how many were swapped (0 for None).
    ValueError naming the option and its choices for an unknown scheme."""
    if quantization is None:
        return 0
    if quantization not in WEIGHT_BITS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of "
                         f"{', '.join(QUANTIZATIONS)}")
    bits = WEIGHT_BITS[quantization]
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in _PROJECTIONS and isinstance(child, nn.Linear):
                setattr(module, name, QuantizedLinear(child, bits, ops))
                swapped += 1
    return swapped
