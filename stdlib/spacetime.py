"""Spatio-temporal dependencies of agents on a grid, after AI Metropolis (Xie et al., "Scaling
LLM-based Multi-Agent Simulation with Out-of-order Execution"): which agent may run its next
step now, so that each runs as far ahead as its real dependencies allow instead of waiting at
a barrier after every step.

The rule. Agent a's step t reads what the agents within `radius` of it (Chebyshev distance,
positions at step t) did at step t-1. An agent moves at most `max_speed` cells a step. Agent
b, which has finished `clock(b)` steps and is at `position(b, clock(b))`, can be within the
radius of a at step t > clock(b) only if

    dist(position(a, t), position(b, clock(b))) <= radius + (t - clock(b)) * max_speed

so a may start step t once no agent behind it (clock < t) passes that test. Agents at or
ahead of step t never hold a back: every agent's position at every step is kept.

NOTE: readiness is monotone: once an agent may start its next step, no other agent's
progress takes that back (a lagging agent that finishes a step moves at most `max_speed`
while the allowance shrinks by exactly that). So a driver only rechecks the agents that
waited on the one that just finished.

    tracker = DependencyTracker(starts, radius=2, max_speed=1, num_steps=4)
    for agent in tracker.ready(): step = tracker.start(agent) ...
    newly_ready = tracker.finish(agent, new_position)

`run_schedule` drives a tracker with an async step function, out of order ("ooo") or with
a barrier per step ("barrier", the baseline); `sglc.stdlib.metropolis` runs an SGL fn as
the step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Point = tuple[int, int]
Schedule = Literal["ooo", "barrier"]
SCHEDULES: tuple[Schedule, ...] = ("ooo", "barrier")


class DependencyError(RuntimeError):
    """A step started before its dependencies finished, or a move broke the speed limit."""


def distance(p: Point, q: Point) -> int:
    """Chebyshev distance: one step in any of the 8 directions is 1."""
    return max(abs(p[0] - q[0]), abs(p[1] - q[1]))


class DependencyTracker:
    """Each agent's clock (steps finished) and positions (one per step reached); which
    agents may start their next step. Agents are numbered 0..N-1 in the order of `starts`."""

    def __init__(self, starts: Sequence[Point], *, radius: int, max_speed: int,
                 num_steps: int) -> None:
        if radius < 0 or max_speed < 0 or num_steps < 0:
            raise ValueError(f"radius ({radius}), max_speed ({max_speed}) and num_steps "
                             f"({num_steps}) must be at least 0")
        self.radius, self.max_speed, self.num_steps = radius, max_speed, num_steps
        self._positions: list[list[Point]] = [[tuple(p)] for p in starts]  # [agent][step]
        self._running: set[int] = set()
        # the agents whose last check found this agent (the key) in their way
        self._waiting_on: dict[int, set[int]] = {}
        self._by_clock: list[set[int]] = [set(range(len(starts)))]  # [clock] -> agents
        self._by_clock += [set() for _ in range(num_steps)]

    @property
    def num_agents(self) -> int:
        return len(self._positions)

    def clock(self, agent: int) -> int:
        """How many steps `agent` has finished (the step it runs next)."""
        return len(self._positions[agent]) - 1

    def position(self, agent: int, step: int) -> Point:
        """Where `agent` was when step `step` began (known once it finished step-1)."""
        if not 0 <= step <= self.clock(agent):
            raise DependencyError(f"agent {agent}'s position at step {step} is not known "
                                  f"yet (it has finished {self.clock(agent)} steps)")
        return self._positions[agent][step]

    def is_running(self, agent: int) -> bool:
        return agent in self._running

    def is_done(self) -> bool:
        return all(self.clock(a) == self.num_steps for a in range(self.num_agents))

    def blocker(self, agent: int) -> int | None:
        """An agent behind `agent` that may still come within its radius at its next step,
        or None when nothing holds it back."""
        step = self.clock(agent)
        here = self._positions[agent][step]
        for clock in range(step):
            allowance = self.radius + (step - clock) * self.max_speed
            for other in self._by_clock[clock]:
                if distance(here, self._positions[other][clock]) <= allowance:
                    return other
        return None

    def can_start(self, agent: int) -> bool:
        return (agent not in self._running and self.clock(agent) < self.num_steps
                and self.blocker(agent) is None)

    def ready(self) -> list[int]:
        """Every agent that may start its next step now, in order (registering the others
        with what blocks them)."""
        return [a for a in range(self.num_agents) if self._check(a)]

    def start(self, agent: int) -> int:
        """Mark `agent` running its next step; returns that step."""
        step = self.clock(agent)
        if agent in self._running:
            raise DependencyError(f"agent {agent} is already running step {step}")
        if step >= self.num_steps:
            raise DependencyError(f"agent {agent} has finished all {self.num_steps} steps")
        other = self.blocker(agent)
        if other is not None:
            raise DependencyError(
                f"agent {agent} cannot start step {step}: agent {other} has finished only "
                f"{self.clock(other)} steps and may come within radius {self.radius}")
        self._running.add(agent)
        return step

    def finish(self, agent: int, position: Point) -> list[int]:
        """`agent` finished its step and stands at `position` for the next one; returns the
        agents that may start their next step now and did not before (it among them)."""
        if agent not in self._running:
            raise DependencyError(f"agent {agent} finished a step it never started")
        step = self.clock(agent)
        if distance(self._positions[agent][step], position) > self.max_speed:
            raise DependencyError(
                f"agent {agent} moved from {self._positions[agent][step]} to {tuple(position)} "
                f"at step {step}: more than max_speed={self.max_speed}")
        self._running.discard(agent)
        self._positions[agent].append(tuple(position))
        self._by_clock[step].discard(agent)
        self._by_clock[step + 1].add(agent)
        waiters = sorted({agent} | self._waiting_on.pop(agent, set()))
        return [a for a in waiters if self._check(a)]

    def neighbours(self, agent: int, step: int) -> list[int]:
        """The agents within the radius of `agent` at `step` (it excluded), in order. Needs
        every agent that could be one to have reached `step`: ask when `agent` starts it."""
        here = self.position(agent, step)
        found = []
        for other in range(self.num_agents):
            if other == agent:
                continue
            if self.clock(other) >= step:
                if distance(here, self._positions[other][step]) <= self.radius:
                    found.append(other)
            elif distance(here, self._positions[other][-1]) <= (
                    self.radius + (step - self.clock(other)) * self.max_speed):
                raise DependencyError(f"agent {agent}'s neighbours at step {step} are not "
                                      f"known yet: agent {other} is still behind")
        return found

    def _check(self, agent: int) -> bool:
        """Whether `agent` may start now; if it waits on another, register it there."""
        if agent in self._running or self.clock(agent) >= self.num_steps:
            return False
        other = self.blocker(agent)
        if other is None:
            return True
        self._waiting_on.setdefault(other, set()).add(agent)
        return False


@dataclass
class ScheduleLog:
    """What a schedule did, in order: ("start" | "finish", agent, step) events, and the
    largest gap between two agents' clocks it ever saw (0..num_steps; 0 or 1 is lockstep)."""

    events: list[tuple[str, int, int]] = field(default_factory=list)
    max_lead: int = 0

    def order(self, kind: str) -> dict[tuple[int, int], int]:
        """(agent, step) -> the position of its `kind` event in `events`."""
        return {(a, t): k for k, (e, a, t) in enumerate(self.events) if e == kind}


