"""Planning an offloaded engine from config.json and the options alone, before any weight
is read: the sizes the policy places, the budgets, the costs, the policy and placement."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from sglc.runtime.config import EngineConfig
from sglc.runtime.mem.kv_pool import KVPool
from sglc.runtime.models import build_model
from sglc.runtime.models.config import SUPPORTED_ARCHITECTURES, ModelConfig
from sglc.runtime.models.loader import resolve_dtype
from sglc.runtime.offload.placement import Placement, place
from sglc.runtime.offload.policy import (
    Budgets,
    Costs,
    OffloadError,
    Sizes,
    check_fits,
    solve_policy,
)

_DEFAULT_SEQUENCES = 4  # offloaded without max_total_tokens: KV for this many full contexts
_GPU_MEM_FRACTION = 0.85  # of free CUDA memory, when max_device_memory is not given
LAYER_PARAM = re.compile(r"model\.layers\.(\d+)\.(.+)")


@dataclass(frozen=True)
class OffloadPlan:
    """Everything decided before loading: `config` has `max_total_tokens` set to the KV
    the plan placed."""

    path: Path
    config: EngineConfig
    model_config: ModelConfig
    device: torch.device
    dtype: torch.dtype
    sizes: Sizes
    budgets: Budgets
    costs: Costs
    unit_bytes: dict[str, int]  # a layer's streamable matrices by name inside the layer
    placement: Placement

    def describe(self) -> str:
        return (f"{self.placement.describe(self.unit_bytes)}\n"
                f"costs: compute {self.costs.compute_s * 1e3:.3f} ms a layer, host "
                f"{self.costs.host_bytes_per_s / 1e9:.2f} GB/s, disk "
                f"{self.costs.disk_bytes_per_s / 1e9:.2f} GB/s")


def plan_offload(path: Path, hf_config: dict, config: EngineConfig,
                 device: torch.device) -> OffloadPlan:
    """The plan, or OffloadError naming the option and limit that make it impossible."""
    cfg = ModelConfig.from_hf(hf_config)
    if SUPPORTED_ARCHITECTURES[cfg.architecture]["moe"]:
        raise OffloadError(f"max_device_memory / max_host_memory: offloading streams dense "
                           f"Llama-family layers; {cfg.architecture} has experts")
    if cfg.kv_sources is not None:
        raise OffloadError("max_device_memory / max_host_memory: offloading places each "
                           "layer's own KV; this model shares KV across layers "
                           "(kv_source_layers, MixAttention)")
    dtype = resolve_dtype(config.dtype, device, hf_config)
    itemsize = torch.empty((), dtype=dtype).element_size()
    unit_bytes, fixed = _weight_sizes(cfg, dtype, device)
    max_context_len = min(config.max_context_len or cfg.max_position_embeddings,
                          cfg.max_position_embeddings)
    tokens = config.max_total_tokens or _DEFAULT_SEQUENCES * max_context_len
    config = replace(config, max_total_tokens=tokens)
    slots = max((tokens + config.page_size) // config.page_size, 2) * config.page_size
    per_slot = KVPool.bytes_per_slot(num_layers=1, num_kv_heads=cfg.num_kv_heads,
                                     head_dim=cfg.head_dim, dtype=dtype,
                                     kv_cache_dtype=config.kv_cache_dtype)
    rows = config.prefill_budget
    activations = (rows * (3 * cfg.hidden_size + cfg.q_size + 2 * cfg.kv_size
                           + 3 * cfg.intermediate_size) * itemsize
                   + config.max_running_requests * cfg.vocab_size * 4)
    sizes = Sizes(cfg.num_layers, sum(unit_bytes.values()), slots * per_slot, fixed,
                  activations,
                  kv_on_device_only=device.type == "cuda" or config.kv_cache_dtype != "auto")
    budgets = _budgets(config, device)
    check_fits(sizes, budgets)  # before the probe: nothing is measured for an impossible plan
    costs = _costs(config, cfg, unit_bytes, sizes, dtype, device, path)
    policy = solve_policy(sizes, budgets, costs)
    placement = place(policy, unit_bytes, sizes, budgets, costs)
    return OffloadPlan(path, config, cfg, device, dtype, sizes, budgets, costs, unit_bytes,
                       placement)


def meta_model(cfg: ModelConfig, ops=None) -> nn.Module:
    """The model on the meta device with its projections fused, as the engine runs it."""
    with torch.device("meta"):
        model = build_model(cfg, ops)
    model.fuse_projections()
    return model.eval().requires_grad_(False)


def _weight_sizes(cfg: ModelConfig, dtype: torch.dtype,
                  device: torch.device) -> tuple[dict[str, int], int]:
    """Bytes of layer 0's matrices by name, and of what always stays on the device."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    units: dict[str, int] = {}
    fixed = 0
    for name, param in meta_model(cfg).named_parameters():
        size = param.numel() * itemsize
        match = LAYER_PARAM.fullmatch(name)
        if match and param.dim() >= 2:
            if match.group(1) == "0":
                units[match.group(2)] = size
        else:
            fixed += size
    fixed += cfg.max_position_embeddings * cfg.head_dim * itemsize  # the rope table
    if device.type == "cpu":  # fuse_projections' transposed lm_head copy
        fixed += cfg.vocab_size * cfg.hidden_size * itemsize
    return units, fixed


def _budgets(config: EngineConfig, device: torch.device) -> Budgets:
    """Given budgets, else what this machine has (see EngineConfig's offloading options)."""
    available = _available_ram()
    host = config.max_host_memory
    if host is None:
        host = available if device.type == "cuda" else 0
    dev = config.max_device_memory
    if dev is None:
        if device.type == "cuda":
            dev = int(torch.cuda.mem_get_info(device)[0] * _GPU_MEM_FRACTION)
        else:
            dev = max(available - host, 0)
    disk = shutil.disk_usage(offload_dir(config)).free
    return Budgets(int(dev), int(host), int(disk))


def offload_dir(config: EngineConfig) -> str:
    return config.offload_dir or tempfile.gettempdir()


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _costs(config: EngineConfig, cfg: ModelConfig, unit_bytes: dict[str, int], sizes: Sizes,
           dtype: torch.dtype, device: torch.device, path: Path) -> Costs:
    if config.offload_costs is not None:
        given = dict(config.offload_costs)
        return Costs(float(given["compute_s"]), float(given["host_bytes_per_s"]),
                     float(given["disk_bytes_per_s"]))
    from sglc.runtime.offload.probe import measure_costs

    shapes = {name: tuple(p.shape) for name, p in meta_model(cfg).named_parameters()}
    layer_shapes = [shapes[f"model.layers.0.{u}"] for u in unit_bytes]
    return measure_costs(layer_shapes, sizes.kv_layer_bytes, dtype, device, path,
                         batch=min(config.max_running_requests, 16))
