"""EngineConfig: every engine option, validated once, never mutated afterwards."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.runtime.core import Flag, InvalidRequest, ParamRule, Range, Text

# the same names as sglc.kernels.kv_quant / sglc.runtime.quant (this module stays torch-free)
KV_CACHE_DTYPES = ("auto", "int8", "int4")
QUANTIZATIONS = ("int8", "int4")  # sglc.runtime.quant.QUANTIZATIONS
OFFLOAD_COSTS = ("compute_s", "host_bytes_per_s", "disk_bytes_per_s")
_BYTE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 10**3, "m": 1 << 20,
               "mib": 1 << 20, "mb": 10**6, "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
               "t": 1 << 40, "tib": 1 << 40, "tb": 10**12}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_bytes(name: str, value: object) -> int | None:
    """Option `name`'s byte count from an int or a string such as "2GiB", "512MB" or "1.5G"
    (K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000); None stays None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _BYTES.fullmatch(value) if isinstance(value, str) else None
        unit = _BYTE_UNITS.get(match.group(2).lower()) if match else None
        if unit is None:
            raise InvalidRequest(f"{name} must be a number of bytes or a size such as "
                                 f"\"2GiB\" or \"512MB\", got {value!r}")
        number = int(float(match.group(1)) * unit)
    if number < 1:
        raise InvalidRequest(f"{name} must be at least 1 byte, got {value!r}")
    return number


