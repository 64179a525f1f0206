"""Load a local Hugging Face format model directory: config, safetensors, tokenizer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from sglc.kernels import KernelOps
from sglc.progress import progress
from sglc.runtime.core import EngineError
from sglc.runtime.models import build_model
from sglc.runtime.models.config import ModelConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
# checkpoint keys that carry no weights of ours (derived buffers some exporters save)
_IGNORED_KEY_PARTS = ("rotary_emb.inv_freq",)


class ModelLoadError(EngineError):
    """The model directory is missing, incomplete or corrupt."""


class WeightShard(Protocol):
    """Which part of the model one process holds (tensor parallelism): the shapes of its
    model, and its slice of each checkpoint tensor, read from the file without the rest."""

    def local_config(self, cfg: ModelConfig) -> ModelConfig:
        """The config this process's model is built with (its shard's sizes)."""
        ...

    def read(self, file: Any, name: str) -> torch.Tensor:
        """This shard's part of tensor `name` of an open safetensors file (`safe_open`)."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    config: ModelConfig
    tokenizer: PreTrainedTokenizerBase | None  # None if the directory has none
    eos_token_ids: frozenset[int]
    path: Path


def resolve_dtype(dtype: str | torch.dtype, device: torch.device, hf_config: dict) -> torch.dtype:
    """`auto`: float32 on CPU, the checkpoint's dtype (or bfloat16) on accelerators."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cpu":
            return torch.float32
        name = hf_config.get("torch_dtype") or hf_config.get("dtype") or "bfloat16"
        return DTYPES.get(str(name), torch.bfloat16)
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None


def read_hf_config(path: Path) -> dict:
    if not path.is_dir():
        raise ModelLoadError(f"model directory {str(path)!r} does not exist")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelLoadError(f"{path} has no config.json; is it a Hugging Face model directory?")
    return read_json(cfg_path)


def load_model_dir(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "cpu",
    ops: KernelOps | None = None,
    load_tokenizer: bool = True,
    fuse: bool = True,
    shard: WeightShard | None = None,
) -> LoadedModel:
    """Model, config, tokenizer and EOS ids of a local HF directory. `fuse=False` keeps the
    Hugging Face parameter layout (for training or re-saving). With `shard`, the model is
    that shard's (its sizes, its slices of the weights); `config` stays the whole model's."""
    path = Path(path)
    hf = read_hf_config(path)
    cfg = ModelConfig.from_hf(hf)
    device = torch.device(device)
    dtype = resolve_dtype(dtype, device, hf)
    model = _instantiate(shard.local_config(cfg) if shard else cfg, ops, device, dtype)
    _load_weights(model, path, device, dtype, shard)
    if fuse:
        model.fuse_projections()
    tokenizer = _load_tokenizer(path) if load_tokenizer else None
    return LoadedModel(model, cfg, tokenizer, _eos_ids(path, cfg, tokenizer), path)


def _instantiate(cfg: ModelConfig, ops, device: torch.device, dtype: torch.dtype) -> nn.Module:
    with torch.device("meta"):
        model = build_model(cfg, ops)
    model.to_empty(device=device)
    model.to(dtype)
    model.tie_weights()
    model.rope_cache = model.build_rope(device).to(dtype)
    return model.eval().requires_grad_(False)


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of a model directory (its index's shards, else every one)."""
    return _weight_files(path)


def _weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if not shards or missing:
            raise ModelLoadError(f"{index} names missing shard(s): {', '.join(missing) or 'none listed'}")
        return [path / s for s in shards]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path} has no *.safetensors weights")
    return files


def _load_weights(model: nn.Module, path: Path, device: torch.device, dtype: torch.dtype,
                  shard: WeightShard | None = None) -> None:
    params = dict(model.named_parameters(remove_duplicate=False))
    seen: set[str] = set()
    files = _weight_files(path)
    with progress(desc=f"loading {path.name}", total=len(params), unit="tensor",
                  delay=1.0) as bar:
        for file in files:
            try:
                with safe_open(str(file), framework="pt", device="cpu") as f:
                    for name in f.keys():
                        if shard is not None and name in params:
                            tensor = shard.read(f, name)
                        else:
                            tensor = f.get_tensor(name)
                        _copy_param(params, name, tensor, file, dtype)
                        seen.add(name)
                        bar.update()
            except (SafetensorError, OSError) as exc:
                raise ModelLoadError(
                    f"corrupt or unreadable safetensors file {file}: {exc}") from None
    tied = {"lm_head.weight"} if model.cfg.tie_word_embeddings else set()
    missing = sorted(set(params) - seen - tied)
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ModelLoadError(f"weights missing from {path}: {', '.join(missing[:5])}{more}")


def _copy_param(params: dict, name: str, tensor: torch.Tensor, file: Path, dtype) -> None:
    if name not in params:
        if not any(part in name for part in _IGNORED_KEY_PARTS):
            log.warning("ignoring unexpected weight %s in %s", name, file.name)
        return
    param = params[name]
    if tuple(param.shape) != tuple(tensor.shape):
        raise ModelLoadError(
            f"weight {name} in {file} has shape {tuple(tensor.shape)}, "
            f"the config implies {tuple(param.shape)}"
        )
    param.data.copy_(tensor.to(dtype))


def load_model_info(path: str | Path) -> tuple[ModelConfig, PreTrainedTokenizerBase | None,
                                               frozenset[int]]:
    """The config, tokenizer and EOS ids of a model directory, without its weights (for a
    front end whose replicas hold the model)."""
    path = Path(path)
    cfg = ModelConfig.from_hf(read_hf_config(path))
    tokenizer = _load_tokenizer(path)
    return cfg, tokenizer, _eos_ids(path, cfg, tokenizer)


def _load_tokenizer(path: Path) -> PreTrainedTokenizerBase | None:
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises many kinds for a broken tokenizer
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {exc}") from None


def _eos_ids(
    path: Path, cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase | None
) -> frozenset[int]:
    """EOS ids: generation_config.json first (what HF generate uses), then config, tokenizer."""
    gen_path = path / "generation_config.json"
    if gen_path.is_file():
        eos = read_json(gen_path).get("eos_token_id")
        if eos is not None:
            return frozenset(eos if isinstance(eos, list) else [eos])
    if cfg.eos_token_ids:
        return frozenset(cfg.eos_token_ids)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        return frozenset([tokenizer.eos_token_id])
    return frozenset()