StepFn = Callable[[int, int], Awaitable[Point]]  # (agent, step) -> its position after


async def run_schedule(tracker: DependencyTracker, step: StepFn,
                       schedule: Schedule = "ooo") -> ScheduleLog:
    """Run every agent's steps through `step`: "ooo" starts each step as soon as the
    tracker allows; "barrier" runs step t of every agent, waits for all, then step t+1.
    The first failure cancels the steps in flight and is raised."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    log = ScheduleLog()
    running: dict[asyncio.Task[Point], int] = {}

    def launch(agent: int) -> None:
        t = tracker.start(agent)
        log.events.append(("start", agent, t))
        running[asyncio.ensure_future(step(agent, t))] = agent

    def done(agent: int, position: Point) -> list[int]:
        log.events.append(("finish", agent, tracker.clock(agent)))
        newly_ready = tracker.finish(agent, position)
        clocks = [tracker.clock(a) for a in range(tracker.num_agents)]
        log.max_lead = max(log.max_lead, max(clocks) - min(clocks))
        return newly_ready

    try:
        if schedule == "barrier":
            for _ in range(tracker.num_steps):
                for agent in range(tracker.num_agents):
                    launch(agent)
                tasks = list(running)
                await asyncio.gather(*tasks)
                for task in tasks:
                    done(running.pop(task), task.result())
        else:
            for agent in tracker.ready():
                launch(agent)
            while running:
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(finished, key=running.__getitem__):
                    for agent in done(running.pop(task), task.result()):
                        launch(agent)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    if not tracker.is_done():  # cannot happen: some agent behind is always ready
        raise DependencyError("the schedule stopped before every agent finished")
    return log


__all__ = ["SCHEDULES", "DependencyError", "DependencyTracker", "Point", "Schedule",
           "ScheduleLog", "StepFn", "distance", "run_schedule"]
