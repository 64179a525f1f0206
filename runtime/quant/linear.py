"""Swap a loaded model's projection Linears for weight-only quantized ones.

Runs once after the checkpoint is loaded and the projections fused, so it works from the
usual safetensors files and leaves the model classes alone. The attention and MLP
projections (q|k|v, o, gate|up, down, of dense and MoE-shared MLPs) are quantized group-wise
(`sglc.kernels.weight_quant`); embeddings, norms and MoE routers keep the model's dtype (a
router's few logits decide which experts run).

A tied lm_head (one tensor with the embedding) is quantized too, always to int8: in a small
model it is the largest matrix a decode step reads. The float tensor stays as the
embedding and as the lm_head's `weight` (column-restricted logits gather rows of it), so
this costs only the codes, and it drops the float transposed copy the CPU model keeps for
its logits (`fuse_projections`). An untied lm_head keeps its dtype.
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

    def __init__(self, linear: nn.Linear, bits: int, ops: KernelOps,
                 keep_weight: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = quantize_weight(linear.weight, bits)
        self.register_buffer("codes", weight.codes)
        self.register_buffer("scales", weight.scales)
        self.register_buffer("zeros", weight.zeros)
        self.bits, self.group_size = bits, weight.group_size
        self.bias = linear.bias
        self._linear = ops.quant_linear
        # the float weight, only where it is shared with a module that keeps it anyway
        self.weight = linear.weight if keep_weight else None

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
    return swapped + _quantize_tied_lm_head(model, ops)


def _quantize_tied_lm_head(model: nn.Module, ops: KernelOps) -> int:
    lm_head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if not (isinstance(lm_head, nn.Linear) and embed is not None
            and lm_head.weight is getattr(embed, "weight", None)):
        return 0
    model.lm_head = QuantizedLinear(lm_head, WEIGHT_BITS["int8"], ops, keep_weight=True)
    if getattr(model, "lm_head_t", None) is not None:
        model.lm_head_t = None  # compute_logits then calls the quantized lm_head
    return 1
