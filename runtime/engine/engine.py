"""sglc.Engine: the serving engine's public, thread-safe API.

A loop thread owns the EngineCore and runs `step()` while there is work; callers on any
thread or coroutine submit requests through an inbox, so concurrent requests batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from sglc.constraints.regex import ConstraintError
from sglc.kernels import KernelOps, default_backend, get_ops, triton_interpreted
from sglc.runtime.config import EngineConfig
from sglc.runtime.constrained.stage import ConstraintStage, request_regex
from sglc.runtime.core import (
    EngineError,
    InvalidRequest,
    Output,
    SamplingParams,
    StreamDelta,
    new_rid,
)
from sglc.runtime.engine.engine_core import EngineCore, Sink
from sglc.runtime.engine.stats import EngineStats
from sglc.runtime.inputs import (
    common_prefix_len,
    per_prompt_params,
    split_prompts,
    tokenize_prompt,
)
from sglc.runtime.mem import KVPool, ReqToTokenPool, SlotAllocator, make_prefix_cache
from sglc.runtime.model_runner import ModelRunner
from sglc.runtime.models.loader import LoadedModel, ModelLoadError, load_model_dir
from sglc.runtime.output import OutputProcessor
from sglc.runtime.req import Req, ReqConstraint
from sglc.runtime.scheduler.kv_manager import KVManager
from sglc.runtime.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

_CPU_POOL_BYTES = 2 << 30  # default KV pool budget on CPU
_GPU_MEM_FRACTION = 0.85  # share of free accelerator memory the KV pool may take


def default_model_path() -> Path:
    """The embedded default model shipped with the package."""
    path = Path(str(resources.files("sglc.default_model")))
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"the embedded default model is missing from {path}; "
            "train it with `python -m sglc.training` or pass a model directory"
        )
    return path


@dataclass(frozen=True)
class ScoreResult:
    """Log-likelihood of one continuation given the prompt."""

    logprob: float
    num_tokens: int
    token_logprobs: list[float]

    @property
    def normalized(self) -> float:
        return self.logprob / max(self.num_tokens, 1)


class Engine:
    """`Engine(model_path, dtype=..., device=..., max_total_tokens=..., policy=...,
    chunked_prefill_size=..., disable_radix_cache=False, ...)`; see EngineConfig."""

    def __init__(self, model_path: str | Path | None = None, **options: Any) -> None:
        known = {f.name for f in fields(EngineConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidRequest(f"unknown Engine option(s): {', '.join(unknown)}")
        self.config = EngineConfig(**options)
        device = torch.device(self.config.device)
        ops = _kernel_ops(self.config.attention_backend, device)
        path = Path(model_path) if model_path is not None else default_model_path()
        self.loaded: LoadedModel = load_model_dir(
            path, dtype=self.config.dtype, device=device, ops=ops
        )
        self.tokenizer = self.loaded.tokenizer
        self.core = self._build_core(ops, device)
        self._inbox: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="sglc-engine", daemon=True)
        self._thread.start()

    # -- construction -------------------------------------------------------------------------
    def _build_core(self, ops, device: torch.device) -> EngineCore:
        cfg, mcfg = self.config, self.loaded.config
        dtype = next(self.loaded.model.parameters()).dtype
        self.max_context_len = min(
            cfg.max_context_len or mcfg.max_position_embeddings, mcfg.max_position_embeddings
        )
        num_slots = self._num_slots(device, dtype)
        pool = KVPool(
            num_layers=mcfg.num_layers, num_slots=num_slots, num_kv_heads=mcfg.num_kv_heads,
            head_dim=mcfg.head_dim, dtype=dtype, device=device, page_size=cfg.page_size,
        )
        allocator = SlotAllocator(num_slots, cfg.page_size, device)
        req_pool = ReqToTokenPool(cfg.max_running_requests + 1, self.max_context_len, device)
        cache_name = "none" if cfg.disable_radix_cache else "radix"
        cache = make_prefix_cache(cache_name, allocator, cfg.page_size)
        kv = KVManager(allocator, req_pool, cache, cfg.page_size, not cfg.disable_radix_cache)
        self.pool_capacity = num_slots - cfg.page_size  # page 0 is padding
        runner = ModelRunner(self.loaded.model, ops, pool, req_pool, device)
        outputs = OutputProcessor(self.tokenizer, self.max_context_len)
        constraints = ConstraintStage(
            self.tokenizer, mcfg.vocab_size, sorted(self.loaded.eos_token_ids),
            room=outputs.room, apply_bitmask=ops.apply_token_bitmask,
            # NOTE: off with the radix cache off too, so that such runs measure plain decoding
            jump_forward=cfg.enable_jump_forward and not cfg.disable_radix_cache,
            cache_dir=cfg.index_cache_dir,
        )
        return EngineCore(cfg, Scheduler(cfg, kv), runner, outputs, constraints)

    def _num_slots(self, device: torch.device, dtype: torch.dtype) -> int:
        cfg, mcfg = self.config, self.loaded.config
        per_slot = KVPool.bytes_per_slot(
            num_layers=mcfg.num_layers, num_kv_heads=mcfg.num_kv_heads,
            head_dim=mcfg.head_dim, dtype=dtype,
        )
        if cfg.max_total_tokens is not None:
            slots = cfg.max_total_tokens + cfg.page_size
        elif device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            slots = int(free * _GPU_MEM_FRACTION) // per_slot
        else:
            slots = min(_CPU_POOL_BYTES // per_slot, 64 * self.max_context_len)
        return max(slots // cfg.page_size, 2) * cfg.page_size

    # -- the loop thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            block = self.core.is_idle
            try:
                while True:
                    item = self._inbox.get(block=block)
                    block = False
                    if item is None:  # shutdown
                        self.core.close()
                        return
                    item()
            except queue.Empty:
                pass
            try:
                self.core.step()
            except Exception:  # never let the loop die: fail what is in flight, keep going
                log.exception("engine step failed")
                self.core.abort_all("engine error (see the engine log)")

    def _call(self, fn: Callable[[], None]) -> None:
        if self._closed:
            raise EngineError("the engine is shut down")
        self._inbox.put(fn)

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.put(None)
            self._thread.join(timeout=30)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- request building -----------------------------------------------------------------------
    def _make_reqs(self, prompt: Any, params: SamplingParams, rid: str | None) -> list[Req]:
        ids = tokenize_prompt(prompt, self.tokenizer, self.loaded.config.vocab_size)
        self._check_len(len(ids))
        rid = rid or new_rid()
        regex = self._constraint_regex(params)
        # samples of one request differ: sample i uses seed + i
        reqs = [
            Req(rid, i, ids, _sample_params(params, i), self.loaded.eos_token_ids)
            for i in range(params.n)
        ]
        if regex is not None:
            for req in reqs:
                req.constraint = ReqConstraint(regex)
        return reqs

    def _constraint_regex(self, params: SamplingParams) -> str | None:
        if not params.is_constrained:
            return None
        if self.tokenizer is None:
            raise InvalidRequest("constrained decoding needs a model directory with a tokenizer")
        try:
            return request_regex(params.regex, params.json_schema, params.choices)
        except ConstraintError as exc:
            raise InvalidRequest(f"invalid constraint: {exc}") from None

    def _check_len(self, num_tokens: int) -> None:
        limit = min(self.max_context_len - 1, self.pool_capacity - 1)
        if num_tokens > limit:
            raise InvalidRequest(
                f"prompt of {num_tokens} tokens is longer than this engine allows ({limit}: "
                f"context length {self.max_context_len}, KV pool {self.pool_capacity} tokens)"
            )

    def _prepare(
        self, prompts: Any, sampling_params: Any, rids: Sequence[str] | None,
        constraint: dict[str, Any] | None = None,
    ):
        items = split_prompts(prompts)
        params = per_prompt_params(sampling_params, len(items))
        given = {k: v for k, v in (constraint or {}).items() if v is not None}
        if given:
            params = [dataclasses.replace(p, **given) for p in params]
        if rids is not None and len(rids) != len(items):
            raise InvalidRequest(f"got {len(rids)} request ids for {len(items)} prompts")
        return [
            self._make_reqs(p, sp, rids[i] if rids else None)
            for i, (p, sp) in enumerate(zip(items, params, strict=True))
        ]

    # -- public API ---------------------------------------------------------------------------
    def generate(
        self,
        prompts: Any,
        sampling_params: Any = None,
        *,
        rids: Sequence[str] | None = None,
        regex: str | None = None,
        json_schema: str | Mapping[str, Any] | None = None,
        choices: Sequence[str] | None = None,
    ) -> list[Output]:
        """Generate for one prompt or a list; returns one Output per prompt and sample, in
        order (prompt 0's n samples, then prompt 1's, ...). Blocks until all finish.

        `regex`, `json_schema` or `choices` constrain every prompt's output (the same as
        setting them in the sampling params): the text fullmatches the constraint, unless
        `max_new_tokens` ran out first (then `Output.is_valid` is False)."""
        constraint = {"regex": regex, "json_schema": json_schema, "choices": choices}
        groups = self._prepare(prompts, sampling_params, rids, constraint)
        collector = _Collector(sum(len(g) for g in groups))
        self._submit(groups, Sink(None, collector.add))
        collector.done.wait()
        return _in_request_order(groups, collector.outputs)

    def submit(
        self,
        prompts: Any,
        sampling_params: Any = None,
        *,
        on_output: Callable[[Output], None],
        on_delta: Callable[[StreamDelta], None] | None = None,
        rids: Sequence[str] | None = None,
    ) -> list[str]:
        """Queue prompts without waiting; they are scheduled together. `on_output` gets each
        sample's Output as soon as it finishes, `on_delta` (optional) each StreamDelta as
        tokens arrive; both are called on the engine's loop thread (keep them short; hand
        results to your own thread or event loop). Returns the request ids."""
        groups = self._prepare(prompts, sampling_params, rids)
        self._submit(groups, Sink(on_delta, on_output))
        return [g[0].rid for g in groups]

    async def generate_async(self, prompts: Any, sampling_params: Any = None) -> list[Output]:
        """`generate` for asyncio code: awaits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        groups = self._prepare(prompts, sampling_params, None)
        collector = _Collector(sum(len(g) for g in groups))

        def on_output(output: Output) -> None:
            collector.add(output)
            if collector.done.is_set():
                loop.call_soon_threadsafe(_resolve, done, collector.outputs)

        self._submit(groups, Sink(None, on_output))
        outputs = await done
        return _in_request_order(groups, outputs)

    async def generate_stream(
        self, prompt: Any, sampling_params: Any = None, *, rid: str | None = None
    ) -> AsyncIterator[Any]:
        """Yield StreamDeltas for one prompt as tokens are produced; the last one has a
        finish_reason (per sample when n > 1). Stopping the iteration aborts the request."""
        (group,) = self._prepare(prompt, sampling_params, [rid] if rid else None)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()

        def post(item: Any) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, item)

        self._submit([group], Sink(post, lambda out: post(("done", out))))
        remaining = len(group)
        try:
            while remaining:
                item = await deltas.get()
                if isinstance(item, tuple):
                    remaining -= 1
                else:
                    yield item
        finally:
            if remaining:
                self.abort(group[0].rid)

    def _submit(self, groups: list[list[Req]], sink: Sink) -> None:
        """Hand request groups (one per prompt, one Req per sample) to the loop at once,
        so one call's requests are scheduled together."""
        self._call(lambda: [self.core.add(group, sink) for group in groups])

    def prebuild_constraints(self, regexes: Sequence[str]) -> None:
        """Start building the token automata of these regexes in the background (a program
        does this for its gens when it starts), so its first constrained gens need not wait.
        Bad regexes are skipped here; they fail with their request."""
        regexes = list(regexes)
        self._call(lambda: self.core.prebuild(regexes))

    def abort(self, rid: str) -> None:
        """Abort a request: its samples finish with finish_reason 'abort', memory is freed."""
        self._call(lambda: self.core.abort(rid))

    def score(self, prompt: Any, continuations: Sequence[str | Sequence[int]]) -> list[ScoreResult]:
        """Log-likelihood of each continuation after `prompt`, in one batched pass that
        shares the prompt (which is computed once, into the prefix cache, first)."""
        if not continuations:
            raise InvalidRequest("score needs at least one continuation")
        pairs = [self._split_continuation(prompt, c) for c in continuations]
        params = SamplingParams(max_new_tokens=0)
        if len(pairs) > 1 and not self.config.disable_radix_cache:
            self.generate([pairs[0][0]], params)  # the shared prompt, computed once
        reqs = []
        for prompt_ids, cont_ids in pairs:
            self._check_len(len(prompt_ids) + len(cont_ids))
            req = Req(new_rid(), 0, prompt_ids + cont_ids, params, self.loaded.eos_token_ids)
            req.score_from = len(prompt_ids)
            reqs.append(req)
        collector = _Collector(len(reqs))
        self._submit([[req] for req in reqs], Sink(None, collector.add))
        collector.done.wait()
        for out in collector.outputs:
            if out.error:
                raise EngineError(out.error)
        return [ScoreResult(sum(logprobs), len(logprobs), logprobs)
                for logprobs in (r.out.scored_logprobs for r in reqs)]

    def _split_continuation(self, prompt: Any, cont: str | Sequence[int]):
        """Token ids of (prompt, continuation). Two strings are tokenized together, so the
        boundary token is the one the model would see, and split where they diverge."""
        vocab = self.loaded.config.vocab_size
        prompt_ids = tokenize_prompt(prompt, self.tokenizer, vocab)
        if isinstance(prompt, str) and isinstance(cont, str):
            full = tokenize_prompt(prompt + cont, self.tokenizer, vocab)
            common = common_prefix_len(prompt_ids, full)
            prompt_ids, cont_ids = full[:common], full[common:]
        elif isinstance(cont, str):
            cont_ids = self.tokenizer.encode(cont, add_special_tokens=False) if cont else []
        else:
            cont_ids = tokenize_prompt(cont, self.tokenizer, vocab)
        if not prompt_ids or not cont_ids:
            raise InvalidRequest("score needs a non-empty prompt and non-empty continuations")
        return prompt_ids, cont_ids

    def stats(self) -> dict[str, int | dict[str, float]]:
        """A snapshot of counters, queue sizes and prefix-cache statistics (EngineStats)."""
        result: list[EngineStats] = []
        done = threading.Event()

        def snapshot() -> None:
            result.append(self.core.stats())
            done.set()

        self._call(snapshot)
        done.wait()
        return result[0].to_dict()


