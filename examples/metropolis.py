"""AI Metropolis on the default model: a town of residents (examples/metropolis.sgl's `act`
for each step of each), run out of order or with a barrier per step.

    python examples/metropolis.py --agents 16 --steps 3 --schedule ooo [--model PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sglc
from sglc.stdlib.metropolis import Simulation, Town, simulate
from sglc.stdlib.spacetime import SCHEDULES

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None, runtime: sglc.Runtime | None = None) -> Simulation:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", choices=SCHEDULES, default="ooo")
    parser.add_argument("--model", default=None, help="a model directory (default: embedded)")
    args = parser.parse_args(argv)
    runtime = runtime or sglc.Runtime(model_path=args.model)
    town = Town.scatter(args.agents, seed=args.seed, radius=args.radius)
    sim = simulate(sglc.load(HERE / "metropolis.sgl"), town, args.steps,
                   schedule=args.schedule, runtime=runtime)
    for turn in sim.turns:
        x, y = turn.position
        print(f"step {turn.step}  {town.names[turn.agent]:>6} at ({x:2}, {y:2}) sees "
              f"{len(turn.seen)}, goes {turn.move:5}, says: {turn.say.strip()}")
    print(f"{args.schedule}: {len(sim.turns)} turns in {sim.wall_s:.2f} s; the furthest one "
          f"resident got ahead of another: {sim.log.max_lead} steps")
    return sim


if __name__ == "__main__":
    main()
