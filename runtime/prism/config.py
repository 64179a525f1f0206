"""PrismConfig: how several models share one engine's memory and time, checked once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sglc.runtime.core import InvalidRequest

KV_SHARING = ("elastic", "static")
MODEL_ORDERS = ("edf", "fcfs")

# engine options the shared arena cannot serve yet, with why (each named in its error)
UNSUPPORTED_OPTIONS = {
    "max_total_tokens": "the KV pools are sized by memory_budget",
    "tp_size": "tensor parallelism shards one model over processes",
    "dp_size": "data parallelism runs replicas in processes",
    "kv_cache_dtype": "the arena stores K and V unquantized",
    "quantization": "a dropped model reloads its float weights from disk",
    "lora_paths": "adapters live beside one model's weights",
    "response_cache": "the response cache keys one model's engine",
}


@dataclass(frozen=True)
class PrismConfig:
    """`memory_budget` (bytes) holds the resident models' weights and one KV arena that
    every model's pool allocates from, in `chunk_bytes` chunks. At most
    `max_resident_models` (None: all) keep their weights at once; a model idle for
    `idle_drop_s` seconds (None: never) drops them too. `slo_ms` maps a model name to its
    latency target, the deadline its requests are scheduled by: `model_order` "edf"
    (earliest deadline first across models) or "fcfs" (the oldest request's model first).
    `kv_sharing` "elastic" lets each pool grow into the others' free and cached memory;
    "static" gives each model an equal share of the arena, fixed (the baseline)."""

    memory_budget: int
    max_resident_models: int | None = None
    idle_drop_s: float | None = None
    slo_ms: Mapping[str, float] = field(default_factory=dict)
    chunk_bytes: int = 64 << 10
    kv_sharing: str = "elastic"
    model_order: str = "edf"

    def __post_init__(self) -> None:
        for name, allowed in (("kv_sharing", KV_SHARING), ("model_order", MODEL_ORDERS)):
            if getattr(self, name) not in allowed:
                raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got "
                                     f"{getattr(self, name)!r:.40}")
        _check_int("memory_budget", self.memory_budget, 1)
        _check_int("chunk_bytes", self.chunk_bytes, 1)
        if self.max_resident_models is not None:
            _check_int("max_resident_models", self.max_resident_models, 1)
        if self.idle_drop_s is not None:
            check_positive("idle_drop_s", self.idle_drop_s, "seconds")
        if not isinstance(self.slo_ms, Mapping):
            raise InvalidRequest(f"slo_ms must map model names to milliseconds, got "
                                 f"{type(self.slo_ms).__name__}")
        for name, slo in self.slo_ms.items():
            check_positive(f"slo_ms[{name!r}]", slo, "milliseconds")
        object.__setattr__(self, "slo_ms", MappingProxyType(dict(self.slo_ms)))

    def check_models(self, names: list[str]) -> None:
        """InvalidRequest naming an `slo_ms` entry that is not one of `names`."""
        unknown = sorted(set(self.slo_ms) - set(names))
        if unknown:
            raise InvalidRequest(f"slo_ms names unknown model(s) {', '.join(unknown)}; the "
                                 f"models are {', '.join(names)}")


def check_positive(name: str, value: object, unit: str) -> float:
    """`value` as a float; InvalidRequest naming `name` unless it is a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number of {unit}, got {value!r:.40}")
    return float(value)


def check_engine_options(options: Mapping[str, object]) -> None:
    """InvalidRequest naming an engine option several models in one arena cannot take."""
    for name, why in UNSUPPORTED_OPTIONS.items():
        if options.get(name) not in (None, "auto", 1):
            raise InvalidRequest(f"{name} cannot be used with memory_budget (models sharing "
                                 f"one memory): {why}")
    if options.get("kernel_backend", options.get("attention_backend")) == "cpu":
        raise InvalidRequest("kernel_backend='cpu' cannot be used with memory_budget: its "
                             "kernels read contiguous K/V buffers, and a model's view of the "
                             "shared arena is strided; use 'torch' (the default there) or "
                             "'triton'")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidRequest(f"{name} must be an integer >= {low}, got {value!r:.40}")
