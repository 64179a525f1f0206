"""Weight-only quantization at load time (`Engine(quantization="int8" | "int4")`)."""

from .linear import QUANTIZATIONS, QuantizedLinear, quantize_model

__all__ = ["QUANTIZATIONS", "QuantizedLinear", "quantize_model"]
