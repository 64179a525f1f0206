"""FlexGen's offloading policy search: a linear program over where each tensor class lives.

The decode step is a pipeline over the decoder layers: while layer i computes, a loader
brings layer i+1's weights that are not resident. FlexGen's cost model takes the time of
one layer as the slowest of what overlaps, here

    T >= compute + (KV read from disk)              the compute thread
    T >= weights from host / host bandwidth         the loader: host copies ...
         + weights from disk / disk bandwidth         ... then disk reads, in turn

and minimises T over the fractions of the weights (w) and of the KV cache (c) held on the
device (g), in host memory (c) and on disk (d), under each tier's memory budget. The
solver is `scipy.optimize.linprog` (HiGHS). Activations are not variables: the runner
computes on the device, so they are a fixed device term of the budget.

Memory per tier, for L layers of `layer_bytes` weights and `kv_layer_bytes` KV each:

    device  fixed + activations + L*W*wg + 2*W*(1 - wg) + L*K*cg <= max_device_memory
    host    L*W*wc + L*K*cc                                       <= max_host_memory
    disk    L*K*cd                                                <= disk space
            (weights on disk are read from the checkpoint itself; 2*W*(1 - wg) are the
             two buffers the streamed part of a layer is loaded into, one computing, one
             prefetching)

This module is torch-free: numbers in, a `Policy` out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sglc.runtime.core import InvalidRequest

TIERS = ("device", "host", "disk")


class OffloadError(InvalidRequest):
    """The model and its KV cache cannot fit the memory budgets, even offloaded."""


@dataclass(frozen=True)
class Costs:
    """Per-layer compute time of a decode step and the tiers' bandwidths (bytes/second),
    measured at start-up (`probe.measure_costs`) or given (`offload_costs`)."""

    compute_s: float
    host_bytes_per_s: float
    disk_bytes_per_s: float

    def __post_init__(self) -> None:
        for name in ("compute_s", "host_bytes_per_s", "disk_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise OffloadError(f"offload_costs: {name} must be > 0, got "
                                   f"{getattr(self, name)!r}")


@dataclass(frozen=True)
class Budgets:
    """Bytes each tier may hold (`max_device_memory`, `max_host_memory`, disk space)."""

    device: int
    host: int
    disk: int


@dataclass(frozen=True)
class Sizes:
    """The bytes the policy places: per decoder layer, and what stays on the device."""

    num_layers: int
    layer_bytes: int  # one layer's streamable weights (its matrices)
    kv_layer_bytes: int  # one layer's K and V over the whole pool
    fixed_bytes: int  # always on the device: embeddings, lm_head, norms, biases, rope
    activation_bytes: int  # the largest batch's activations (an estimate)
    kv_on_device_only: bool = False  # the KV cannot leave the device (CUDA, quantized KV)


@dataclass(frozen=True)
class Policy:
    """Fractions (device, host, disk) of the weights and of the KV cache, and the modelled
    time of one layer of a decode step."""

    weights: tuple[float, float, float]
    kv: tuple[float, float, float]
    layer_time_s: float
    compute_bound: bool  # T equals the compute time: the transfers hide behind compute

    def describe(self) -> str:
        def row(name: str, fractions: tuple[float, float, float]) -> str:
            return f"{name:<12}" + "".join(f"{f:>9.1%}" for f in fractions)

        head = f"{'':<12}" + "".join(f"{t:>9}" for t in TIERS)
        bound = "compute" if self.compute_bound else "transfer"
        return "\n".join([head, row("weights", self.weights), row("kv cache", self.kv),
                          row("activations", (1.0, 0.0, 0.0)),
                          f"modelled layer time {self.layer_time_s * 1e3:.3f} ms ({bound}-bound)"])


def human(num_bytes: float) -> str:
    """`num_bytes` in the largest binary unit that keeps it >= 1."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(num_bytes) < 1024 or unit == "GiB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def check_fits(sizes: Sizes, budgets: Budgets) -> None:
    """OffloadError naming the option and the limit when no placement can fit: the device
    must hold the fixed part, the activations and two layers' streaming buffers, and the
    KV cache must fit the tiers that may hold it."""
    buffers = min(2, sizes.num_layers) * sizes.layer_bytes
    least = sizes.fixed_bytes + sizes.activation_bytes + buffers
    kv_total = sizes.num_layers * sizes.kv_layer_bytes
    if sizes.kv_on_device_only:
        least += kv_total
    if budgets.device < least:
        kv = f" + the KV cache {human(kv_total)}" if sizes.kv_on_device_only else ""
        raise OffloadError(
            f"max_device_memory={human(budgets.device)} is below what must stay on the device "
            f"even with every layer streamed: {human(sizes.fixed_bytes)} of embeddings, "
            f"lm_head and norms + {human(sizes.activation_bytes)} of activations + two "
            f"layers' streaming buffers {human(buffers)}{kv} = {human(least)}; "
            f"raise max_device_memory to at least {least} bytes")
    room = budgets.device - least
    if not sizes.kv_on_device_only and kv_total > room + budgets.host + budgets.disk:
        raise OffloadError(
            f"the KV cache ({human(kv_total)}: max_total_tokens slots x {sizes.num_layers} "
            f"layers) exceeds every tier together: {human(room)} left on the device "
            f"(max_device_memory) + {human(budgets.host)} of host memory (max_host_memory) "
            f"+ {human(budgets.disk)} free on disk (offload_dir); lower max_total_tokens")