class _Collector:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.outputs: list[Output] = []
        self.done = threading.Event()
        if expected == 0:
            self.done.set()

    def add(self, output: Output) -> None:
        self.outputs.append(output)
        if len(self.outputs) == self.expected:
            self.done.set()


def _in_request_order(groups: list[list[Req]], outputs: list[Output]) -> list[Output]:
    """Outputs sorted as submitted: prompt by prompt, sample by sample."""
    order = {(g[0].rid, r.index): (k, r.index) for k, g in enumerate(groups) for r in g}
    return sorted(outputs, key=lambda o: order[(o.rid, o.index)])


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _kernel_ops(backend: str | None, device: torch.device) -> KernelOps:
    """The op table for `backend` (None: the device's default), or InvalidRequest."""
    backend = backend or default_backend(device.type)
    if backend == "triton" and device.type != "cuda" and not triton_interpreted():
        raise InvalidRequest(
            "attention_backend='triton' on CPU needs Triton's interpreter: set "
            "TRITON_INTERPRET=1 in the environment before starting (slow; for testing)"
        )
    if backend == "cpu" and device.type != "cpu":
        raise InvalidRequest(f"attention_backend='cpu' runs on CPU tensors, not {device.type}")
    try:
        return get_ops(backend)
    except ValueError as exc:
        raise InvalidRequest(f"attention_backend: {exc}") from None


def _sample_params(params: SamplingParams, index: int) -> SamplingParams:
    if index == 0 or params.seed is None:
        return params
    return dataclasses.replace(params, seed=params.seed + index)
