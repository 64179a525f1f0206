"""From the policy's fractions to a placement of whole tensors and whole KV layers.

The linear program places fractions; memory holds tensors. Every decoder layer gets the
same split of its matrices (FlexGen's layout: each layer streams the same share, so every
step of the pipeline overlaps alike). The KV cache is placed a layer at a time, rounded
towards the disk; the room the rounding leaves on the device and in host memory goes to
weights, which never makes the modelled step slower. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from types import MappingProxyType

from sglc.runtime.offload.policy import (
    TIERS,
    Budgets,
    Costs,
    OffloadError,
    Policy,
    Sizes,
    human,
    layer_time_s,
)

_MAX_EXACT_UNITS = 12  # subsets enumerated up to this many matrices a layer, greedy beyond


@dataclass(frozen=True)
class Placement:
    """Where each of a layer's matrices (by its name inside the layer) and each layer's KV
    lives, and the modelled layer time of exactly this placement."""

    unit_tiers: Mapping[str, str]
    kv_tiers: tuple[str, ...]
    policy: Policy
    layer_time_s: float

    def units_on(self, tier: str) -> tuple[str, ...]:
        return tuple(sorted(u for u, t in self.unit_tiers.items() if t == tier))

    @property
    def streams(self) -> bool:
        return any(t != "device" for t in self.unit_tiers.values())

    def describe(self, unit_bytes: Mapping[str, int]) -> str:
        """The LP's fractions and what was placed, as lines of text."""
        lines = ["offloading policy (linear program, FlexGen's cost model):",
                 self.policy.describe(), "placed:"]
        for tier in TIERS:
            units = self.units_on(tier)
            size = sum(unit_bytes[u] for u in units)
            lines.append(f"  {tier:<7} weights {human(size)} a layer ({', '.join(units) or '-'});"
                         f" KV of {self.kv_tiers.count(tier)} layer(s)")
        lines.append(f"  modelled layer time {self.layer_time_s * 1e3:.3f} ms")
        return "\n".join(lines)


def place(policy: Policy, unit_bytes: Mapping[str, int], sizes: Sizes, budgets: Budgets,
          costs: Costs) -> Placement:
    """Whole tensors and layers as close to `policy` as the budgets allow (see above)."""
    n, k, w = sizes.num_layers, sizes.kv_layer_bytes, sizes.layer_bytes
    on_device = int(policy.kv[0] * n + 1e-9)
    on_host = int(policy.kv[1] * n + 1e-9)
    kv_tiers = ("device",) * on_device + ("host",) * on_host + ("disk",) * (n - on_device - on_host)
    if kv_tiers.count("disk") * k > budgets.disk:
        raise OffloadError(f"the KV cache's disk share ({human(kv_tiers.count('disk') * k)}) "
                           f"exceeds the {human(budgets.disk)} free in offload_dir")
    device_room = budgets.device - sizes.fixed_bytes - sizes.activation_bytes - on_device * k
    if n * w <= device_room:
        device_cap = w
    elif n > 2:  # n * resident + 2 * (w - resident) <= device_room
        device_cap = (device_room - 2 * w) // (n - 2)
    else:
        device_cap = 0
    device = _best_subset(unit_bytes, device_cap)
    rest = {u: b for u, b in unit_bytes.items() if u not in device}
    host = _best_subset(rest, (budgets.host - on_host * k) // n)
    tiers = {u: "device" if u in device else "host" if u in host else "disk" for u in unit_bytes}
    placed = tuple(sum(b for u, b in unit_bytes.items() if tiers[u] == t) / max(w, 1)
                   for t in TIERS)
    kv = tuple(kv_tiers.count(t) / n for t in TIERS)
    return Placement(MappingProxyType(tiers), kv_tiers, policy,
                     layer_time_s(sizes, costs, placed, kv))


def _best_subset(unit_bytes: Mapping[str, int], cap: float) -> set[str]:
    """The units with the largest total size not above `cap`."""
    names = sorted(unit_bytes)
    if cap <= 0 or not names:
        return set()
    if len(names) > _MAX_EXACT_UNITS:
        chosen, total = set(), 0
        for name in sorted(names, key=lambda u: -unit_bytes[u]):
            if total + unit_bytes[name] <= cap:
                chosen.add(name)
                total += unit_bytes[name]
        return chosen
    best: tuple[int, tuple[str, ...]] = (0, ())
    for r in range(1, len(names) + 1):
        for subset in combinations(names, r):
            total = sum(unit_bytes[u] for u in subset)
            if best[0] < total <= cap:
                best = (total, subset)
    return set(best[1])
