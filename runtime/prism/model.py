"""PrismModel: one model of a PrismEngine, with `sglc.Engine`'s API.

Its requests go to the shared loop thread, which runs this model's EngineCore when it is
its turn (earliest deadline first). `generate`/`submit` take a per-request `slo_ms`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import Output, StreamDelta
from sglc.runtime.engine import Engine
from sglc.runtime.engine.build import Capacity
from sglc.runtime.engine.delivery import Sink
from sglc.runtime.engine.engine_core import EngineCore
from sglc.runtime.engine.requests import RequestBuilder
from sglc.runtime.models.loader import LoadedModel
from sglc.runtime.prism.allocator import ElasticAllocator
from sglc.runtime.prism.config import check_positive
from sglc.runtime.prism.deadlines import Deadlines
from sglc.runtime.prism.weights import ModelWeights
from sglc.runtime.req import Req


class PrismHost(Protocol):
    """What a model asks of its PrismEngine."""

    deadlines: Deadlines

    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the shared loop thread."""

    def shutdown(self) -> None:
        """Stop the loop (every model's requests end)."""


class PrismModel(Engine):
    """A named model of `prism`: `generate`, `submit`, `score`, `stats`... as on an Engine
    (a `LocalEngine` wraps it as it wraps one). `shutdown()` shuts the whole PrismEngine."""

    def __init__(self, prism: PrismHost, name: str, config: EngineConfig,
                 loaded: LoadedModel, core: EngineCore, capacity: Capacity,
                 allocator: ElasticAllocator, weights: ModelWeights,
                 slo_ms: float | None) -> None:
        # NOTE: Engine.__init__ is not called: it would load a model and start a loop thread
        self.prism = prism
        self.name = name
        self.config = config
        self.core = core
        self.allocator = allocator
        self.weights = weights
        self.slo_ms = slo_ms
        self.tokenizer = loaded.tokenizer
        self.path = loaded.path
        self.max_context_len = capacity.max_context_len
        self.pool_capacity = capacity.num_kv_slots
        self._requests = RequestBuilder(loaded.tokenizer, loaded.config.vocab_size,
                                        loaded.eos_token_ids, capacity, config)
        self._responses = None
        self._tp = None
        self._closed = False
        self._rids_in_flight: set[str] = set()
        self._rids_lock = threading.Lock()
        self._local = threading.local()  # a call's slo_ms, read by `_submit` on its thread
        self.last_active = time.perf_counter()

    @property
    def loaded(self) -> Any:
        """The resident model (None while its weights are dropped)."""
        return self.weights.model

    # -- per-request latency targets ----------------------------------------------------------
    def generate(self, prompts: Any, sampling_params: Any = None, *,
                 slo_ms: float | None = None, **constraint: Any) -> list[Output]:
        """`Engine.generate`, with this call's latency target `slo_ms` (default: the
        model's)."""
        with self._slo(slo_ms):
            return super().generate(prompts, sampling_params, **constraint)

    def submit(self, prompts: Any, sampling_params: Any = None, *,
               on_output: Callable[[Output], None],
               on_delta: Callable[[StreamDelta], None] | None = None,
               rids: Any = None, slo_ms: float | None = None) -> list[str]:
        """`Engine.submit`, with this call's latency target `slo_ms`."""
        with self._slo(slo_ms):
            return super().submit(prompts, sampling_params, on_output=on_output,
                                  on_delta=on_delta, rids=rids)

    def _slo(self, slo_ms: float | None) -> _CallSlo:
        if slo_ms is not None:
            check_positive("slo_ms", slo_ms, "milliseconds")
        return _CallSlo(self._local, slo_ms)

    def _submit(self, groups: list[list[Req]], sink: Sink) -> None:
        slo = getattr(self._local, "slo_ms", None) or self.slo_ms
        rids = [g[0].rid for g in groups]
        self.prism.deadlines.set(rids, time.perf_counter(), slo)
        try:
            super()._submit(groups, sink)
        except BaseException:
            for rid in rids:
                self.prism.deadlines.discard(rid)
            raise

    def _release_rid(self, rid: str) -> None:
        super()._release_rid(rid)
        self.prism.deadlines.discard(rid)

    # -- the shared loop ------------------------------------------------------------------------
    def _call(self, fn: Callable[[], None]) -> None:
        self.prism.call(fn)

    def shutdown(self) -> None:
        self.prism.shutdown()


class _CallSlo:
    def __init__(self, local: threading.local, slo_ms: float | None) -> None:
        self.local, self.slo_ms = local, slo_ms

    def __enter__(self) -> None:
        self.local.slo_ms = self.slo_ms

    def __exit__(self, *exc: object) -> None:
        self.local.slo_ms = None
