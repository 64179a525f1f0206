"""AlpaServe placement, SIMULATED: replication-only vs model-parallel placement by SLO attainment.

This is a discrete-event simulation, not a serving run: no model serves a request here. Its
one measured input is the latency of a Llama decoder layer (PyTorch ops on this machine's
CPU: RMSNorm, q/k/v/o projections, causal SDPA, SiLU-gated MLP; fp32, batch 1, a prompt of
`--tokens` tokens), from which each model's latency is `num_layers x layer latency`.

Setting ("AlpaServe: Statistical Multiplexing with Model Parallelism for Deep Learning
Serving", Li et al., OSDI'23): `--num-models` models of one architecture on `--num-devices`
devices of `--device-memory` model-sizes of memory each. A group of g devices runs the
models placed on it as g pipeline stages (a 1/g slice of each on every device; a request
passes the stages in order, a stage boundary costs `--comm-ms`); a group of 1 device is
plain replication. A request goes to the group holding its model that would finish it first
(FIFO per device); one that would miss its SLO (`--slo-scale` x the model's one-device
latency) is rejected there and counts as missed. SLO attainment = served within SLO / all.

Arrivals: each model's requests are a Gamma renewal process (coefficient of variation
`--cv`: bursts when > 1), rates Zipf-skewed over the models (exponent `--skew`), total
`--rate` per second over `--duration` seconds, all from `random.Random(--seed)`.

Placements:
    replication   groups of 1 device; greedily add the (model, device) replica that raises
                  the simulated attainment most, while memory allows (Selective Replication)
    alpaserve     for each group size g in 1, 2, 4, ... (devices split into equal groups,
                  g-stage pipelines), the same greedy placement over those groups (a model
                  takes 1/g of its memory on each device of its group); the size with the
                  best simulated attainment wins (AlpaServe's greedy search, with its group
                  partitions restricted to equal sizes)

Running these placements for real needs what issue 18 (scale-out) is about: an engine that
spans devices (`--tp` tensor or pipeline parallel stages across GPUs, `--dp` replicas) and a
dispatcher in front of several such engines; then this script's placements would become
engine launches and its simulated latencies measured ones.

Run `python benchmarks/placement_sim.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "placement_sim"


# -- the measured input: one decoder layer ----------------------------------------------------
def layer_latency_s(hidden: int, intermediate: int, num_heads: int, tokens: int,
                    repeats: int) -> float:
    """Median wall time of one Llama decoder layer's forward over `tokens` tokens."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    w = {name: torch.randn(shape) * 0.02 for name, shape in {
        "q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
        "o": (hidden, hidden), "gate": (intermediate, hidden), "up": (intermediate, hidden),
        "down": (hidden, intermediate)}.items()}
    norm1, norm2 = torch.ones(hidden), torch.ones(hidden)
    x = torch.randn(1, tokens, hidden)
    head_dim = hidden // num_heads

    def rms(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5) * weight

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(1, tokens, num_heads, head_dim).transpose(1, 2)

    def layer(h: torch.Tensor) -> torch.Tensor:
        a = rms(h, norm1)
        q, k, v = (heads(F.linear(a, w[n])) for n in ("q", "k", "v"))
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + F.linear(attn.transpose(1, 2).reshape(1, tokens, hidden), w["o"])
        m = rms(h, norm2)
        return h + F.linear(F.silu(F.linear(m, w["gate"])) * F.linear(m, w["up"]), w["down"])

    with torch.inference_mode():
        layer(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x)
            times.append(time.perf_counter() - start)
    return common.median(times)


# -- the simulation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    arrival: float
    model: int


def arrivals(num_models: int, rate: float, cv: float, skew: float, duration: float,
             seed: int) -> list[Request]:
    """Gamma renewal arrivals per model (shape 1/cv^2), Zipf-skewed rates."""
    rng = random.Random(seed)
    weights = [1.0 / (k + 1) ** skew for k in range(num_models)]
    total = sum(weights)
    out = []
    shape = 1.0 / cv ** 2
    for m, w in enumerate(weights):
        model_rate = rate * w / total
        t = 0.0
        while True:
            t += rng.gammavariate(shape, 1.0 / (shape * model_rate))
            if t >= duration:
                break
            out.append(Request(t, m))
    out.sort(key=lambda r: r.arrival)
    return out


@dataclass(frozen=True)
class Setup:
    model_latency: float  # one-device latency of every model (same architecture)
    comm: float  # seconds per pipeline stage boundary
    slo: float  # seconds
    device_memory: float  # in model sizes


def attainment(groups: list[list[int]], placement: list[set[int]], requests: list[Request],
               setup: Setup) -> float:
    """SLO attainment of `placement` (models on each group of devices)."""
    if not requests:
        return 1.0
    free = [[0.0] * len(g) for g in groups]  # per group, per stage: when it frees up
    holders: dict[int, list[int]] = {}
    for gi, models in enumerate(placement):
        for m in models:
            holders.setdefault(m, []).append(gi)
    stage = [setup.model_latency / len(g) + (setup.comm if len(g) > 1 else 0.0)
             for g in groups]
    served = 0
    for r in requests:
        best = None
        for gi in holders.get(r.model, ()):
            t = r.arrival
            for s in free[gi]:
                t = max(t, s) + stage[gi]
            if best is None or t < best[0]:
                best = (t, gi)
        if best is None or best[0] - r.arrival > setup.slo:
            continue  # rejected: it would miss its SLO (or no group holds its model)
        t, gi = r.arrival, best[1]
        for k, s in enumerate(free[gi]):
            t = max(t, s) + stage[gi]
            free[gi][k] = t
        served += 1
    return served / len(requests)


