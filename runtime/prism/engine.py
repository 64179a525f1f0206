"""PrismEngine: several models in one engine, sharing one memory budget and one loop.

    PrismEngine({"draft": P1, "judge": P2}, memory_budget=64 << 20, slo_ms={"judge": 500})
    engine["judge"].generate(prompts, params, slo_ms=200)    # a PrismModel: Engine's API

After Prism (Yu et al., "Prism: Unleashing GPU Sharing for Cost-Efficient Multi-LLM
Serving"): the KV pools grow and shrink per model on demand inside one arena (`arena.py`,
`allocator.py`) instead of a fixed split; idle models drop their weights and reload them
when a request arrives (`weights.py`); one loop thread runs, each step, the batch of the
model whose most urgent request is due first (`deadlines.py`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from sglc.runtime.core import EngineError, InvalidRequest
from sglc.runtime.engine.build import (
    build_core,
    check_options,
    engine_config,
    engine_device,
    kernel_ops,
)
from sglc.runtime.mem.kv_pool import KVPool
from sglc.runtime.models.loader import LoadedModel, load_model_dir
from sglc.runtime.prism.allocator import ElasticAllocator
from sglc.runtime.prism.arena import ArenaKVPool, KVArena, chunk_size
from sglc.runtime.prism.config import PrismConfig, check_engine_options
from sglc.runtime.prism.deadlines import Deadlines
from sglc.runtime.prism.model import PrismModel
from sglc.runtime.prism.weights import ModelWeights, weight_bytes

log = logging.getLogger(__name__)


class PrismEngine:
    """`PrismEngine(models, memory_budget=BYTES, max_resident_models=None, idle_drop_s=None,
    slo_ms={name: ms}, chunk_bytes=64 KiB, kv_sharing="elastic", model_order="edf",
    **engine options)`; `engine[name]` is a
    PrismModel. See PrismConfig for what each option means."""

    def __init__(self, models: Mapping[str, str | Path], *, memory_budget: int,
                 max_resident_models: int | None = None, idle_drop_s: float | None = None,
                 slo_ms: Mapping[str, float] | None = None, chunk_bytes: int = 64 << 10,
                 kv_sharing: str = "elastic", model_order: str = "edf",
                 **options: Any) -> None:
        self.config = PrismConfig(memory_budget, max_resident_models, idle_drop_s,
                                  dict(slo_ms or {}), chunk_bytes, kv_sharing, model_order)
        if not isinstance(models, Mapping) or not models:
            raise InvalidRequest("models must be a non-empty dict of name -> model path")
        self.config.check_models(list(models))
        check_engine_options(options)
        engine_cfg = engine_config({"kernel_backend": "torch", **options})
        device = engine_device(engine_cfg.device)
        check_options(engine_cfg, device)
        ops = kernel_ops(engine_cfg.kernel_backend, device)

        def load(path: Path, tokenizer: bool = True) -> LoadedModel:
            return load_model_dir(path, dtype=engine_cfg.dtype, device=device, ops=ops,
                                  load_tokenizer=tokenizer)

        loaded = {name: load(Path(path)) for name, path in models.items()}
        shared_kv = [name for name, m in loaded.items() if m.config.kv_sources is not None]
        if shared_kv:
            raise InvalidRequest(f"model(s) {', '.join(shared_kv)} share KV across layers "
                                 "(kv_source_layers, MixAttention); the Prism arena gives every "
                                 "layer its own KV: serve them on their own Engine")
        kv_bytes = self._kv_bytes({n: weight_bytes(m.model) for n, m in loaded.items()})
        unit = chunk_size([_page_bytes(m, engine_cfg.page_size) for m in loaded.values()],
                          chunk_bytes)
        if unit > kv_bytes // 2:
            raise InvalidRequest(f"memory_budget={memory_budget} leaves {kv_bytes} bytes for KV, "
                                 f"less than two chunks of {unit} bytes (chunk_bytes, rounded "
                                 f"to whole pages of every model); raise memory_budget")
        self.arena = KVArena(kv_bytes, unit, device)
        self.deadlines = Deadlines()
        self.models: dict[str, PrismModel] = {}
        quota = (self.arena.num_chunks - 1) // len(loaded) if kv_sharing == "static" else None
        for name, model in loaded.items():
            allocators: list[ElasticAllocator] = []

            def kv_memory(m: LoadedModel, dtype: torch.dtype,
                          out: list[ElasticAllocator] = allocators) -> tuple[KVPool, ElasticAllocator]:
                pool = ArenaKVPool(self.arena, num_layers=m.config.num_layers,
                                   num_kv_heads=m.model.cfg.num_kv_heads,
                                   head_dim=m.config.head_dim, dtype=dtype,
                                   page_size=engine_cfg.page_size)
                out.append(ElasticAllocator(self.arena, pool.num_slots, engine_cfg.page_size,
                                            quota))
                return pool, out[0]

            core, capacity = build_core(engine_cfg, model, ops, device, kv_memory=kv_memory)
            allocators[0].attach(core.scheduler.kv.cache)
            path = model.path
            weights = ModelWeights(core.runner, lambda p=path: load(p, tokenizer=False).model)
            self.models[name] = PrismModel(self, name, engine_cfg, model, core, capacity,
                                           allocators[0], weights, self.config.slo_ms.get(name))
        del loaded
        self._inbox: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._closed = False
        for model in list(self.models.values())[self._max_resident:]:
            self._drop(model)
        self._thread = threading.Thread(target=self._loop, name="sglc-prism", daemon=True)
        self._thread.start()

    @property
    def _max_resident(self) -> int:
        return self.config.max_resident_models or len(self.models)

    def _kv_bytes(self, weights: dict[str, int]) -> int:
        """The budget left for KV once the weights that must be resident at once are in."""
        k = self.config.max_resident_models or len(weights)
        largest = sorted(weights.items(), key=lambda kv: -kv[1])[:k]
        resident = sum(size for _, size in largest)
        if resident >= self.config.memory_budget:
            names = ", ".join(f"{n} ({size} bytes)" for n, size in largest)
            raise InvalidRequest(
                f"memory_budget={self.config.memory_budget} bytes is smaller than the weights "
                f"that must be resident at once ({resident} bytes, max_resident_models={k}: "
                f"{names}); raise memory_budget or lower max_resident_models")
        return self.config.memory_budget - resident

    def __getitem__(self, name: str) -> PrismModel:
        if name not in self.models:
            raise InvalidRequest(f"no model {name!r}; the models are {', '.join(self.models)}")
        return self.models[name]

    # -- the loop thread ------------------------------------------------------------------------
    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop thread (in order, before its next step)."""
        if self._closed:
            raise EngineError("the engine is shut down")
        self._inbox.put(fn)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the loop: what is submitted meanwhile is scheduled together afterwards."""
        resume = threading.Event()
        self.call(resume.wait)
        try:
            yield
        finally:
            resume.set()

    def _loop(self) -> None:
        wake_s = None if self.config.idle_drop_s is None else self.config.idle_drop_s / 2
        while True:
            block = all(m.core.is_idle for m in self.models.values())
            try:
                while True:
                    item = self._inbox.get(block=block, timeout=wake_s if block else None)
                    block = False
                    if item is None:
                        for model in self.models.values():
                            model.core.close()
                        return
                    _run_guarded(item)
            except queue.Empty:
                pass
            for model in self._candidates():
                if self._step(model):
                    break  # NOTE: one that cannot run (memory others hold) lets the next
            self._drop_idle()

    def _candidates(self) -> Iterator[PrismModel]:
        """The models to try this step, most urgent first: earliest deadline first (or the
        oldest request first) among those with scheduled work, made resident as they come
        (one whose weights cannot come back yet is skipped); then those only building
        constraint automata."""
        edf = self.config.model_order == "edf"
        order = []
        for model in self.models.values():
            due = self.deadlines.earliest((r.rid for r in model.core.scheduler.all_reqs()),
                                          by_deadline=edf)
            if due is not None:
                order.append(((due if edf else due.submitted), model.last_active, model))
        for _, _, model in sorted(order, key=lambda t: t[:2]):
            if self._make_resident(model):
                yield model
        yield from (m for m in self.models.values()
                    if m.core.scheduler.is_idle and not m.core.is_idle
                    and m.weights.is_resident)

    def _step(self, model: PrismModel) -> bool:
        """One step of the model's core; whether it ran a forward pass."""
        counters = model.core.counters
        before = counters.num_extend_batches + counters.num_decode_batches
        try:
            model.core.step()
        except Exception:  # never let the loop die: fail what is in flight, keep going
            log.exception("engine step failed (model %s)", model.name)
            _run_guarded(lambda: model.core.abort_all("engine error (see the engine log)"))
        model.last_active = time.perf_counter()
        return counters.num_extend_batches + counters.num_decode_batches != before

    # -- weights in and out -------------------------------------------------------------------
    def _make_resident(self, model: PrismModel) -> bool:
        """Bring the model's weights back if dropped, dropping the least recently active idle
        model's first if `max_resident_models` are in; False if none can go now."""
        if model.weights.is_resident:
            return True
        resident = [m for m in self.models.values() if m.weights.is_resident]
        if len(resident) >= self._max_resident:
            idle = [m for m in resident if m.core.is_idle]
            if not idle:
                return False
            self._drop(min(idle, key=lambda m: m.last_active))
        seconds = model.weights.activate()
        log.info("model %s activated in %.3f s", model.name, seconds or 0.0)
        return True

    def _drop(self, model: PrismModel) -> None:
        """Drop an idle model's weights and give its KV chunks back (its cache emptied)."""
        model.core.scheduler.kv.cache.reset()
        model.allocator.release_all()
        model.weights.drop()

    def _drop_idle(self) -> None:
        limit = self.config.idle_drop_s
        if limit is None:
            return
        now = time.perf_counter()
        for model in self.models.values():
            if model.weights.is_resident and model.core.is_idle and \
                    now - model.last_active > limit:
                self._drop(model)

    # -- control --------------------------------------------------------------------------------
    def drop(self, name: str) -> None:
        """Drop an idle model's weights now (they come back with its next request)."""
        model = self[name]
        done = threading.Event()

        def go() -> None:
            if model.core.is_idle:
                self._drop(model)
            done.set()

        self.call(go)
        done.wait()

    def stats(self) -> dict[str, Any]:
        """Per model: resident or not, activations and their latencies, KV bytes held,
        cached tokens; the arena's size and free chunks."""
        result: dict[str, Any] = {}
        done = threading.Event()

        def snapshot() -> None:
            result["arena"] = {"bytes": self.arena.num_bytes, "chunk_bytes": self.arena.chunk_bytes,
                               "num_chunks": self.arena.num_chunks,
                               "free_chunks": self.arena.num_free_chunks}
            result["models"] = {
                name: {"resident": m.weights.is_resident, "weight_bytes": m.weights.num_bytes,
                       "num_drops": m.weights.num_drops,
                       "activation_s": list(m.weights.activation_s),
                       "kv_bytes_held": m.allocator.num_held_bytes,
                       "cached_tokens": m.core.scheduler.kv.cache.total_size(),
                       "slo_ms": m.slo_ms}
                for name, m in self.models.items()}
            done.set()

        self.call(snapshot)
        done.wait()
        return result

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.put(None)
            self._thread.join(timeout=30)

    def __enter__(self) -> PrismEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _page_bytes(model: LoadedModel, page_size: int) -> int:
    dtype = next(model.model.parameters()).dtype
    return page_size * KVPool.bytes_per_slot(
        num_layers=model.config.num_layers, num_kv_heads=model.model.cfg.num_kv_heads,
        head_dim=model.config.head_dim, dtype=dtype)


def _run_guarded(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001
        log.exception("engine inbox item failed")
