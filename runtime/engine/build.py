"""Building an engine: options checked first, then the kernels, then an EngineCore whose KV
pool is sized to the device.

Everything that can be checked cheaply (options, the model directory, the kernel backend's
name) is checked before anything slow: building the kernels may compile C++.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from sglc.kernels import (
    KernelOps,
    check_backend,
    default_backend,
    for_kv_cache,
    get_ops,
    triton_interpreted,
)
from sglc.runtime.config import EngineConfig
from sglc.runtime.constrained.stage import ConstraintStage
from sglc.runtime.core import InvalidRequest
from sglc.runtime.engine.engine_core import EngineCore
from sglc.runtime.lora.adapter import load_adapters
from sglc.runtime.lora.pool import LoraPool
from sglc.runtime.mem import KVPool, ReqToTokenPool, SlidingKV, SlotAllocator, make_prefix_cache
from sglc.runtime.mem.kv_eviction import make_kv_policy
from sglc.runtime.model_runner import ModelRunner
from sglc.runtime.models.loader import LoadedModel, read_hf_config
from sglc.runtime.output import OutputProcessor
from sglc.runtime.quant import quantize_model
from sglc.runtime.scheduler.kv_manager import KVManager
from sglc.runtime.scheduler.policy import make_policy
from sglc.runtime.scheduler.scheduler import Scheduler
from sglc.runtime.sparsity.calibration import Calibration, load_calibration
from sglc.runtime.sparsity.decode import LabelCache

_CPU_POOL_BYTES = 2 << 30  # default KV pool budget on CPU
_GPU_MEM_FRACTION = 0.85  # share of free accelerator memory the KV pool may take


# builds a model's KV pool and slot allocator: (loaded model, its dtype) -> (pool, allocator)
KVMemory = Callable[[LoadedModel, torch.dtype], tuple[KVPool, SlotAllocator]]


@dataclass(frozen=True)
class Capacity:
    """How many tokens the engine can hold."""

    max_context_len: int  # tokens of one sequence: the model's limit, or the config's
    num_kv_slots: int  # KV pool slots requests can use (the padding page left out)

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt: one position stays for the first generated token."""
        return min(self.max_context_len - 1, self.num_kv_slots - 1)


# Other names an Engine option is accepted by: `attention_backend` picks every kernel, not
# only attention's, but the README and the CLI have long passed it.
OPTION_ALIASES = {"attention_backend": "kernel_backend"}


