"""EngineConfig: every engine option, validated once, never mutated afterwards."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sglc.runtime.core import Flag, InvalidRequest, ParamRule, Range, Text


@dataclass(frozen=True)
class EngineConfig:
    dtype: str = "auto"
    device: str = "cpu"
    max_total_tokens: int | None = None  # KV pool slots; None = sized from the device
    max_running_requests: int = 256
    max_context_len: int | None = None  # None = the model's max_position_embeddings
    page_size: int = 1
    policy: str = "lpm"  # fcfs | lpm
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

    def __post_init__(self) -> None:
        if isinstance(self.index_cache_dir, os.PathLike):
            object.__setattr__(self, "index_cache_dir", os.fspath(self.index_cache_dir))
        for name, rule in _RULES.items():
            message = rule.error(name, getattr(self, name))
            if message is not None:
                raise InvalidRequest(message)
        if self.max_total_tokens is not None and self.max_total_tokens < 2 * self.page_size:
            raise InvalidRequest(f"max_total_tokens must be >= {2 * self.page_size} (two pages "
                                 f"of page_size={self.page_size}), got {self.max_total_tokens}")

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
    "policy": Text("a policy name (lpm or fcfs)"),
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
}
"""What each option may be (the rules SamplingParams words its errors with)."""
