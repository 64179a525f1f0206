"""LoRA adapters in PEFT's format, read from local directories and checked against the model.

A PEFT LoRA directory holds ``adapter_config.json`` (``r``, ``lora_alpha``, ``target_modules``,
optional ``rank_pattern``/``alpha_pattern``, ``use_rslora``) and
``adapter_model.safetensors`` with, for each adapted projection of each layer::

    base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   A [r, in_features]
    base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   B [out_features, r]

so that the adapted projection computes ``W x + scaling * B (A x)`` with
``scaling = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA). Any subset of q/k/v/o/gate/up/down
and different ranks per adapter (or per module, through ``rank_pattern``) are accepted;
anything else (DoRA, biases, embeddings, ``modules_to_save``) is refused by name.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from sglc.runtime.core import EngineError
from sglc.runtime.models.config import ModelConfig

ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
TARGET_MODULES = ATTENTION_MODULES + MLP_MODULES

_KEY = re.compile(
    r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(?:self_attn|mlp)\."
    r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_([AB])(?:\.[\w-]+)?\.weight$"
)
_WEIGHTS_FILE = "adapter_model.safetensors"


class LoraLoadError(EngineError):
    """An adapter directory that is missing, malformed, or does not fit the model."""


@dataclass(frozen=True)
class LoraWeights:
    """One adapted projection: ``A [rank, in]``, ``B [out, rank]`` and its scaling."""

    a: torch.Tensor
    b: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class LoraAdapter:
    """An adapter's weights in host memory, by (layer, module name)."""

    name: str
    path: Path
    weights: dict[tuple[int, str], LoraWeights]

    @property
    def max_rank(self) -> int:
        return max(w.rank for w in self.weights.values())

    @property
    def modules(self) -> frozenset[str]:
        return frozenset(module for _, module in self.weights)


def projection_shape(cfg: ModelConfig, module: str) -> tuple[int, int]:
    """(in_features, out_features) of a target module of `cfg`'s layers."""
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    return {
        "q_proj": (hidden, cfg.q_size), "k_proj": (hidden, cfg.kv_size),
        "v_proj": (hidden, cfg.kv_size), "o_proj": (cfg.q_size, hidden),
        "gate_proj": (hidden, inter), "up_proj": (hidden, inter), "down_proj": (inter, hidden),
    }[module]


def load_adapter(name: str, path: str | Path, cfg: ModelConfig,
                 dtype: torch.dtype) -> LoraAdapter:
    """Read and check one PEFT LoRA directory (weights in `dtype`, on the CPU)."""
    path = Path(path)
    where = f"LoRA adapter {name!r} ({path})"
    config = _read_config(path, where)
    tensors = _read_tensors(path, where)
    pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if match is None:
            raise LoraLoadError(f"{where}: unsupported weight {key!r} (only lora_A/lora_B of "
                                f"{', '.join(TARGET_MODULES)} are served)")
        layer, module, which = int(match[1]), match[2], match[3]
        pairs.setdefault((layer, module), {})[which] = tensor
    if not pairs:
        raise LoraLoadError(f"{where}: {_WEIGHTS_FILE} holds no LoRA weights")
    weights = {}
    for (layer, module), pair in sorted(pairs.items()):
        _check_fits(cfg, layer, module, pair, where)
        rank = int(pair["A"].shape[0])
        scaling = _scaling(config, f"model.layers.{layer}.{module}", module, rank)
        weights[(layer, module)] = LoraWeights(
            pair["A"].to(dtype).contiguous(), pair["B"].to(dtype).contiguous(), scaling
        )
    return LoraAdapter(name, path, weights)


def load_adapters(paths: dict[str, str] | Any, cfg: ModelConfig,
                  dtype: torch.dtype) -> dict[str, LoraAdapter]:
    """Every adapter of `EngineConfig.lora_paths`, by name."""
    return {name: load_adapter(name, path, cfg, dtype) for name, path in sorted(paths.items())}


