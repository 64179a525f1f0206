"""The adapter pool: device memory for `num_slots` LoRA adapters beside the KV pool, filled on
demand from the adapters in host memory, least recently used out first (S-LoRA's paging
of adapters, with one slot per adapter instead of a shared slot pool).

Per layer and target module, the slots of every adapter are stacked and padded to the pool's
rank, the layout the segmented shrink/expand kernels read (``sglc.kernels.lora``)::

    a        [num_slots, max_rank, in_features]    rows >= the slot's rank: never read
    b        [num_slots, out_features, max_rank]   columns >= the slot's rank: never read
    ranks    [num_slots] int32                     0: the slot's adapter leaves it alone
    scalings [num_slots] float32

A forward pass asks `prepare` for the slots of the adapters its requests use (at most
`num_slots`, which the scheduler guarantees); the slots stay theirs until a later pass
needs the room.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import NamedTuple

import torch

from sglc.runtime.core import EngineError
from sglc.runtime.lora.adapter import LoraAdapter, projection_shape
from sglc.runtime.models.config import ModelConfig


class SlotWeights(NamedTuple):
    """One (layer, module)'s stacked adapter weights; see the module docstring."""

    a: torch.Tensor
    b: torch.Tensor
    ranks: torch.Tensor
    scalings: torch.Tensor


class LoraPool:
    def __init__(self, cfg: ModelConfig, adapters: dict[str, LoraAdapter], num_slots: int,
                 max_rank: int | None, dtype: torch.dtype, device: torch.device) -> None:
        if not adapters:
            raise ValueError("a LoRA pool needs at least one adapter")
        largest = max(a.max_rank for a in adapters.values())
        self.max_rank = max_rank or largest
        if largest > self.max_rank:
            name = max(adapters, key=lambda n: adapters[n].max_rank)
            raise EngineError(f"LoRA adapter {name!r} has rank {largest}, above "
                              f"max_lora_rank={self.max_rank}")
        self.adapters = adapters
        self.num_slots = min(num_slots, len(adapters))
        self.device = device
        self.modules = tuple(sorted(set().union(*(a.modules for a in adapters.values()))))
        self.weights: dict[tuple[int, str], SlotWeights] = {}
        for layer in range(cfg.num_layers):
            for module in self.modules:
                in_features, out_features = projection_shape(cfg, module)
                self.weights[(layer, module)] = SlotWeights(
                    torch.zeros(self.num_slots, self.max_rank, in_features, dtype=dtype,
                                device=device),
                    torch.zeros(self.num_slots, out_features, self.max_rank, dtype=dtype,
                                device=device),
                    torch.zeros(self.num_slots, dtype=torch.int32, device=device),
                    torch.zeros(self.num_slots, dtype=torch.float32, device=device),
                )
        self._slots: OrderedDict[str, int] = OrderedDict()  # loaded, least recently used first
        self._free = list(range(self.num_slots - 1, -1, -1))
        self.num_loads = 0
        self.num_evictions = 0

    @property
    def loaded(self) -> list[str]:
        """Adapters in the pool, least recently used first."""
        return list(self._slots)

    @property
    def num_bytes(self) -> int:
        return sum(w.a.nbytes + w.b.nbytes for w in self.weights.values())

    def prepare(self, names: Iterable[str]) -> dict[str, int]:
        """The slot of each adapter, loading the missing ones over the least recently used
        adapters not among `names`. EngineError if they are more than the pool holds."""
        wanted = list(dict.fromkeys(names))
        if len(wanted) > self.num_slots:
            raise EngineError(f"{len(wanted)} LoRA adapters in one batch; the pool holds "
                              f"{self.num_slots} (max_loras_per_batch)")
        for name in wanted:
            if name in self._slots:
                self._slots.move_to_end(name)
        for name in wanted:
            if name not in self._slots:
                self._load(name, self._take_slot(set(wanted)))
        return {name: self._slots[name] for name in wanted}

    def _take_slot(self, keep: set[str]) -> int:
        if self._free:
            return self._free.pop()
        victim = next(n for n in self._slots if n not in keep)
        self.num_evictions += 1
        return self._slots.pop(victim)

    def _load(self, name: str, slot: int) -> None:
        adapter = self.adapters[name]
        for (layer, module), pool in self.weights.items():
            weights = adapter.weights.get((layer, module))
            if weights is None:
                pool.ranks[slot] = 0
                continue
            rank = weights.rank
            pool.a[slot, :rank].copy_(weights.a, non_blocking=True)
            pool.b[slot, :, :rank].copy_(weights.b, non_blocking=True)
            pool.ranks[slot] = rank
            pool.scalings[slot] = weights.scaling
        self._slots[name] = slot
        self.num_loads += 1
