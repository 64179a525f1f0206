"""EngineConfig: every engine option, validated once, never mutated afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.runtime.core import InvalidRequest


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

    def __post_init__(self) -> None:
        if self.lora_paths is not None:
            object.__setattr__(self, "lora_paths", MappingProxyType(
                {str(name): str(path) for name, path in dict(self.lora_paths).items()}))
        for name in ("max_running_requests", "page_size", "max_prefill_tokens",
                     "max_loras_per_batch"):
            if getattr(self, name) < 1:
                raise InvalidRequest(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_total_tokens is not None and self.max_total_tokens < 2 * self.page_size:
            raise InvalidRequest(f"max_total_tokens must be >= {2 * self.page_size}")
        if self.chunked_prefill_size is not None and self.chunked_prefill_size < 0:
            raise InvalidRequest("chunked_prefill_size must be >= 0 (0 or None disables chunking)")
        if not 0 <= self.new_token_reserve_ratio <= 1:
            raise InvalidRequest("new_token_reserve_ratio must be in [0, 1]")
        if self.max_lora_rank is not None and self.max_lora_rank < 1:
            raise InvalidRequest(f"max_lora_rank must be >= 1, got {self.max_lora_rank}")
        self._check_fairness()
        self._check_kv_policy()

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
