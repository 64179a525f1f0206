"""AI Metropolis: out-of-order agents vs a barrier per step, on the embedded default model.

The workload (after Xie et al., "AI Metropolis: Scaling Large Language Model-based
Multi-Agent Simulation with Out-of-order Execution"): `examples/metropolis.sgl`'s `act` for
every step of every resident of `Town.scatter(N, seed)` (a grid of side 4 sqrt(N), so the
density is the same at every N; radius 2, one cell a move), `--steps` steps, greedy. Each
step is one SGL call: a constrained gen (the move) and a free gen of at most 10 tokens
(what the resident says), so steps take different times.

    barrier  every resident runs step t, all wait for the slowest, then step t+1
    ooo      a resident runs step t as soon as every resident that may be within its radius
             at step t has finished step t-1 (sglc.stdlib.spacetime)

Each run gets a fresh engine (so neither reads the other's prefix cache), and the two
schedules alternate per repeat. Measured: wall time of the simulation, and the engine's batch
occupancy: the mean number of requests in a decode batch (decode tokens / decode batches,
from `Engine.stats()`; both schedules decode the same tokens, so this is the inverse of the
number of decode passes) and the forward passes in all. The turns (every resident's
position, what it saw, its move and words at every step) must be identical (asserted).

Run `python benchmarks/metropolis.py` (16, 64 and 256 residents) or `--quick` (8 and 16).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "metropolis"
ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = ("barrier", "ooo")


def run_once(num_agents: int, num_steps: int, schedule: str, seed: int) -> dict:
    import sglc
    from sglc.stdlib.metropolis import Town, simulate

    town = Town.scatter(num_agents, seed=seed)
    prog = sglc.load(ROOT / "examples" / "metropolis.sgl")
    with sglc.Engine() as engine:
        sim = simulate(prog, town, num_steps, schedule=schedule,
                       runtime=sglc.Runtime(engine=engine))
        stats = engine.stats()
    decode_batches, decode_tokens = stats["num_decode_batches"], stats["num_decode_tokens"]
    return {
        "wall_s": sim.wall_s,
        "mean_decode_batch": decode_tokens / decode_batches if decode_batches else None,
        "decode_batches": decode_batches,
        "extend_batches": stats["num_extend_batches"],
        "forward_passes": decode_batches + stats["num_extend_batches"],
        "decode_tokens": decode_tokens,
        "prefill_tokens": stats["num_prefill_tokens"],
        "max_lead": sim.log.max_lead,
        "turns": sim.turns,
    }


def measure(num_agents: int, args: argparse.Namespace) -> dict:
    from sglc.stdlib.metropolis import first_difference

    runs = common.interleave(
        {s: (lambda rep, s=s: run_once(num_agents, args.steps, s, args.seed))
         for s in SCHEDULES}, args.repeats)
    reference = runs["barrier"][0]["turns"]
    for schedule in SCHEDULES:
        for run in runs[schedule]:
            difference = first_difference(reference, run.pop("turns"))
            assert difference is None, f"{schedule} differs from barrier: {difference}"
    summary = {s: {key: common.median([r[key] for r in runs[s]]) for key in runs[s][0]}
               for s in SCHEDULES}
    barrier, ooo = summary["barrier"], summary["ooo"]
    return {
        "runs": runs,
        "median": summary,
        "speedup": common.ratio(barrier["wall_s"], ooo["wall_s"]),
        "occupancy_ratio": common.ratio(ooo["mean_decode_batch"], barrier["mean_decode_batch"]),
        "forward_pass_ratio": common.ratio(ooo["forward_passes"], barrier["forward_passes"]),
        "identical_turns": True,
        "turns": num_agents * args.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(parser, repeats=1)
    parser.add_argument("--steps", type=int, default=3, help="steps per resident (default 3)")
    parser.add_argument("--sizes", default=None,
                        help="residents per town, comma-separated (default 16,64,256; "
                             "--quick: 8,16)")
    args = parser.parse_args()
    common.set_threads(args.threads)
    sizes = [int(s) for s in (args.sizes or ("8,16" if args.quick else "16,64,256")).split(",")]
    env = common.environment()
    print(f"{env['date_utc']}  load avg {env['load_avg_1m']:.2f}")
    common.run_in_thread(lambda: run_once(4, 1, "ooo", args.seed))  # warm: kernels, automata
    results = {str(n): measure(n, args) for n in sizes}
    rows = []
    for n, r in results.items():
        b, o = r["median"]["barrier"], r["median"]["ooo"]
        rows.append([n, b["wall_s"], o["wall_s"], r["speedup"], b["mean_decode_batch"],
                     o["mean_decode_batch"], r["occupancy_ratio"], b["forward_passes"],
                     o["forward_passes"], o["max_lead"], "yes"])
    print(common.format_table(
        ["agents", "barrier s", "ooo s", "speedup", "barrier batch", "ooo batch",
         "batch ratio", "barrier passes", "ooo passes", "ooo lead", "identical"], rows))
    load_end = os.getloadavg()[0]
    print(f"load avg {env['load_avg_1m']:.2f} at the start, {load_end:.2f} at the end")
    path = common.write_json(NAME, {
        "environment": env, "load_avg_1m_end": load_end,
        "workload": {"steps": args.steps, "seed": args.seed, "sizes": sizes,
                     "repeats": args.repeats, "radius": 2, "max_speed": 1},
        "results": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
