"""sglc.Engine: the serving engine's public, thread-safe API.

A loop thread owns the EngineCore and runs `step()` while there is work; callers on any
thread or coroutine submit requests through an inbox, so concurrent requests batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from sglc.kernels import KernelOps, default_backend
from sglc.runtime.core import EngineError, InvalidRequest, Output, SamplingParams, StreamDelta
from sglc.runtime.distributed.dp_core import DataParallelCore
from sglc.runtime.distributed.sharding import check_shardable
from sglc.runtime.distributed.tp_leader import TensorParallel
from sglc.runtime.engine.build import (
    Capacity,
    build_core,
    check_options,
    engine_config,
    engine_device,
    kernel_ops,
    sparsity_calibration,
)
from sglc.runtime.engine.cached_responses import CachedResponses, open_response_cache
from sglc.runtime.engine.delivery import Sink
from sglc.runtime.engine.requests import RequestBuilder
from sglc.runtime.engine.stats import EngineStats
from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.loader import (
    LoadedModel,
    ModelLoadError,
    load_model_dir,
    load_model_info,
    read_hf_config,
)
from sglc.runtime.offload import Offloaded, plan_offload
from sglc.runtime.req import Req
from sglc.runtime.response_cache import ResponseCache

log = logging.getLogger(__name__)


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
    chunked_prefill_size=..., disable_radix_cache=False, kernel_backend=None, ...)`; see
    EngineConfig. `attention_backend=` is another name for `kernel_backend=` (it picks every
    kernel, not only attention's). `tp_size=N` shards the model over N processes (this one is
    rank 0); `dp_size=N` runs N replicas in processes behind a router, and `loaded` is then
    None (see sglc.runtime.distributed)."""

    def __init__(self, model_path: str | Path | None = None, **options: Any) -> None:
        self.config = engine_config(options)
        path = Path(model_path) if model_path is not None else default_model_path()
        hf_config = read_hf_config(path)  # a missing model directory fails before anything slow
        if self.config.tp_size > 1:
            check_shardable(ModelConfig.from_hf(hf_config), self.config.tp_size)
        device = engine_device(self.config.device)
        check_options(self.config, device)
        calibration = sparsity_calibration(self.config, path)  # a bad file fails fast
        # offloading: a policy placed from config.json and the budgets, before anything slow
        plan = plan_offload(path, hf_config, self.config, device) \
            if self.config.offloads and self.config.dp_size == 1 else None
        # the response cache opens before the model loads: a bad cache file fails fast
        self._responses = None if self.config.response_cache is None else CachedResponses(
            open_response_cache(self.config, path, hf_config, device,
                                self.config.kernel_backend or default_backend(device.type)))
        self._tp: TensorParallel | None = None  # rank 0's handle on the other ranks
        self.offloaded: Offloaded | None = None  # the placement and streamer, when offloading
        # None under dp_size > 1: the replicas hold the model
        self.loaded: LoadedModel | None = None
        if self.config.dp_size > 1:
            mcfg, self.tokenizer, eos_token_ids = load_model_info(path)
            capacity = self._start_data_parallel(path, options)
        else:
            ops = kernel_ops(self.config.kernel_backend, device)
            if self.config.tp_size > 1:
                capacity = self._start_tensor_parallel(path, device, ops)
            elif plan is not None:
                self.config, self.offloaded = plan.config, Offloaded.load(plan, ops)
                self.loaded = self.offloaded.loaded
                self.core, capacity = build_core(self.config, self.loaded, ops, device,
                                                 calibration=calibration)
                self.offloaded.place_kv(self.core.runner.kv_pool)
                log.info("%s", self.offloaded.describe())
            else:
                self.loaded = load_model_dir(path, dtype=self.config.dtype, device=device,
                                             ops=ops)
                self.core, capacity = build_core(self.config, self.loaded, ops, device,
                                                 calibration=calibration)
            mcfg, self.tokenizer = self.loaded.config, self.loaded.tokenizer
            eos_token_ids = self.loaded.eos_token_ids
        self.max_context_len = capacity.max_context_len
        self.pool_capacity = capacity.num_kv_slots
        self._requests = RequestBuilder(self.tokenizer, mcfg.vocab_size, eos_token_ids, capacity,
                                        self.config)
        self._inbox: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._closed = False
        # request ids in flight, reserved on the caller's thread, freed by the loop thread
        self._rids_in_flight: set[str] = set()
        self._rids_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="sglc-engine", daemon=True)
        self._thread.start()

    def _start_tensor_parallel(self, path: Path, device: torch.device,
                               ops: KernelOps) -> Capacity:
        """Start ranks 1..tp_size-1, load this rank's shard, build the core on it."""
        backend = self.config.kernel_backend or default_backend(device.type)
        self._tp = TensorParallel(path, self.config, device, backend)
        try:
            self.loaded = self._tp.load(self.config.dtype, ops)
            self.core, capacity = build_core(self.config, self.loaded, ops, device,
                                             runner_type=self._tp.runner_type())
            self._tp.start(self.core.runner.kv_pool.num_slots)
        except BaseException:
            self._tp.close()
            raise
        return capacity

    def _start_data_parallel(self, path: Path, options: Mapping[str, Any]) -> Capacity:
        """Start dp_size replicas of this engine in processes, behind the router."""
        # the front end answers cached responses; the replicas never see the cache
        replica_options = {k: v for k, v in options.items() if not k.startswith("response_cache")}
        self.core = DataParallelCore(type(self), path, replica_options, self.config)
        return Capacity(*self.core.capacity)

    @property
    def response_cache(self) -> ResponseCache | None:
        """The response cache (`response_cache=PATH`), or None when it is off."""
        return None if self._responses is None else self._responses.cache

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
                    _run_guarded(item)
            except queue.Empty:
                pass
            try:
                self.core.step()
            except Exception:  # never let the loop die: fail what is in flight, keep going
                log.exception("engine step failed")
                _run_guarded(lambda: self.core.abort_all("engine error (see the engine log)"))

    def _call(self, fn: Callable[[], None]) -> None:
        if self._closed:
            raise EngineError("the engine is shut down")
        self._inbox.put(fn)

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.put(None)
            self._thread.join(timeout=30)
            if self._tp is not None:
                self._tp.close()
            if self.offloaded is not None:
                self.offloaded.close()
            if self._responses is not None:
                self._responses.cache.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

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
        grammar: str | None = None,
    ) -> list[Output]:
        """Generate for one prompt or a list; returns one Output per prompt and sample, in
        order (prompt 0's n samples, then prompt 1's, ...). Blocks until all finish.

        `regex`, `json_schema`, `choices` or `grammar` (Lark text) constrain every prompt's
        output (the same as setting them in the sampling params): the text fullmatches the
        constraint, unless `max_new_tokens` ran out first (then `Output.is_valid` is False)."""
        constraint = {"regex": regex, "json_schema": json_schema, "choices": choices,
                      "grammar": grammar}
        groups = self._requests.groups(prompts, sampling_params, rids, constraint)
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
        results to your own thread or event loop). A callback that raises fails its own
        request (an `on_delta` one aborts it; `on_output` comes last, so it is only logged).
        Returns the request ids."""
        _check_callable("on_output", on_output)
        if on_delta is not None:
            _check_callable("on_delta", on_delta)
        groups = self._requests.groups(prompts, sampling_params, rids)
        self._submit(groups, Sink(on_delta, on_output))
        return [g[0].rid for g in groups]

    async def generate_async(self, prompts: Any, sampling_params: Any = None) -> list[Output]:
        """`generate` for asyncio code: awaits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        groups = self._requests.groups(prompts, sampling_params, None)
        collector = _Collector(sum(len(g) for g in groups))

        def on_output(output: Output) -> None:
            collector.add(output)
            if collector.done.is_set():
                loop.call_soon_threadsafe(_resolve, done, collector.outputs)

        self._submit(groups, Sink(None, on_output))
        outputs = await done
        return _in_request_order(groups, outputs)

    async def generate_stream(
        self, prompt: Any, sampling_params: Any = None, *, rid: str | None = None,
        rids: Sequence[str] | None = None,
    ) -> AsyncIterator[StreamDelta]:
        """Yield StreamDeltas as tokens are produced, for one prompt or a list of them (all
        streamed together, interleaved: `delta.prompt_index` says whose, `delta.index` which
        sample). Each sample's last delta has a finish_reason. `rid` names the request of one
        prompt, `rids` those of several. Stopping the iteration aborts what is unfinished."""
        if rid is not None and rids is not None:
            raise InvalidRequest("give rid (one prompt) or rids (one per prompt), not both")
        if rid is not None and not isinstance(rid, str):
            raise InvalidRequest(f"rid must be a string, got {type(rid).__name__} {rid!r:.60}")
        groups = self._requests.groups(prompt, sampling_params, [rid] if rid else rids)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()

        def post(item: StreamDelta | tuple[str, Output]) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, item)

        self._submit(groups, Sink(post, lambda out: post(("done", out))))
        remaining = sum(len(g) for g in groups)
        try:
            while remaining:
                item = await deltas.get()
                if isinstance(item, tuple):
                    remaining -= 1
                else:
                    yield item
        finally:
            if remaining:
                for group in groups:
                    self.abort(group[0].rid)

    def _submit(self, groups: list[list[Req]], sink: Sink) -> None:
        """Hand request groups (one per prompt, one Req per sample) to the loop at once,
        so one call's requests are scheduled together. Their ids are reserved first: an id
        already in flight is refused here, on the caller's thread."""
        rids = [g[0].rid for g in groups]
        with self._rids_lock:
            busy = [r for r in rids if r in self._rids_in_flight]
            if busy:
                raise InvalidRequest(f"request id {busy[0]!r:.60} is already in flight: "
                                     f"give each request its own id (or abort it first)")
            self._rids_in_flight.update(rids)
        sink.on_done = self._release_rid
        hits: list[list[Output]] = []
        if self._responses is not None:  # answered hits never reach the core
            routed = self._responses.route(groups, sink)
            groups, hits, miss_sink = routed.groups, routed.hits, routed.sink
        else:
            miss_sink = sink

        def add() -> None:
            for group in groups:
                self.core.add(group, miss_sink)
            if hits:
                CachedResponses.deliver(hits, sink)

        try:
            self._call(add)
        except BaseException:
            with self._rids_lock:
                self._rids_in_flight.difference_update(rids)
            raise

    def _release_rid(self, rid: str) -> None:
        with self._rids_lock:
            self._rids_in_flight.discard(rid)

    def submit_requests(self, groups: list[list[Req]], *, on_output: Callable[[Output], None],
                        on_delta: Callable[[StreamDelta], None] | None = None) -> None:
        """Queue request groups (one per prompt, one Req per sample) that another engine's
        request builder made and checked: a data-parallel replica serves its front end's
        requests this way. Results go to the callbacks as in `submit`."""
        self._submit(groups, Sink(on_delta, on_output))

    def prebuild_constraints(self, regexes: Sequence[str]) -> None:
        """Start building the token automata of these regexes in the background (a program
        does this for its gens when it starts), so its first constrained gens need not wait.
        Bad regexes are skipped here; they fail with their request."""
        if not isinstance(regexes, (list, tuple)) or not all(isinstance(r, str) for r in regexes):
            raise InvalidRequest(f"regexes must be a list of regex strings, got "
                                 f"{type(regexes).__name__} {regexes!r:.60}")
        if self.tokenizer is None:
            return
        regexes = list(regexes)
        self._call(lambda: self.core.prebuild(regexes))

    def abort(self, rid: str) -> None:
        """Abort a request: its samples finish with finish_reason 'abort', memory is freed.
        An id that is not in flight (finished, or never sent) is ignored."""
        if not isinstance(rid, str):
            raise InvalidRequest(f"rid must be a request id (a string), got "
                                 f"{type(rid).__name__} {rid!r:.60}")
        self._call(lambda: self.core.abort(rid))

    def score(self, prompt: Any, continuations: Sequence[str | Sequence[int]]) -> list[ScoreResult]:
        """Log-likelihood of each continuation after `prompt`, in one batched pass that
        shares the prompt (which is computed once, into the prefix cache, first)."""
        pairs = self._requests.score_pairs(prompt, continuations)
        if len(pairs) > 1 and not self.config.disable_radix_cache:
            self.generate([pairs[0][0]], SamplingParams(max_new_tokens=0))  # the shared prompt
        reqs = self._requests.score_reqs(pairs)
        collector = _Collector(len(reqs))
        self._submit([[req] for req in reqs], Sink(None, collector.add))
        collector.done.wait()
        for out in collector.outputs:
            if out.error:
                raise EngineError(out.error)
        return [ScoreResult(sum(logprobs), len(logprobs), logprobs)
                for logprobs in (r.out.scored_logprobs for r in reqs)]

    def stats(self) -> dict[str, int | dict[str, float]]:
        """A snapshot of counters, queue sizes and prefix-cache statistics (EngineStats)."""
        result: list[EngineStats] = []
        done = threading.Event()

        def snapshot() -> None:
            result.append(self.core.stats())
            done.set()

        self._call(snapshot)
        done.wait()
        stats = result[0].to_dict()
        if self._responses is not None:
            stats["response_cache"] = self._responses.cache.stats()
        return stats


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


def _check_callable(name: str, value: object) -> None:
    if not callable(value):
        raise InvalidRequest(f"{name} must be a callable taking one argument, got "
                             f"{type(value).__name__} {value!r:.60}")


def _run_guarded(fn: Callable[[], object]) -> None:
    """Run an inbox item on the loop thread; whatever it raises is logged, never fatal (the
    items fail their own requests; this is the last line of defence)."""
    try:
        fn()
    except Exception:  # noqa: BLE001
        log.exception("engine inbox item failed")


def _in_request_order(groups: list[list[Req]], outputs: list[Output]) -> list[Output]:
    """Outputs sorted as submitted: prompt by prompt, sample by sample."""
    order = {(g[0].rid, r.index): (k, r.index) for k, g in enumerate(groups) for r in g}
    return sorted(outputs, key=lambda o: order[(o.rid, o.index)])


def _resolve(future: asyncio.Future[list[Output]], value: list[Output]) -> None:
    if not future.done():
        future.set_result(value)
