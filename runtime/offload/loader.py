"""Loading a model as a plan places it: resident weights on the device, host copies in
RAM (pinned on CUDA), the rest left in the mapped checkpoint; the streamer hooked on.

No weight of a streamed matrix is materialised on the device outside the two streaming
buffers, so a model larger than the RAM budget loads and runs.
"""

from __future__ import annotations

import torch
from torch import nn

from sglc.kernels import KernelOps
from sglc.runtime.models.loader import (
    LoadedModel,
    ModelLoadError,
    load_model_info,
    weight_files,
)
from sglc.runtime.offload.mapped import MappedCheckpoint
from sglc.runtime.offload.plan import LAYER_PARAM, OffloadPlan, meta_model
from sglc.runtime.offload.streamer import DiskParts, LayerStreamer, StreamedParam

# fused parameters -> the checkpoint's, stacked along rows (as LlamaAttention/LlamaMLP.fuse)
_FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


def checkpoint_names(name: str) -> tuple[str, ...]:
    """The checkpoint tensors a (fused) parameter is stacked from."""
    parts = name.split(".")
    for fused, sources in _FUSED.items():
        if fused in parts:
            i = parts.index(fused)
            return tuple(".".join([*parts[:i], s, *parts[i + 1:]]) for s in sources)
    return (name,)


def load_offloaded(plan: OffloadPlan, ops: KernelOps) -> tuple[LoadedModel, LayerStreamer | None]:
    """The model of `plan`, and the streamer that feeds its layers (None: all resident)."""
    cfg, device, dtype = plan.model_config, plan.device, plan.dtype
    checkpoint = MappedCheckpoint(weight_files(plan.path))
    model = meta_model(cfg, ops)
    tiers = plan.placement.unit_tiers
    streamed: list[list[StreamedParam]] = [[] for _ in range(cfg.num_layers)]
    missing: list[str] = []
    for name, param in list(model.named_parameters()):
        sources = checkpoint_names(name)
        absent = [s for s in sources if s not in checkpoint]
        if absent:
            missing += absent
            continue
        match = LAYER_PARAM.fullmatch(name)
        tier = tiers.get(match.group(2), "device") if match else "device"
        if tier == "disk":
            source: torch.Tensor | DiskParts = DiskParts(sources)
        else:
            pin = tier == "host" and device.type == "cuda"
            target = torch.device("cpu") if tier == "host" else device
            source = _read(checkpoint, sources, tuple(param.shape), dtype, target, pin)
        if tier == "device":
            _set_param(model, name, source)
            continue
        placeholder = _set_param(model, name, torch.empty(0, dtype=dtype, device=device))
        streamed[int(match.group(1))].append(StreamedParam(match.group(2), placeholder, source))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ModelLoadError(f"weights missing from {plan.path}: {', '.join(missing[:5])}{more}")
    model.tie_weights()
    model.rope_cache = model.build_rope(device).to(dtype)
    if device.type == "cpu":  # as fuse_projections does on CPU
        model.lm_head_t = model.lm_head.weight.detach().t().contiguous()
    _check_materialised(model)
    streamer = None
    if plan.placement.streams:
        streamer = LayerStreamer(model.model.layers, streamed, checkpoint, device, dtype,
                                 plan.config.offload_drop_page_cache)
    _, tokenizer, eos = load_model_info(plan.path)
    return LoadedModel(model, cfg, tokenizer, eos, plan.path), streamer


def _read(checkpoint: MappedCheckpoint, names: tuple[str, ...], shape: tuple[int, ...],
          dtype: torch.dtype, device: torch.device, pin: bool) -> torch.Tensor:
    """The parameter stacked from `names`, read once, the mapped pages let go after."""
    out = torch.empty(shape, dtype=dtype, device=device, pin_memory=pin)
    row = 0
    for name in names:
        part = checkpoint.view(name)
        if part.dim() == 0 or tuple(part.shape[1:]) != shape[1:]:
            raise ModelLoadError(f"weight {name} has shape {tuple(part.shape)}, the config "
                                 f"implies rows of {shape[1:]}")
        out[row:row + part.shape[0]].copy_(part)
        row += part.shape[0]
        checkpoint.drop(name)
    if row != shape[0]:
        raise ModelLoadError(f"weights {', '.join(names)} have {row} rows, the config implies "
                             f"{shape[0]}")
    return out


def _set_param(model: nn.Module, name: str, tensor: torch.Tensor) -> nn.Parameter:
    owner, _, leaf = name.rpartition(".")
    param = nn.Parameter(tensor, requires_grad=False)
    setattr(model.get_submodule(owner), leaf, param)
    return param


def _check_materialised(model: nn.Module) -> None:
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ModelLoadError(f"offloading loader left tensors unloaded: {', '.join(left[:5])}")