def greedy_placement(groups: list[list[int]], num_models: int, requests: list[Request],
                     setup: Setup) -> tuple[list[set[int]], float]:
    """Add the (model, group) replica that raises simulated attainment most, while memory
    allows, until nothing fits or nothing helps (ties: the emptier group)."""
    placement: list[set[int]] = [set() for _ in groups]
    used = [0.0] * len(groups)  # per device of the group, in model sizes
    score = attainment(groups, placement, requests, setup)
    while True:
        candidates = []
        for gi, g in enumerate(groups):
            share = 1.0 / len(g)
            if used[gi] + share > setup.device_memory + 1e-9:
                continue
            for m in range(num_models):
                if m in placement[gi]:
                    continue
                placement[gi].add(m)
                gain = attainment(groups, placement, requests, setup)
                placement[gi].discard(m)
                heapq.heappush(candidates, (-gain, used[gi], gi, m))
        if not candidates:
            return placement, score
        gain, _, gi, m = heapq.heappop(candidates)
        if -gain <= score:
            return placement, score
        placement[gi].add(m)
        used[gi] += 1.0 / len(groups[gi])
        score = -gain


def group_sizes(num_devices: int) -> list[int]:
    sizes, g = [], 1
    while g <= num_devices:
        if num_devices % g == 0:
            sizes.append(g)
        g *= 2
    return sizes


def place(method: str, num_devices: int, num_models: int, requests: list[Request],
          setup: Setup) -> dict:
    """The chosen placement of `method` (fitted on `requests`)."""
    sizes = [1] if method == "replication" else group_sizes(num_devices)
    best = None
    for g in sizes:
        groups = [list(range(k, k + g)) for k in range(0, num_devices, g)]
        placement, score = greedy_placement(groups, num_models, requests, setup)
        if best is None or score > best["fit_attainment"]:
            best = {"group_size": g, "groups": groups,
                    "placement": [sorted(p) for p in placement], "fit_attainment": score}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, repeats=5)
    parser.add_argument("--num-devices", type=int, default=8)
    parser.add_argument("--num-models", type=int, default=8)
    parser.add_argument("--device-memory", type=float, default=1.5,
                        help="memory per device, in model sizes (default 1.5)")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=2816)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128, help="prompt tokens per request")
    parser.add_argument("--comm-ms", type=float, default=1.0,
                        help="cost of a pipeline stage boundary, ms (an assumption)")
    parser.add_argument("--rate", type=float, default=None,
                        help="requests/s in all (default: 70%% of the devices' capacity)")
    parser.add_argument("--skew", type=float, default=1.0)
    parser.add_argument("--cvs", type=float, nargs="+", default=[1.0, 3.0, 6.0])
    parser.add_argument("--slo-scales", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of arrivals (default: 400 model latencies)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.num_models, args.cvs, args.slo_scales = 1, 4, [3.0], [5.0]
        args.num_devices, args.hidden, args.intermediate, args.layers = 4, 256, 704, 4
    env = common.begin(args.threads)
    layer_s = common.run_in_thread(lambda: layer_latency_s(
        args.hidden, args.intermediate, args.heads, args.tokens, args.repeats))
    model_s = args.layers * layer_s
    rate = args.rate or 0.7 * args.num_devices / model_s
    duration = args.duration or 400 * model_s
    print(f"measured: one decoder layer (hidden {args.hidden}, {args.tokens} tokens) "
          f"{layer_s * 1e3:.2f} ms; a {args.layers}-layer model {model_s * 1e3:.1f} ms on one "
          f"device; {rate:.1f} requests/s over {duration:.1f} s\nSIMULATED placements below "
          "(no model serves these requests)")
    rows, results = [], []
    for cv in args.cvs:
        requests = arrivals(args.num_models, rate, cv, args.skew, duration, args.seed)
        held_out = arrivals(args.num_models, rate, cv, args.skew, duration, args.seed + 1)
        for scale in args.slo_scales:
            setup = Setup(model_s, args.comm_ms / 1e3, scale * model_s, args.device_memory)
            got = {}
            for method in ("replication", "alpaserve"):
                chosen = place(method, args.num_devices, args.num_models, requests, setup)
                groups = chosen["groups"]
                placement = [set(p) for p in chosen["placement"]]
                chosen["attainment"] = attainment(groups, placement, held_out, setup)
                got[method] = chosen
                results.append({"cv": cv, "slo_scale": scale, "method": method, **chosen})
            rows.append([cv, scale, got["replication"]["attainment"],
                         got["alpaserve"]["attainment"], got["alpaserve"]["group_size"]])
    print(common.format_table(
        ["arrival CV", "SLO x latency", "replication", "alpaserve", "alpaserve group size"],
        rows))
    print("(SLO attainment on a second trace of the same process, placements fitted on the "
          "first)")
    payload = {"args": vars(args), "environment": env, "layer_latency_s": layer_s,
               "model_latency_s": model_s, "rate": rate, "duration_s": duration,
               "simulated": True, "results": results}
    print(f"wrote {common.write_json(NAME, payload, args.out)}")


if __name__ == "__main__":
    main()
