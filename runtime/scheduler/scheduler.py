"""Continuous batching: choose each step's extend or decode batch within memory.

Requests move waiting -> (chunked) -> running -> finished. Extend batches take priority
(new work joins as soon as memory allows); otherwise all running requests decode one
token. A running request that got several tokens at once (jump-forward of constrained
decoding) computes them in that same step: the batch is then an extend batch in which the
others extend by their one token. When decode runs out of KV slots, the newest running
requests are retracted: their KV goes to the prefix cache and they wait to resume with the
output they already have.
"""

from __future__ import annotations

import time

from sglc.runtime.config import EngineConfig
from sglc.runtime.core import ForwardMode
from sglc.runtime.req import Req, ReqState, ScheduledBatch
from sglc.runtime.scheduler.kv_manager import KVManager
from sglc.runtime.scheduler.policy import make_policy

_RESERVE_CLIP = 4096  # future tokens counted per running request in the decode reserve


class Scheduler:
    def __init__(self, config: EngineConfig, kv: KVManager) -> None:
        self.config = config
        self.kv = kv
        self.policy = make_policy(config.policy, config)
        self.waiting: list[Req] = []
        self.running: list[Req] = []
        self.chunked: Req | None = None  # mid chunked prefill: neither waiting nor running
        self.num_retractions = 0

    # -- queue --------------------------------------------------------------------------------
    def add(self, req: Req) -> None:
        if req.times.arrived is None:
            req.times.arrived = time.perf_counter()
        self.policy.on_arrival(req, self.waiting)
        req.state = ReqState.WAITING
        self.waiting.append(req)

    @property
    def is_idle(self) -> bool:
        return not (self.waiting or self.running or self.chunked)

    def all_reqs(self) -> list[Req]:
        return self.waiting + self.running + ([self.chunked] if self.chunked else [])

    def schedule(self) -> ScheduledBatch | None:
        batch = self._schedule_extend() or self._schedule_decode()
        if batch is not None:
            self.policy.on_scheduled(batch)
        return batch

    # -- extend ---------------------------------------------------------------------------------
    def _schedule_extend(self) -> ScheduledBatch | None:
        if not self.waiting and self.chunked is None:
            return None
        batch = ScheduledBatch(ForwardMode.EXTEND, [], [], [])
        budget = self.config.prefill_budget
        reserve = self._decode_reserve(self.running)
        heads: set[tuple[int | str | None, ...]] = set()
        candidates = [self.chunked] if self.chunked else []
        candidates += self.policy.order(self.waiting, self.kv.peek_match_len)
        adapters = self._running_adapters() if self.config.lora_paths else set()
        for req in candidates:
            if budget <= 0 or len(self.running) + len(batch.reqs) >= self.config.max_running_requests:
                break
            if req is not self.chunked and self._shares_head(req, heads):
                continue  # computed once by the request already in this batch, then shared
            if not self._adapter_fits(req, adapters):
                continue  # waits until a running adapter's requests finish
            num = self._add_extend(req, batch, budget, reserve)
            if num is None:
                break
            budget -= num
            reserve += self._decode_reserve([req])
        if not batch.reqs:
            return None
        admitted = set(map(id, batch.reqs))
        self.waiting = [r for r in self.waiting if id(r) not in admitted]
        return batch

    def _running_adapters(self) -> set[str]:
        """The LoRA adapters of the running (and chunked) requests."""
        reqs = self.running + ([self.chunked] if self.chunked else [])
        return {r.params.lora for r in reqs if r.params.lora is not None}

    def _adapter_fits(self, req: Req, adapters: set[str]) -> bool:
        """Whether req's adapter can join: one batch runs at most `max_loras_per_batch`
        distinct adapters (the adapter pool's slots). Adds it to `adapters` if so."""
        name = req.params.lora
        if name is None or name in adapters:
            return True
        if len(adapters) >= self.config.max_loras_per_batch:
            return False
        adapters.add(name)
        return True

    def _shares_head(self, req: Req, heads: set[tuple[int | str | None, ...]]) -> bool:
        """True if another request of this batch starts with the same uncached head."""
        n = self.config.in_batch_prefix_len
        if not self.kv.caches_prefixes or req.num_tokens <= n or self.kv.peek_match_len(req) >= n:
            return False
        head = (req.params.lora, *req.prompt_ids[:n])
        if head in heads:
            return True
        heads.add(head)
        return False

    def _add_extend(self, req: Req, batch: ScheduledBatch, budget: int, reserve: int) -> int | None:
        """Admit (part of) req into the batch; the number of tokens taken, or None to stop."""
        is_new = req.kv.row is None
        if is_new and not self.kv.admit(req):
            return None
        todo = req.num_uncomputed_tokens
        num = min(todo, budget)
        if num < todo:
            if not self.config.is_chunking and batch.reqs:
                return self._undo(req, is_new)
            num = num // self.kv.page_size * self.kv.page_size if self.config.is_chunking else todo
            if num == 0:
                return self._undo(req, is_new)
        alone = not batch.reqs and not self.running
        if self.kv.slots_needed(req, num) + (0 if alone else reserve) > self.kv.available_slots:
            return self._undo(req, is_new)
        start = req.kv.num_computed_tokens
        if not self.kv.alloc(req, num):
            return self._undo(req, is_new)
        batch.reqs.append(req)
        batch.extend_starts.append(start)
        batch.extend_lens.append(num)
        return num

    def _undo(self, req: Req, is_new: bool) -> None:
        if is_new:
            self.kv.release(req)
        return None

    def _decode_reserve(self, reqs: list[Req]) -> int:
        future = sum(min(r.params.max_new_tokens - len(r.output_ids), _RESERVE_CLIP) for r in reqs)
        return int(future * self.config.new_token_reserve_ratio)

    # -- decode ---------------------------------------------------------------------------------
    def _schedule_decode(self) -> ScheduledBatch | None:
        if not self.running:
            return None
        while self.running and self._decode_slots_needed() > self.kv.available_slots:
            if len(self.running) == 1:
                break  # alone and out of memory: the engine finishes it with "length"
            self.retract(self.running[-1])
        reqs = self.kv.alloc_many(self.running, [r.num_uncomputed_tokens for r in self.running])
        starts = [r.kv.num_computed_tokens for r in reqs]
        lens = [r.num_uncomputed_tokens for r in reqs]
        if not reqs:
            return None
        mode = ForwardMode.DECODE if all(n == 1 for n in lens) else ForwardMode.EXTEND
        return ScheduledBatch(mode, reqs, starts, lens)

    def _decode_slots_needed(self) -> int:
        return sum(self.kv.slots_needed(r, r.num_uncomputed_tokens) for r in self.running)

    def out_of_memory(self) -> list[Req]:
        """Running requests that cannot get a slot even alone (the pool is too small). When
        the pool shares its memory with other models' (`allocator.is_shared`), the memory
        their requests hold comes back: the request is retracted to wait for it instead."""
        if len(self.running) == 1 and self._decode_slots_needed() > self.kv.available_slots:
            if self.kv.allocator.is_shared:
                self.retract(self.running[0])
                return []
            return list(self.running)
        return []

    def retract(self, req: Req) -> None:
        """Requeue a running request for lack of memory (counted)."""
        self.requeue(req)
        req.num_retractions += 1
        self.num_retractions += 1

    def truncate(self, req: Req, num_tokens: int) -> None:
        """Forget the request's KV past its first `num_tokens` tokens (a jump-forward
        re-spelled them). Where that KV belongs to the prefix cache, the request goes back to
        wait for an extend from the cache instead."""
        if not self.kv.truncate(req, num_tokens):
            self.requeue(req)

    def requeue(self, req: Req) -> None:
        """Send a running request back to wait, first in line, for an extend: its KV goes to
        the prefix cache, from which the extend reuses it."""
        self.running.remove(req)
        self.kv.release(req)
        req.state = ReqState.WAITING
        self.waiting.insert(0, req)

    # -- after the forward pass -------------------------------------------------------------------
    def after_forward(self, batch: ScheduledBatch) -> None:
        """Advance KV lengths; requests whose prefill completed start running."""
        self.policy.on_forward(batch)
        for i, req in enumerate(batch.reqs):
            req.kv.num_computed_tokens = batch.extend_starts[i] + batch.extend_lens[i]
            self.kv.release_window(req)  # sliding layers' K/V that left the window
            if batch.mode is ForwardMode.DECODE or req.state is ReqState.RUNNING:
                continue
            if batch.completes_fill(i):
                if req is self.chunked:
                    self.chunked = None
                req.state = ReqState.RUNNING
                self.running.append(req)
            else:
                self.chunked = req
            self.kv.cache_prefix(req)
        if self.kv.eviction is not None:  # kv_policy: drop KV past the budget, prefill done
            for i, req in enumerate(batch.reqs):
                if batch.completes_fill(i) and req.score_from is None:
                    self.kv.evict(req)

    def finish(self, req: Req) -> None:
        """Release a finished or aborted request, wherever it is."""
        req.state = ReqState.FINISHED
        if req in self.running:
            self.running.remove(req)
        elif req is self.chunked:
            self.chunked = None
        elif req in self.waiting:
            self.waiting.remove(req)
        self.kv.release(req)