def solve_policy(sizes: Sizes, budgets: Budgets, costs: Costs) -> Policy:
    """The placement minimising the modelled layer time (see the module docstring)."""
    import numpy as np
    from scipy.optimize import linprog

    check_fits(sizes, budgets)
    n, w, k = sizes.num_layers, float(sizes.layer_bytes), float(sizes.kv_layer_bytes)
    # x = [wg, wc, wd, cg, cc, cd, T]
    tie = 1e-3 * costs.compute_s  # among equally fast placements, prefer device, then host
    objective = [0, tie, 2 * tie, 0, tie, 2 * tie, 1.0]
    kv_read = k / costs.disk_bytes_per_s
    a_ub = [
        # compute: C + cd * K / disk_bw <= T
        [0, 0, 0, 0, 0, kv_read, -1.0],
        # the loader: wc * W / host_bw + wd * W / disk_bw <= T
        [0, w / costs.host_bytes_per_s, w / costs.disk_bytes_per_s, 0, 0, 0, -1.0],
        # device memory (2 * W * (1 - wg) of streaming buffers moved to the right side)
        [(n - 2) * w, 0, 0, n * k, 0, 0, 0],
        [0, n * w, 0, 0, n * k, 0, 0],  # host memory
        [0, 0, 0, 0, 0, n * k, 0],  # disk
    ]
    b_ub = [
        -costs.compute_s, 0.0,
        budgets.device - sizes.fixed_bytes - sizes.activation_bytes - 2 * w,
        float(budgets.host), float(budgets.disk),
    ]
    a_eq = [[1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0]]
    kv_bound = (0, 0) if sizes.kv_on_device_only else (0, 1)
    bounds = [(0, 1)] * 3 + [(0, 1), kv_bound, kv_bound, (0, None)]
    # scale the memory rows to GiB so that HiGHS sees numbers of one magnitude
    scale = np.array([1.0, 1.0, 2.0**-30, 2.0**-30, 2.0**-30])
    result = linprog(objective, A_ub=np.array(a_ub) * scale[:, None],
                     b_ub=np.array(b_ub) * scale, A_eq=a_eq, b_eq=[1, 1], bounds=bounds,
                     method="highs")
    if not result.success:
        raise OffloadError(
            f"no placement fits max_device_memory={human(budgets.device)}, max_host_memory="
            f"{human(budgets.host)} and {human(budgets.disk)} of disk for "
            f"{sizes.num_layers} layers of {human(w)} weights and {human(k)} KV each "
            f"({result.message}); raise a budget or lower max_total_tokens")
    x = [max(0.0, min(1.0, float(v))) for v in result.x]
    layer_time = layer_time_s(sizes, costs, tuple(x[0:3]), tuple(x[3:6]))
    return Policy(tuple(x[0:3]), tuple(x[3:6]), layer_time,
                  compute_bound=layer_time <= costs.compute_s * (1 + 1e-6))


def layer_time_s(sizes: Sizes, costs: Costs, weights: tuple[float, float, float],
                 kv: tuple[float, float, float]) -> float:
    """The cost model's time of one layer for a placement (the LP's T at its optimum)."""
    compute = costs.compute_s + kv[2] * sizes.kv_layer_bytes / costs.disk_bytes_per_s
    loader = (weights[1] * sizes.layer_bytes / costs.host_bytes_per_s
              + weights[2] * sizes.layer_bytes / costs.disk_bytes_per_s)
    return max(compute, loader)