def engine_config(options: Mapping[str, object]) -> EngineConfig:
    """The EngineConfig of `Engine(**options)`; InvalidRequest naming unknown options."""
    options = dict(options)
    for alias, name in OPTION_ALIASES.items():
        if alias not in options:
            continue
        value = options.pop(alias)
        if options.get(name, value) != value:
            raise InvalidRequest(f"{alias}={value!r} and {name}={options[name]!r} disagree: "
                                 f"they are one option; give {name} only")
        options[name] = value
    known = {f.name for f in fields(EngineConfig)}
    unknown = sorted(str(k) for k in set(options) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InvalidRequest(f"unknown Engine option(s): {', '.join(unknown)}{hint}; the "
                             f"options are {', '.join(sorted(known | set(OPTION_ALIASES)))}")
    return EngineConfig(**options)


def engine_device(name: str) -> torch.device:
    """The torch device of `device=name`, which this machine must have (else InvalidRequest,
    before anything slow such as a kernel build)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InvalidRequest(f"device={name!r} is not a device; use cpu or cuda[:N]") from None
    check_device_available(device, f"device={name!r}", "the device option")
    return device


def check_device_available(device: torch.device, spelled: str, option: str) -> None:
    """InvalidRequest unless this machine has `device`: CUDA present, the index in range.
    `spelled` is how the caller wrote the device; `option` what to drop to run on the CPU."""
    if device.type != "cuda":
        return
    if not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else \
            "no CUDA device is visible"
        raise InvalidRequest(f"{spelled}: CUDA is not available ({why}); drop {option} to "
                             "run on the CPU")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise InvalidRequest(f"{spelled}: this machine has {count} CUDA "
                             f"device{'s' * (count != 1)} (cuda:0 to cuda:{count - 1})")


def check_options(config: EngineConfig, device: torch.device) -> None:
    """Options EngineConfig cannot check alone: the scheduling policy and kernel backend."""
    make_policy(config.policy, config)
    check_kernel_backend(config.kernel_backend, device)


def check_kernel_backend(backend: str | None, device: torch.device) -> None:
    """InvalidRequest unless `backend` (None: the device's default) can run on `device`."""
    if backend is None:
        return
    try:
        check_backend(backend)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if backend == "triton" and device.type != "cuda" and not triton_interpreted():
        raise InvalidRequest(
            "kernel backend 'triton' on CPU needs Triton's interpreter: set "
            "TRITON_INTERPRET=1 in the environment before starting (slow; for testing)"
        )
    if backend == "cpu" and device.type != "cpu":
        raise InvalidRequest(f"kernel backend 'cpu' runs on CPU tensors, not {device.type}")


def kernel_ops(backend: str | None, device: torch.device) -> KernelOps:
    """The op table of `backend` (None: the device's default), built now (this may compile
    the CPU kernels); InvalidRequest if it cannot run on `device`."""
    check_kernel_backend(backend, device)
    try:
        return get_ops(backend or default_backend(device.type))
    except ValueError as exc:  # e.g. the CPU kernels did not build
        raise InvalidRequest(f"kernel backend: {exc}") from None


def build_core(
    config: EngineConfig, loaded: LoadedModel, ops: KernelOps, device: torch.device,
    runner_type: Callable[..., ModelRunner] = ModelRunner,
    kv_memory: KVMemory | None = None,
    calibration: Calibration | None = None,
) -> tuple[EngineCore, Capacity]:
    """An EngineCore over the loaded model, and how many tokens it can hold. `runner_type`
    builds the model runner (tensor parallelism's runner also drives the other ranks);
    `kv_memory` builds the KV pool and its allocator (default: a pool of its own, sized by
    `max_total_tokens` or the device; several models sharing one budget pass theirs).
    `calibration`: the `sparsity_calibration` file already loaded (else loaded here)."""
    mcfg = loaded.config
    dtype = next(loaded.model.parameters()).dtype
    ops = for_kv_cache(ops, config.kv_cache_dtype)
    quantize_model(loaded.model, config.quantization, ops)  # frees the float weights first
    lora_pool = _lora_pool(config, loaded, dtype, device)  # before the KV pool takes memory
    max_context_len = min(
        config.max_context_len or mcfg.max_position_embeddings, mcfg.max_position_embeddings
    )
    sliding = None
    if kv_memory is None:
        num_slots = _num_slots(config, loaded, device, dtype, max_context_len)
        sliding_layers = _sliding_layers(config, loaded, max_context_len)
        num_sliding = None
        if sliding_layers:
            num_slots, num_sliding = _split_slots(config, loaded, dtype, num_slots,
                                                  max_context_len)
        pool = KVPool(
            num_layers=mcfg.num_layers, num_slots=num_slots,
            num_kv_heads=loaded.model.cfg.num_kv_heads,  # this process's (a shard's, under tp)
            head_dim=mcfg.head_dim, dtype=dtype, device=device, page_size=config.page_size,
            kv_cache_dtype=config.kv_cache_dtype, kv_sources=mcfg.kv_sources,
            sliding_layers=sliding_layers, num_sliding_slots=num_sliding,
        )
        allocator = SlotAllocator(num_slots, config.page_size, device)
        if sliding_layers:
            sliding = SlidingKV(SlotAllocator(num_sliding, config.page_size, device),
                                mcfg.kv_window)
    else:
        pool, allocator = kv_memory(loaded, dtype)
    labels = None
    if config.sparsity_calibration is not None:
        if kv_memory is not None or mcfg.kv_sources is not None:
            raise InvalidRequest("sparsity_calibration: Double Sparsity keeps a label cache per "
                                 "layer beside a pool of its own; it does not run on a shared "
                                 "(Prism) KV arena or a model that shares KV across layers "
                                 "(kv_source_layers)")
        calibration = calibration or sparsity_calibration(config, loaded.path)
        labels = LabelCache(calibration, config.sparsity_label_ratio, pool.num_slots, dtype,
                            device, config.sparsity_min_tokens)
    req_pool = ReqToTokenPool(config.max_running_requests + 1, max_context_len, device,
                              sliding=sliding is not None)
    cache_name = "none" if config.disable_radix_cache else "radix"
    cache = make_prefix_cache(cache_name, allocator, config.page_size, sliding)
    eviction = make_kv_policy(config.kv_policy, config.kv_budget, config.kv_sink_tokens,
                              config.kv_recent_ratio)
    kv = KVManager(allocator, req_pool, cache, config.page_size, not config.disable_radix_cache,
                   lora_names=config.lora_names, eviction=eviction, kv_pool=pool,
                   sliding=sliding)
    runner = runner_type(loaded.model, ops, pool, req_pool, device, lora_pool,
                         evicts=eviction is not None, key_scores=kv.key_scores, labels=labels)
    outputs = OutputProcessor(loaded.tokenizer, max_context_len)
    constraints = ConstraintStage(
        loaded.tokenizer, mcfg.vocab_size, sorted(loaded.eos_token_ids),
        room=outputs.room, apply_bitmask=ops.apply_token_bitmask,
        # NOTE: off with the radix cache off too, so that such runs measure plain decoding
        jump_forward=config.enable_jump_forward and not config.disable_radix_cache,
        cache_dir=config.index_cache_dir,
    )
    core = EngineCore(config, Scheduler(config, kv), runner, outputs, constraints)
    return core, Capacity(max_context_len, allocator.num_usable_slots)


def sparsity_calibration(config: EngineConfig, model_path: Path) -> Calibration | None:
    """The Double Sparsity calibration `sparsity_calibration` names, checked against the
    model (InvalidRequest naming the option otherwise); None when the option is unset."""
    if config.sparsity_calibration is None:
        return None
    return load_calibration(config.sparsity_calibration, model_path,
                            read_hf_config(model_path))


def _lora_pool(config: EngineConfig, loaded: LoadedModel, dtype: torch.dtype,
               device: torch.device) -> LoraPool | None:
    """The adapters of `lora_paths` in host memory and a device pool of
    `max_loras_per_batch` slots for them; None without adapters."""
    if not config.lora_paths:
        return None
    adapters = load_adapters(config.lora_paths, loaded.config, dtype)
    return LoraPool(loaded.config, adapters, config.max_loras_per_batch, config.max_lora_rank,
                    dtype, device)


def _num_slots(config: EngineConfig, loaded: LoadedModel, device: torch.device,
               dtype: torch.dtype, max_context_len: int) -> int:
    """KV pool slots: `max_total_tokens` (and the padding page), else a share of the device's
    free memory (CUDA) or a fixed budget (CPU); whole pages, at least two."""
    mcfg = loaded.config
    per_slot = KVPool.bytes_per_slot(
        num_layers=mcfg.num_kv_layers, num_kv_heads=loaded.model.cfg.num_kv_heads,
        head_dim=mcfg.head_dim, dtype=dtype, kv_cache_dtype=config.kv_cache_dtype,
    )
    if config.max_total_tokens is not None:
        slots = config.max_total_tokens + config.page_size
    elif device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        slots = int(free * _GPU_MEM_FRACTION) // per_slot
    else:
        slots = min(_CPU_POOL_BYTES // per_slot, 64 * max_context_len)
    return max(slots // config.page_size, 2) * config.page_size


def _sliding_layers(config: EngineConfig, loaded: LoadedModel,
                    max_context_len: int) -> frozenset[int]:
    """The layers whose K/V get a slot space of their own, freed as positions leave the
    window (`ModelConfig.sliding_kv_layers`). Empty (one slot space, sliding layers keeping
    every position) when no sequence outgrows the window, and for the features that index
    all layers' K/V by one slot: a kv_policy's compaction, Double Sparsity's label cache,
    tensor parallelism's other ranks."""
    window = loaded.config.kv_window
    if (window is None or window >= max_context_len or config.kv_policy != "exact"
            or config.sparsity_calibration is not None or config.tp_size > 1):
        return frozenset()
    return loaded.config.sliding_kv_layers


def _split_slots(config: EngineConfig, loaded: LoadedModel, dtype: torch.dtype,
                 num_slots: int, max_context_len: int) -> tuple[int, int]:
    """(full slots, sliding slots) of a pool with a sliding slot space.

    Sliding slots: what every running request can hold at once (its own window and the
    cached window it started from, a page of slack each) and one prefill pass (a chunk, or
    a whole prompt without chunking), at most `num_slots`. When the pool is sized from
    memory (no `max_total_tokens`), the bytes the sliding layers no longer take go to more
    full slots."""
    mcfg, size = loaded.config, config.page_size
    window = mcfg.kv_window
    one_pass = config.prefill_budget if config.is_chunking else max(config.prefill_budget,
                                                                    max_context_len)
    wanted = config.max_running_requests * (2 * window + 3 * size) + one_pass + window + size
    num_sliding = max(min(-(-wanted // size) + 1, num_slots // size), 2) * size
    if config.max_total_tokens is not None:
        return num_slots, num_sliding

    def per_slot(num_layers: int) -> int:
        return KVPool.bytes_per_slot(
            num_layers=num_layers, num_kv_heads=loaded.model.cfg.num_kv_heads,
            head_dim=mcfg.head_dim, dtype=dtype, kv_cache_dtype=config.kv_cache_dtype)

    owners = {i for i in range(mcfg.num_layers) if mcfg.kv_source(i) is None}
    num_sliding_owners = len(owners & mcfg.sliding_kv_layers)
    budget = num_slots * per_slot(len(owners)) - num_sliding * per_slot(num_sliding_owners)
    full = per_slot(len(owners) - num_sliding_owners)
    slots = budget // full if full else 64 * max_context_len
    return max(min(slots, 64 * max_context_len) // size, 2) * size, num_sliding
