"""The spatio-temporal dependency tracker on its own (no model): an agent never starts a step
before every agent that turns out to be within its radius has finished the previous one,
while an agent far from the others runs ahead; the schedules it drives (ooo, barrier)."""

from __future__ import annotations

import asyncio
import random

import pytest

from sglc.stdlib.spacetime import (
    DependencyError,
    DependencyTracker,
    distance,
    run_schedule,
)

MOVES = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)]


def test_an_agent_waits_for_a_neighbour_then_goes():
    tracker = DependencyTracker([(0, 0), (1, 0)], radius=1, max_speed=1, num_steps=3)
    assert tracker.ready() == [0, 1]
    tracker.start(0), tracker.start(1)
    assert tracker.finish(0, (0, 1)) == []  # agent 1 is still on step 0, next to it
    assert not tracker.can_start(0)
    with pytest.raises(DependencyError, match="agent 1 has finished only 0 steps"):
        tracker.start(0)
    assert tracker.finish(1, (1, 1)) == [0, 1]


def test_the_radius_grows_by_the_distance_a_lagging_agent_can_still_move():
    # at step 1, an agent still on step 0 can be one cell nearer than it is now
    near = DependencyTracker([(0, 0), (3, 0)], radius=2, max_speed=1, num_steps=2)
    near.start(0), near.start(1)
    assert near.finish(0, (0, 0)) == []  # 3 <= 2 + 1: agent 1 may step into the radius
    far = DependencyTracker([(0, 0), (4, 0)], radius=2, max_speed=1, num_steps=2)
    far.start(0), far.start(1)
    assert far.finish(0, (0, 0)) == [0]  # 4 > 2 + 1: it cannot
    fast = DependencyTracker([(0, 0), (4, 0)], radius=2, max_speed=2, num_steps=2)
    fast.start(0), fast.start(1)
    assert fast.finish(0, (0, 0)) == []  # it could, moving two cells a step


def test_an_agent_far_from_the_others_runs_all_its_steps_ahead():
    tracker = DependencyTracker([(0, 0), (1, 1), (50, 50)], radius=2, max_speed=1,
                                num_steps=5)
    for agent in tracker.ready():
        tracker.start(agent)
    for _ in range(5):  # agents 0 and 1 stay on step 0 the whole time
        tracker.finish(2, (50, 50))
        if tracker.can_start(2):
            tracker.start(2)
    assert tracker.clock(2) == 5 and tracker.clock(0) == tracker.clock(1) == 0
    # its neighbours at every step are known (none), theirs at step 1 are not yet
    assert tracker.neighbours(2, 4) == []
    with pytest.raises(DependencyError, match="not known yet"):
        tracker.position(0, 1)


def test_bad_uses_are_refused():
    tracker = DependencyTracker([(0, 0)], radius=1, max_speed=1, num_steps=1)
    with pytest.raises(DependencyError, match="never started"):
        tracker.finish(0, (0, 0))
    tracker.start(0)
    with pytest.raises(DependencyError, match="already running"):
        tracker.start(0)
    with pytest.raises(DependencyError, match="more than max_speed=1"):
        tracker.finish(0, (2, 0))
    tracker.finish(0, (1, 0))
    with pytest.raises(DependencyError, match="finished all 1 steps"):
        tracker.start(0)
    with pytest.raises(ValueError, match="radius"):
        DependencyTracker([(0, 0)], radius=-1, max_speed=1, num_steps=1)


def _random_world(seed: int, num_agents: int, size: int, num_steps: int):
    rng = random.Random(seed)
    starts = [(rng.randrange(size), rng.randrange(size)) for _ in range(num_agents)]
    # each agent's moves are fixed in advance, so every schedule gives the same trajectories
    moves = [[rng.choice(MOVES) for _ in range(num_steps)] for _ in range(num_agents)]
    delays = {(a, t): rng.randrange(6) for a in range(num_agents) for t in range(num_steps)}
    return starts, moves, delays


def _trajectories(starts, moves):
    paths = []
    for start, path in zip(starts, moves, strict=True):
        here, points = start, [start]
        for dx, dy in path:
            here = (here[0] + dx, here[1] + dy)
            points.append(here)
        paths.append(points)
    return paths


def _run(starts, moves, delays, radius, num_steps, schedule):
    tracker = DependencyTracker(starts, radius=radius, max_speed=1, num_steps=num_steps)
    ever_ready: set[tuple[int, int]] = set()

    async def step(agent: int, t: int):
        for _ in range(delays[agent, t]):  # a different finishing order per seed
            await asyncio.sleep(0)
        for other in range(tracker.num_agents):  # once ready, an agent stays ready
            if (other, tracker.clock(other)) in ever_ready and not tracker.is_running(other):
                assert tracker.can_start(other)
            if tracker.can_start(other):
                ever_ready.add((other, tracker.clock(other)))
        dx, dy = moves[agent][t]
        here = tracker.position(agent, t)
        return here[0] + dx, here[1] + dy

    log = asyncio.run(run_schedule(tracker, step, schedule))
    return tracker, log


@pytest.mark.parametrize("seed", range(12))
def test_no_agent_starts_before_its_real_dependencies_finish(seed):
    num_agents, size, radius, num_steps = 14, 12, 2, 5
    starts, moves, delays = _random_world(seed, num_agents, size, num_steps)
    paths = _trajectories(starts, moves)
    tracker, log = _run(starts, moves, delays, radius, num_steps, "ooo")
    started, finished = log.order("start"), log.order("finish")
    assert len(started) == len(finished) == num_agents * num_steps
    for a in range(num_agents):
        assert [tracker.position(a, t) for t in range(num_steps + 1)] == paths[a]
        for t in range(1, num_steps):
            assert finished[a, t - 1] < started[a, t]
            # the neighbours it really had at step t (from the final trajectories)
            for b in range(num_agents):
                if b != a and distance(paths[a][t], paths[b][t]) <= radius:
                    assert finished[b, t - 1] < started[a, t], (a, b, t)
            assert tracker.neighbours(a, t) == [
                b for b in range(num_agents)
                if b != a and distance(paths[a][t], paths[b][t]) <= radius]


def test_out_of_order_runs_ahead_and_the_barrier_does_not():
    # a sparse world where some steps are slow: ooo lets the others go on
    starts, moves, delays = _random_world(3, 10, 40, 6)
    delays = {key: (40 if key[0] == 0 else 0) for key in delays}
    _, ooo = _run(starts, moves, delays, 2, 6, "ooo")
    _, barrier = _run(starts, moves, delays, 2, 6, "barrier")
    assert ooo.max_lead > 1 and barrier.max_lead == 1
    started, finished = barrier.order("start"), barrier.order("finish")
    for t in range(1, 6):
        last_finish = max(finished[a, t - 1] for a in range(10))
        assert all(started[a, t] > last_finish for a in range(10))


def test_a_failing_step_cancels_the_others_and_is_raised():
    tracker = DependencyTracker([(0, 0), (9, 9)], radius=1, max_speed=1, num_steps=3)
    cancelled = []

    async def step(agent: int, t: int):
        if agent == 1:
            raise KeyError("boom")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(agent)
            raise
        return (0, 0)

    with pytest.raises(KeyError, match="boom"):
        asyncio.run(run_schedule(tracker, step, "ooo"))
    assert cancelled == [0]
    with pytest.raises(ValueError, match="ooo, barrier"):
        asyncio.run(run_schedule(tracker, step, "lockstep"))
