"""AI Metropolis on the default model: examples/metropolis.sgl run as a town, out of order and
with a barrier per step, gives the same turns (greedy); what each resident saw is what its
neighbours did; the town's rules and a step fn's bad return."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import sglc
from sglc.frontend import check_program
from sglc.stdlib.metropolis import (
    MOVES,
    Town,
    describe,
    first_difference,
    resident_name,
    simulate,
)
from sglc.stdlib.spacetime import distance

EXAMPLE = Path(__file__).parents[2] / "examples" / "metropolis.sgl"


def test_the_example_checks_clean_with_a_title_docstring():
    checked, diags = check_program(EXAMPLE)
    assert diags == [] and checked.main.module.doc


def test_both_schedules_give_the_same_turns(runtime):
    prog = sglc.load(EXAMPLE)
    # two residents side by side, one a cell further, one far away
    town = Town(("Ada", "Ben", "Cy", "Dee"), ((1, 1), (2, 1), (4, 2), (14, 14)), size=16)
    ooo = simulate(prog, town, 3, schedule="ooo", runtime=runtime, max_tokens=4)
    barrier = simulate(prog, town, 3, schedule="barrier", runtime=runtime, max_tokens=4)
    assert first_difference(ooo.turns, barrier.turns) is None
    assert ooo.turns == barrier.turns and len(ooo.turns) == 4 * 3
    assert barrier.log.max_lead == 1
    assert any("went" in s for t in ooo.turns if t.step for s in t.seen)  # saw moves
    by_key = {(t.agent, t.step): t for t in ooo.turns}
    for turn in ooo.turns:
        assert turn.move in MOVES
        nxt = by_key.get((turn.agent, turn.step + 1))
        if nxt is not None:  # moves one cell (or stays at the edge)
            assert distance(turn.position, nxt.position) <= 1
        # it saw exactly the residents within the radius at the start of its step
        near = [b for b in range(4) if b != turn.agent and
                distance(by_key[b, turn.step].position, turn.position) <= town.radius]
        assert turn.seen == tuple(
            describe(town.names[b], by_key[b, turn.step].position,
                     by_key.get((b, turn.step - 1))) for b in near)
        assert len(turn.say.split(" / ")) == max(len(near), 1)  # one reply to each


def test_a_step_fn_must_return_a_move(runtime):
    prog = sglc.compile('schema D:\n    move: str\n    say: str\n\n'
                        'fn act(name: str, x: int, y: int, step: int, seen: list[str]) -> D:\n'
                        '    return D(move="fly", say="")\n')
    with pytest.raises(ValueError, match="`move` is one of stay, north"):
        simulate(prog, Town(("Ada",), ((0, 0),), size=2), 1, runtime=runtime)


def test_the_town_scatters_residents_on_distinct_cells():
    town = Town.scatter(64, seed=3)
    assert town.size == 32 and len(set(town.starts)) == 64
    assert len(set(town.names)) == 64 and resident_name(256) != resident_name(0)
    assert town.moved((0, 0), "west") == (0, 0) and town.moved((0, 0), "north") == (0, 1)
    with pytest.raises(ValueError, match="off the 4x4 grid"):
        Town(("Ada",), ((4, 0),), size=4)


def test_the_example_script_runs_a_town(runtime, capsys):
    spec = importlib.util.spec_from_file_location("metropolis_example", EXAMPLE.with_suffix(".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sim = module.main(["--agents", "3", "--steps", "2", "--schedule", "barrier"], runtime)
    assert len(sim.turns) == 6 and sim.schedule == "barrier"
    assert "barrier: 6 turns" in capsys.readouterr().out