@dataclass(frozen=True)
class EngineConfig:
    dtype: str = "auto"
    device: str = "cpu"
    max_total_tokens: int | None = None  # KV pool slots; None = sized from the device
    max_running_requests: int = 256
    max_context_len: int | None = None  # None = the model's max_position_embeddings
    page_size: int = 1
    policy: str = "lpm"  # fcfs | lpm | vtc | dlpm
    chunked_prefill_size: int | None = 2048  # None or 0 = no chunking
    max_prefill_tokens: int = 16384  # token budget of one extend batch
    disable_radix_cache: bool = False
    # torch | triton | cpu: the implementation of every op in sglc.kernels.KernelOps
    # (attention, RMSNorm, RoPE, SiLU-and-mul, KV store, logits bitmask); None: triton on
    # CUDA, cpu on CPU where it builds, else torch. `Engine(attention_backend=...)` is
    # accepted as another name for it.
    kernel_backend: str | None = None
    new_token_reserve_ratio: float = 0.3  # share of running requests' future tokens kept free
    in_batch_prefix_len: int = 32  # defer a request sharing this many head tokens with one in the batch
    seed: int = 0  # for requests without their own seed
    enable_jump_forward: bool = True  # constrained decoding: append forced strings at once
    index_cache_dir: str | None = None  # constraint automata on disk; None = ~/.cache/sglc
    # request limits: a request beyond one is refused (InvalidRequest naming the limit)
    max_n: int = 128  # samples per prompt (SamplingParams.n)
    max_new_tokens_limit: int = 1 << 20  # the largest SamplingParams.max_new_tokens
    max_prompt_tokens: int | None = None  # None = what fits the context length and KV pool
    max_prompts_per_call: int = 16384  # prompts in one generate/submit call
    max_stop_strings: int = 64  # stop strings, and stop regexes, per request (each)
    max_stop_token_ids: int = 64  # stop token ids per request

    # multi-LoRA (S-LoRA): PEFT adapter directories by the name requests use
    # (`SamplingParams.lora`); at most `max_loras_per_batch` distinct adapters run at once
    # (the adapter pool's slots, loaded least-recently-used); ranks up to `max_lora_rank`
    # (None: the largest rank among the adapters)
    lora_paths: Mapping[str, str] | None = None
    max_loras_per_batch: int = 8
    max_lora_rank: int | None = None
    # fair scheduling (policy vtc or dlpm): a client's service is input_weight x its prompt
    # tokens + output_weight x its generated tokens (VTC's defaults 1 and 2), divided by its
    # weight in `client_weights` (default 1; requests name their client in
    # SamplingParams.client); dlpm refills each waiting client's deficit by
    # `dlpm_quantum` x its weight when none has any left
    fair_token_weights: tuple[float, float] = (1.0, 2.0)
    client_weights: Mapping[str, float] | None = None
    dlpm_quantum: float = 2048.0
    # count per-client service under fcfs and lpm too (vtc and dlpm always do): a step's
    # cost, off by default
    track_client_service: bool = False
    # KV eviction: "exact" keeps every token's KV; "h2o" (heavy hitters + recent tokens) and
    # "window" (`kv_sink_tokens` attention sinks + recent tokens) keep `kv_budget` tokens per
    # request once its prefill is done (h2o: `kv_recent_ratio` of them the most recent).
    # Needs page_size 1; evicted KV never reaches the prefix cache.
    kv_policy: str = "exact"
    kv_budget: int | None = None
    kv_sink_tokens: int = 4
    kv_recent_ratio: float = 0.5
    # scaling out (sglc.runtime.distributed): `tp_size` processes each hold a Megatron-style
    # shard of the model (rank 0 schedules and samples; gloo on CPU, nccl on CUDA);
    # `dp_size` engine replicas in processes behind a router that sends each request to
    # the replica whose prefix cache likely holds most of its prompt ("cache_aware"), unless
    # the replicas' queues differ by more than `dp_balance_threshold` requests (then the
    # least loaded), or to each in turn ("round_robin"). A prefix match below
    # `dp_cache_threshold` of the prompt goes to the least loaded replica too.
    tp_size: int = 1
    dp_size: int = 1
    dp_router: str = "cache_aware"
    dp_balance_threshold: int = 32  # why 32: benchmarks/RESULTS.md, "Issue 18"
    dp_cache_threshold: float = 0.3
    # response cache ("On Optimal Caching and Model Multiplexing"): deterministic requests'
    # outputs (greedy, or seeded sampling) in the SQLite file `response_cache` (None: off),
    # answered from there without scheduling when asked again. Its entries take at most
    # `response_cache_max_bytes`; eviction by `response_cache_policy` (lru, lec, gdsf),
    # which weighs entries by `response_cache_cost` (flops: estimated; latency: measured)
    response_cache: str | None = None
    response_cache_max_bytes: int = 256 << 20
    response_cache_policy: str = "gdsf"
    response_cache_cost: str = "flops"
    # KV cache storage: "auto" stores K/V in the model's dtype; "int8" / "int4" store them
    # group-wise quantized (FlexGen: asymmetric min/max over groups of 64 values per token,
    # float16 scale and zero per group), dequantized inside the attention kernels
    kv_cache_dtype: str = "auto"
    # weight-only quantization at load time: None keeps the checkpoint's weights; "int8" /
    # "int4" store the attention and MLP projections group-wise quantized (groups of 64 along
    # the input dimension) and run them through dequantizing kernels
    quantization: str | None = None
    # Double Sparsity (sglc.runtime.sparsity): the outlier-channel file `sglc calibrate` wrote
    # ("auto": MODEL/double_sparsity.json; None: off, and requests with attention_sparsity
    # are refused). A label cache keeps the top `sparsity_label_ratio` of each KV head's
    # channels of every token's K (that share of K's memory again); requests may ask for
    # channel_ratio up to it. A sparse request attends to at least `sparsity_min_tokens`
    # tokens per step (a shorter context is attended densely)
    sparsity_calibration: str | None = None
    sparsity_label_ratio: float = 0.25
    sparsity_min_tokens: int = 16
    # offloading (FlexGen): `max_device_memory` bounds the tensors the model computes from
    # (on CPU: the resident set in RAM) and `max_host_memory` the RAM copies streamed in
    # from there (unset: none on CPU, the available RAM on CUDA); the rest is read from the
    # memory-mapped safetensors files (disk). Bytes, or strings such as "512MiB" / "2GB".
    # Setting either turns offloading on: a linear program over FlexGen's cost model places
    # the weights and the KV cache on the tiers, from the costs in `offload_costs`
    # (compute_s, host_bytes_per_s, disk_bytes_per_s; None: measured at start-up), and the
    # layers stream with the next one prefetched. KV on disk lives in `offload_dir` (None:
    # the system's temp dir); `offload_drop_page_cache` evicts the disk tier's pages from
    # the page cache after each read, so that the OS does not keep them in RAM. Without
    # `max_total_tokens`, an offloaded engine's KV pool holds four full contexts
    max_device_memory: int | str | None = None
    max_host_memory: int | str | None = None
    offload_dir: str | None = None
    offload_costs: Mapping[str, float] | None = None
    offload_drop_page_cache: bool = False

    def __post_init__(self) -> None:
        if self.lora_paths is not None:
            object.__setattr__(self, "lora_paths", MappingProxyType(
                {str(name): str(path) for name, path in dict(self.lora_paths).items()}))
        for name in ("max_device_memory", "max_host_memory"):
            object.__setattr__(self, name, parse_bytes(name, getattr(self, name)))
        for name in ("index_cache_dir", "response_cache", "sparsity_calibration", "offload_dir"):
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        for name, rule in _RULES.items():
            message = rule.error(name, getattr(self, name))
            if message is not None:
                raise InvalidRequest(message)
        if self.max_total_tokens is not None and self.max_total_tokens < 2 * self.page_size:
            raise InvalidRequest(f"max_total_tokens must be >= {2 * self.page_size} (two pages "
                                 f"of page_size={self.page_size}), got {self.max_total_tokens}")
        self._check_fairness()
        self._check_kv_policy()
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise InvalidRequest(f"unknown kv_cache_dtype {self.kv_cache_dtype!r}; choose one "
                                 f"of {', '.join(KV_CACHE_DTYPES)}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise InvalidRequest(f"unknown quantization {self.quantization!r}; choose one of "
                                 f"{', '.join(QUANTIZATIONS)} (or leave it unset)")
        self._check_scaling()
        self._check_response_cache()
        self._check_sparsity()
        self._check_offload()

    def _check_sparsity(self) -> None:
        if self.sparsity_calibration is None:
            return
        if self.tp_size > 1:
            raise InvalidRequest(f"sparsity_calibration with tp_size={self.tp_size}: Double "
                                 "Sparsity needs tp_size=1 for now")
        if self.kv_policy != "exact":
            raise InvalidRequest(f"sparsity_calibration with kv_policy {self.kv_policy!r}: "
                                 "Double Sparsity needs kv_policy 'exact'")

    def _check_offload(self) -> None:
        if self.offload_costs is not None:
            costs = dict(self.offload_costs)
            if set(costs) != set(OFFLOAD_COSTS) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                    for v in costs.values()):
                raise InvalidRequest(f"offload_costs must give {', '.join(OFFLOAD_COSTS)}, "
                                     f"each a number > 0; got {costs!r}")
            object.__setattr__(self, "offload_costs", MappingProxyType(
                {k: float(v) for k, v in costs.items()}))
        if not self.offloads:
            return
        if self.tp_size > 1:
            raise InvalidRequest(f"max_device_memory / max_host_memory with tp_size="
                                 f"{self.tp_size}: offloading needs tp_size=1")
        if self.quantization is not None:
            raise InvalidRequest(f"max_device_memory / max_host_memory with quantization="
                                 f"{self.quantization!r}: offloading streams the checkpoint's "
                                 "weights as they are; choose one")

    def _check_scaling(self) -> None:
        if self.dp_router not in ("cache_aware", "round_robin"):
            raise InvalidRequest(f"unknown dp_router {self.dp_router!r}; choose one of "
                                 "cache_aware, round_robin")
        if self.tp_size > 1 and self.dp_size > 1:
            raise InvalidRequest(f"tp_size={self.tp_size} with dp_size={self.dp_size}: "
                                 "combining tensor and data parallelism is not supported yet; "
                                 "choose one")
        if self.tp_size > 1 and self.lora_paths:
            raise InvalidRequest(f"lora_paths with tp_size={self.tp_size}: LoRA adapters are "
                                 "not sharded yet; serve them with tp_size=1")
        if self.tp_size > 1 and self.kv_policy != "exact":
            raise InvalidRequest(f"kv_policy {self.kv_policy!r} with tp_size={self.tp_size}: "
                                 "KV eviction needs tp_size=1")
        if self.tp_size > 1 and (self.quantization is not None or self.kv_cache_dtype != "auto"):
            raise InvalidRequest(f"quantization={self.quantization!r} / kv_cache_dtype="
                                 f"{self.kv_cache_dtype!r} with tp_size={self.tp_size}: "
                                 "quantized weights and KV need tp_size=1 for now")

    def _check_response_cache(self) -> None:
        if self.response_cache_policy not in ("lru", "lec", "gdsf"):
            raise InvalidRequest(f"unknown response_cache_policy "
                                 f"{self.response_cache_policy!r}; choose one of lru, lec, gdsf")
        if self.response_cache_cost not in ("flops", "latency"):
            raise InvalidRequest(f"unknown response_cache_cost {self.response_cache_cost!r}; "
                                 "choose flops or latency")

    def _check_kv_policy(self) -> None:
        if self.kv_policy not in ("exact", "h2o", "window"):
            raise InvalidRequest(f"unknown kv_policy {self.kv_policy!r}; choose one of exact, "
                                 "h2o, window")
        if self.kv_policy == "exact":
            return
        if self.kv_budget is None or self.kv_budget < 2:
            raise InvalidRequest(f"kv_policy {self.kv_policy!r} needs kv_budget >= 2 (KV "
                                 f"tokens kept per request), got {self.kv_budget}")
        if self.page_size != 1:
            raise InvalidRequest(f"kv_policy {self.kv_policy!r} needs page_size 1, got "
                                 f"{self.page_size}")
        if not 0 <= self.kv_sink_tokens < self.kv_budget:
            raise InvalidRequest(f"kv_sink_tokens must be in [0, kv_budget), got "
                                 f"{self.kv_sink_tokens}")
        if not 0 < self.kv_recent_ratio <= 1:
            raise InvalidRequest(f"kv_recent_ratio must be in (0, 1], got {self.kv_recent_ratio}")

    def _check_fairness(self) -> None:
        weights = tuple(self.fair_token_weights)
        if len(weights) != 2 or any(not w >= 0 for w in weights) or not any(weights):
            raise InvalidRequest(f"fair_token_weights must be two numbers >= 0 (input, output), "
                                 f"not both 0; got {self.fair_token_weights!r}")
        object.__setattr__(self, "fair_token_weights", (float(weights[0]), float(weights[1])))
        if self.client_weights is not None:
            bad = {c: w for c, w in dict(self.client_weights).items() if not w > 0}
            if bad:
                raise InvalidRequest(f"client_weights must be > 0, got {bad}")
            object.__setattr__(self, "client_weights", MappingProxyType(
                {str(c): float(w) for c, w in dict(self.client_weights).items()}))
        if not self.dlpm_quantum > 0:
            raise InvalidRequest(f"dlpm_quantum must be > 0, got {self.dlpm_quantum}")

    @property
    def offloads(self) -> bool:
        """A memory budget is set: the model is placed by the offloading policy."""
        return self.max_device_memory is not None or self.max_host_memory is not None

    @property
    def lora_names(self) -> tuple[str, ...]:
        """The adapters this engine serves, sorted."""
        return tuple(sorted(self.lora_paths or ()))

    @property
    def prefill_budget(self) -> int:
        """Max new tokens in one extend batch; a longer request is chunked to fit it."""
        if self.chunked_prefill_size:
            return min(self.chunked_prefill_size, self.max_prefill_tokens)
        return self.max_prefill_tokens

    @property
    def is_chunking(self) -> bool:
        return bool(self.chunked_prefill_size)