def _read_config(path: Path, where: str) -> dict[str, Any]:
    file = path / "adapter_config.json"
    if not path.is_dir():
        raise LoraLoadError(f"{where}: no such directory")
    if not file.is_file():
        raise LoraLoadError(f"{where}: no adapter_config.json; is it a PEFT adapter directory?")
    try:
        config = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoraLoadError(f"{where}: cannot read adapter_config.json: {exc}") from None
    if not isinstance(config, dict):
        raise LoraLoadError(f"{where}: adapter_config.json is not a JSON object")
    unsupported = {
        "peft_type": config.get("peft_type", "LORA") != "LORA",
        "use_dora": bool(config.get("use_dora")),
        "bias": config.get("bias", "none") != "none",
        "fan_in_fan_out": bool(config.get("fan_in_fan_out")),
        "modules_to_save": bool(config.get("modules_to_save")),
    }
    bad = [key for key, is_bad in unsupported.items() if is_bad]
    if bad:
        raise LoraLoadError(f"{where}: unsupported adapter_config.json setting(s): "
                            + ", ".join(f"{k}={config.get(k)!r}" for k in bad))
    for key in ("r", "lora_alpha"):
        if not isinstance(config.get(key, 8), (int, float)) or config.get(key, 8) <= 0:
            raise LoraLoadError(f"{where}: adapter_config.json {key} must be a positive number")
    return config


def _read_tensors(path: Path, where: str) -> dict[str, torch.Tensor]:
    file = path / _WEIGHTS_FILE
    if not file.is_file():
        hint = " (only safetensors are read: convert adapter_model.bin)" \
            if (path / "adapter_model.bin").is_file() else ""
        raise LoraLoadError(f"{where}: no {_WEIGHTS_FILE}{hint}")
    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise LoraLoadError(f"{where}: corrupt or unreadable {_WEIGHTS_FILE}: {exc}") from None


def _check_fits(cfg: ModelConfig, layer: int, module: str, pair: dict[str, torch.Tensor],
                where: str) -> None:
    name = f"layer {layer} {module}"
    if set(pair) != {"A", "B"}:
        raise LoraLoadError(f"{where}: {name} has lora_{''.join(pair)} but not both A and B")
    if layer >= cfg.num_layers:
        raise LoraLoadError(f"{where}: {name}: the model has {cfg.num_layers} layers")
    if module in ("k_proj", "v_proj") and cfg.kv_source(layer) is not None:
        raise LoraLoadError(f"{where}: {name}: layer {layer} reads layer "
                            f"{cfg.kv_source(layer)}'s KV (kv_source_layers) and has no "
                            f"{module} to adapt")
    if cfg.moe is not None and module in MLP_MODULES:
        raise LoraLoadError(f"{where}: {name}: LoRA on a mixture-of-experts model's MLP is "
                            f"not served (adapt {', '.join(ATTENTION_MODULES)} only)")
    a, b = pair["A"], pair["B"]
    in_features, out_features = projection_shape(cfg, module)
    rank = a.shape[0] if a.dim() == 2 else -1
    if a.dim() != 2 or b.dim() != 2 or tuple(a.shape) != (rank, in_features) \
            or tuple(b.shape) != (out_features, rank) or rank < 1:
        raise LoraLoadError(
            f"{where}: {name} has A {tuple(a.shape)} and B {tuple(b.shape)}; the model needs "
            f"A [r, {in_features}] and B [{out_features}, r]"
        )


def _scaling(config: dict[str, Any], module_path: str, module: str, rank: int) -> float:
    """alpha / r (alpha / sqrt(r) with rsLoRA), alpha from `alpha_pattern` where one matches."""
    alpha = float(config.get("lora_alpha", 8))
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(?:.*\.)?(?:{pattern})", module_path) or pattern == module:
            alpha = float(value)
            break
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
