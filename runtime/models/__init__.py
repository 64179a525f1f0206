"""Model implementations over the ops in sglc.kernels, and their registry."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sglc.kernels import KernelOps
from sglc.runtime.models.config import SUPPORTED_ARCHITECTURES, ModelConfig, UnsupportedModel
from sglc.runtime.models.llama import LlamaForCausalLM
from sglc.runtime.models.moe import MoeForCausalLM

# architecture name in config.json -> model class
MODEL_REGISTRY: dict[str, Callable[[ModelConfig, KernelOps | None], nn.Module]] = {
    arch: MoeForCausalLM if flags["moe"] else LlamaForCausalLM
    for arch, flags in SUPPORTED_ARCHITECTURES.items()
}


def build_model(cfg: ModelConfig, ops: KernelOps | None = None) -> nn.Module:
    """An uninitialised-weights model for `cfg` (call under a device context if wanted)."""
    try:
        factory = MODEL_REGISTRY[cfg.architecture]
    except KeyError:
        raise UnsupportedModel(f"no model class registered for {cfg.architecture}") from None
    return factory(cfg, ops)


__all__ = ["MODEL_REGISTRY", "ModelConfig", "LlamaForCausalLM", "MoeForCausalLM",
           "UnsupportedModel", "build_model"]