_COUNT = Range(low=1, integer=True)
_RULES: dict[str, ParamRule] = {
    "dtype": Text("a dtype name (auto, float32, bfloat16, float16)"),
    "device": Text("a device name such as cpu or cuda:0"),
    "max_total_tokens": Range(low=2, integer=True, optional=True),
    "max_running_requests": _COUNT,
    "max_context_len": Range(low=2, integer=True, optional=True),
    "page_size": _COUNT,
    "policy": Text("a policy name (lpm, fcfs, vtc or dlpm)"),
    "chunked_prefill_size": Range(low=0, integer=True, optional=True),
    "max_prefill_tokens": _COUNT,
    "disable_radix_cache": Flag(),
    "kernel_backend": Text("a kernel backend name (torch, triton or cpu)", optional=True),
    "new_token_reserve_ratio": Range(low=0, high=1),
    "in_batch_prefix_len": _COUNT,
    "seed": Range(low=-(2**63), high=2**63, high_open=True, integer=True),
    "enable_jump_forward": Flag(),
    "index_cache_dir": Text("a directory path", optional=True),
    "max_n": _COUNT,
    "max_new_tokens_limit": _COUNT,
    "max_prompt_tokens": Range(low=1, integer=True, optional=True),
    "max_prompts_per_call": _COUNT,
    "max_stop_strings": _COUNT,
    "max_stop_token_ids": _COUNT,
    "max_loras_per_batch": _COUNT,
    "max_lora_rank": Range(low=1, integer=True, optional=True),
    "track_client_service": Flag(),
    "kv_policy": Text("a KV policy name (exact, h2o or window)"),
    "kv_budget": Range(low=2, integer=True, optional=True),
    "kv_sink_tokens": Range(low=0, integer=True),
    "kv_recent_ratio": Range(low=0, high=1, low_open=True),
    "tp_size": _COUNT,
    "dp_size": _COUNT,
    "dp_router": Text("a router name (cache_aware or round_robin)"),
    "dp_balance_threshold": Range(low=0, integer=True),
    "dp_cache_threshold": Range(low=0, high=1),
    "response_cache": Text("an SQLite file path", optional=True),
    "response_cache_max_bytes": _COUNT,
    "response_cache_policy": Text("a response cache policy name (lru, lec or gdsf)"),
    "response_cache_cost": Text("a response cache cost (flops or latency)"),
    "kv_cache_dtype": Text("a KV cache dtype name (auto, int8 or int4)"),
    "quantization": Text("a weight quantization name (int8 or int4)", optional=True),
    "sparsity_calibration": Text("a calibration file path or 'auto'", optional=True),
    "sparsity_label_ratio": Range(low=0, high=1, low_open=True),
    "sparsity_min_tokens": _COUNT,
    "offload_dir": Text("a directory path", optional=True),
    "offload_drop_page_cache": Flag(),
}
"""What each option may be (the rules SamplingParams words its errors with)."""
