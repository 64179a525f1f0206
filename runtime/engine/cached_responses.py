"""The engine's side of the response cache (`Engine(response_cache=PATH)`).

On a request's way in (`route`, the caller's thread): each deterministic request group is
looked up; a hit is answered on the loop thread from the stored outputs (`deliver`) without
reaching the scheduler; a miss goes on to the core with a sink that saves its outputs once
all its samples finished. The cache itself (`sglc.runtime.response_cache`) knows nothing of
the engine.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import Output, StreamDelta
from sglc.runtime.engine.delivery import Sink, call
from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.loader import resolve_dtype
from sglc.runtime.req import Req
from sglc.runtime.response_cache import FlopsModel, ResponseCache, model_identity
from sglc.runtime.sparsity.calibration import calibration_path


def open_response_cache(config: EngineConfig, model_path: Path, hf_config: Mapping,
                        device: torch.device, kernel_backend: str) -> ResponseCache:
    """The cache at `config.response_cache` for this model, dtype, device and kernels."""
    assert config.response_cache is not None
    options = {
        "dtype": str(resolve_dtype(config.dtype, device, dict(hf_config))),
        "device_type": device.type,
        "kernel_backend": kernel_backend,
        "kv_policy": config.kv_policy,
    }
    if config.kv_policy != "exact":
        options.update(kv_budget=config.kv_budget, kv_sink_tokens=config.kv_sink_tokens,
                       kv_recent_ratio=config.kv_recent_ratio)
    if config.sparsity_calibration is not None:  # sparse requests' outputs follow its channels
        path = calibration_path(config.sparsity_calibration, model_path)
        options["sparsity_calibration"] = hashlib.sha256(path.read_bytes()).hexdigest()
    model_id = model_identity(model_path, options, config.lora_paths)
    return ResponseCache(
        config.response_cache, model_id, max_bytes=config.response_cache_max_bytes,
        policy=config.response_cache_policy, cost=config.response_cache_cost,
        flops=flops_model(ModelConfig.from_hf(hf_config)))


def flops_model(mcfg: ModelConfig) -> FlopsModel:
    """The parameters one token runs through: attention and MLP weights (the routed top-k
    experts of a sparse layer, not all of them) and the LM head."""
    h = mcfg.hidden_size
    attention = 2 * h * mcfg.q_size + 2 * h * mcfg.kv_size
    num_params = mcfg.vocab_size * h
    for layer in range(mcfg.num_layers):
        moe = mcfg.moe
        if moe is not None and moe.sparse_layers[layer]:
            mlp = (moe.top_k * moe.expert_intermediate_size
                   + moe.shared_expert_intermediate_size) * 3 * h + moe.num_experts * h
        else:
            mlp = 3 * h * mcfg.intermediate_size
        num_params += attention + mlp
    return FlopsModel(num_params, mcfg.num_layers, mcfg.q_size)


@dataclass
class _Miss:
    key: str
    num_samples: int
    start: float
    outputs: list[Output] = field(default_factory=list)


@dataclass(frozen=True)
class Routed:
    """A call's request groups after the lookup: those for the core, the answered ones."""

    groups: list[list[Req]]
    sink: Sink  # the misses' sink (it saves their outputs)
    hits: list[list[Output]]  # one list of samples per answered request


class CachedResponses:
    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def route(self, groups: list[list[Req]], sink: Sink) -> Routed:
        """Look each group up; the misses get a sink that saves their outputs."""
        misses: dict[str, _Miss] = {}
        rest, hits = [], []
        for group in groups:
            head = group[0]
            key = self.cache.key(head.prompt_ids, head.params)
            found = None if key is None else self.cache.lookup(key, head.rid, head.prompt_index)
            if found is not None:
                hits.append(found)
                continue
            rest.append(group)
            if key is not None:
                misses[head.rid] = _Miss(key, len(group), time.perf_counter())
        if not misses:
            return Routed(rest, sink, hits)

        def on_output(output: Output) -> None:
            # NOTE: saved before the caller hears of it, so a request sent after this one
            # returned finds its answer
            try:
                miss = misses.get(output.rid)
                if miss is not None:
                    miss.outputs.append(output)
                    if len(miss.outputs) == miss.num_samples:
                        del misses[output.rid]
                        self.cache.save(miss.key, miss.outputs,
                                        time.perf_counter() - miss.start)
            finally:
                sink.on_output(output)

        return Routed(rest, Sink(sink.on_delta, on_output, sink.on_done), hits)

    @staticmethod
    def deliver(hits: list[list[Output]], sink: Sink) -> None:
        """Answer hits as the core would (on the loop thread): each sample's text as one
        delta, then its Output; `on_done` just before a request's last Output."""
        for outputs in hits:
            for k, out in enumerate(outputs):
                if sink.on_delta is not None:
                    call(sink.on_delta, StreamDelta(
                        out.rid, out.index, out.text, list(out.token_ids), out.finish_reason,
                        out.logprobs, prompt_index=out.prompt_index), "on_delta")
                if k == len(outputs) - 1 and sink.on_done is not None:
                    call(sink.on_done, out.rid, "on_done")
                call(sink.on_output, out, "on_output")
