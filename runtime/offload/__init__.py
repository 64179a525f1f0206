"""FlexGen-style offloading (`max_device_memory`, `max_host_memory`): a policy chosen by a
linear program over FlexGen's cost model places weights and KV cache on the device, in host
memory or on disk; the layers stream with the next one prefetched.

    plan = plan_offload(path, hf_config, config, device)    # before anything slow
    offloaded = Offloaded.load(plan, ops)                   # model + streamer
    offloaded.place_kv(pool)                                # after the KV pool is built
"""

from __future__ import annotations

from dataclasses import dataclass

from sglc.kernels import KernelOps
from sglc.runtime.mem.kv_pool import KVPool
from sglc.runtime.models.loader import LoadedModel
from sglc.runtime.offload.kv import place_kv
from sglc.runtime.offload.loader import load_offloaded
from sglc.runtime.offload.plan import OffloadPlan, offload_dir, plan_offload
from sglc.runtime.offload.policy import Budgets, Costs, OffloadError, Policy, Sizes, solve_policy
from sglc.runtime.offload.streamer import LayerStreamer


@dataclass
class Offloaded:
    """A loaded offloaded model, its plan and its streamer (None when nothing streams)."""

    plan: OffloadPlan
    loaded: LoadedModel
    streamer: LayerStreamer | None

    @classmethod
    def load(cls, plan: OffloadPlan, ops: KernelOps) -> Offloaded:
        loaded, streamer = load_offloaded(plan, ops)
        return cls(plan, loaded, streamer)

    def place_kv(self, pool: KVPool) -> int:
        return place_kv(pool, self.plan.placement.kv_tiers, offload_dir(self.plan.config))

    def describe(self) -> str:
        return self.plan.describe()

    def close(self) -> None:
        if self.streamer is not None:
            self.streamer.close()


__all__ = ["Budgets", "Costs", "OffloadError", "OffloadPlan", "Offloaded", "Policy", "Sizes",
           "plan_offload", "solve_policy"]
