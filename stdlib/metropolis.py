"""AI Metropolis: a town of LM agents on a grid, each step of each agent an SGL call, run out
of order as far as the agents' spatio-temporal dependencies allow (sglc.stdlib.spacetime),
or with a barrier per step for comparison.

    prog = sglc.load("examples/metropolis.sgl")
    town = Town.scatter(64, seed=0)                      # 64 residents, radius 2
    sim = simulate(prog, town, num_steps=4, schedule="ooo", runtime=rt)
    for turn in sim.turns: print(turn.step, town.names[turn.agent], turn.move, turn.say)

The step fn (`act` by default) is called as `act(name, x, y, step, seen)` and returns a
record with `move` (one of MOVES) and `say`. `seen` describes, in agent order, the residents
within the town's radius at the start of the step: where each stands and, after step 0,
the move it made and what it said at the previous step. A move goes one cell (the grid's
edges hold); several residents may share a cell. The schedule changes when each call runs,
never what it sees: greedy runs give the same turns either way.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sglc.program import Program
from sglc.runtime.backends import Runtime
from sglc.runtime.executor import SGLRuntimeError
from sglc.stdlib.spacetime import DependencyTracker, Point, Schedule, ScheduleLog, run_schedule

MOVES: dict[str, Point] = {"stay": (0, 0), "north": (0, 1), "south": (0, -1),
                           "east": (1, 0), "west": (-1, 0)}
MAX_SPEED = 1  # cells a move can cover (Chebyshev), what the dependency rule assumes
_HEADS = ("Ma", "Lo", "Ki", "Ta", "Ro", "Ne", "Sa", "Di", "Ju", "Pe", "Vi", "Ha", "Mi", "Bo",
          "Fe", "Zu")
_TAILS = ("ra", "n", "ko", "la", "mi", "s", "na", "to", "ri", "x", "lo", "ne", "ya", "d", "ki",
          "m")


def resident_name(index: int) -> str:
    """A short distinct name per index (256 before a number is added)."""
    name = _HEADS[index % 16] + _TAILS[index // 16 % 16]
    return name if index < 256 else f"{name}{index // 256}"


@dataclass(frozen=True)
class Town:
    """Residents (names, start cells) on a `size` x `size` grid; each sees the others
    within `radius` cells (Chebyshev)."""

    names: tuple[str, ...]
    starts: tuple[Point, ...]
    size: int
    radius: int = 2

    def __post_init__(self) -> None:
        if len(self.names) != len(self.starts):
            raise ValueError(f"{len(self.names)} names for {len(self.starts)} start cells")
        outside = [p for p in self.starts if not all(0 <= c < self.size for c in p)]
        if outside:
            raise ValueError(f"start cell {outside[0]} is off the {self.size}x{self.size} grid")

    @classmethod
    def scatter(cls, num_agents: int, *, seed: int = 0, spacing: float = 4.0,
                radius: int = 2) -> Town:
        """`num_agents` residents on distinct random cells of a grid whose side is
        `spacing` x sqrt(num_agents), so that density stays the same at any size."""
        size = max(1, math.ceil(spacing * math.sqrt(num_agents)))
        if num_agents > size * size:
            raise ValueError(f"{num_agents} residents do not fit a {size}x{size} grid")
        cells = random.Random(seed).sample(range(size * size), num_agents)
        return cls(tuple(resident_name(i) for i in range(num_agents)),
                   tuple((c % size, c // size) for c in cells), size, radius)

    def moved(self, here: Point, move: str) -> Point:
        dx, dy = MOVES[move]
        return (min(max(here[0] + dx, 0), self.size - 1), min(max(here[1] + dy, 0), self.size - 1))


@dataclass(frozen=True)
class Turn:
    """One step of one resident: where it stood, what it saw, what it did."""

    agent: int
    step: int
    position: Point
    seen: tuple[str, ...]
    move: str
    say: str


@dataclass(frozen=True)
class Simulation:
    """A finished run: every turn by (step, agent), the schedule's log, its wall time."""

    town: Town
    schedule: Schedule
    turns: tuple[Turn, ...]
    log: ScheduleLog
    wall_s: float


def describe(name: str, where: Point, last: Turn | None) -> str:
    """What a resident's neighbour sees of it: its cell, and its last move and words."""
    text = f"{name} at ({where[0]}, {where[1]})"
    if last is None:
        return text
    if not last.say.strip():
        return f"{text} went {last.move}"
    return f"{text} went {last.move} and said: {last.say.strip()}"


async def simulate_async(program: Program, town: Town, num_steps: int, *,
                         schedule: Schedule = "ooo", runtime: Runtime | None = None,
                         fn: str = "act", **defaults: Any) -> Simulation:
    """Run `num_steps` steps of every resident through the program's `fn` (gen parameters
    among `defaults` apply to every call), scheduled by `schedule`."""
    interp = program.interpreter(runtime)
    tracker = DependencyTracker(town.starts, radius=town.radius, max_speed=MAX_SPEED,
                                num_steps=num_steps)
    turns: dict[tuple[int, int], Turn] = {}

    async def step(agent: int, t: int) -> Point:
        here = tracker.position(agent, t)
        seen = tuple(describe(town.names[b], tracker.position(b, t), turns.get((b, t - 1)))
                     for b in tracker.neighbours(agent, t))
        try:
            value = await interp.call(fn, [town.names[agent], here[0], here[1], t, list(seen)],
                                      defaults=defaults)
        except SGLRuntimeError as exc:
            exc.sources = program.sources  # rendered with the program's lines
            raise
        move, say = _decision(value, fn)
        turns[agent, t] = Turn(agent, t, here, seen, move, say)
        return town.moved(here, move)

    start = time.perf_counter()
    log = await run_schedule(tracker, step, schedule)
    wall_s = time.perf_counter() - start
    ordered = tuple(turns[a, t] for t in range(num_steps) for a in range(len(town.names)))
    return Simulation(town, schedule, ordered, log, wall_s)


def simulate(program: Program, town: Town, num_steps: int, **options: Any) -> Simulation:
    """`simulate_async`, waited for (not from inside a running event loop)."""
    return asyncio.run(simulate_async(program, town, num_steps, **options))


def _decision(value: Any, fn: str) -> tuple[str, str]:
    if not isinstance(value, Mapping) or value.get("move") not in MOVES:
        raise ValueError(f"{fn}() must return a record whose `move` is one of "
                         f"{', '.join(MOVES)}; it returned {value!r:.120}")
    return value["move"], str(value.get("say", ""))


def first_difference(a: Sequence[Turn], b: Sequence[Turn]) -> str | None:
    """Where two runs' turns first differ (None: identical), said for a reader."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"step {x.step} of agent {x.agent}: {x} != {y}"
    return None if len(a) == len(b) else f"{len(a)} turns against {len(b)}"


__all__ = ["MAX_SPEED", "MOVES", "Simulation", "Town", "Turn", "describe", "first_difference",
           "resident_name", "simulate", "simulate_async"]
