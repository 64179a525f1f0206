"""`--tp` and `--dp` reach the engine's options from every command that runs a model."""

from __future__ import annotations

import pytest

from sglc.cli import build_parser
from sglc.cli.common import engine_options


@pytest.mark.parametrize("command", [["serve"], ["generate", "hi"], ["run", "x.sgl"]])
def test_scaling_flags_become_engine_options(command):
    args = build_parser().parse_args([*command, "--tp", "2", "--dp", "1", "--dp-router",
                                      "round_robin", "--dp-balance-threshold", "3"])
    options = engine_options(args)
    assert options["tp_size"] == 2 and options["dp_size"] == 1
    assert options["dp_router"] == "round_robin" and options["dp_balance_threshold"] == 3


def test_unset_scaling_flags_leave_the_engine_defaults():
    options = engine_options(build_parser().parse_args(["serve"]))
    assert not {"tp_size", "dp_size", "dp_router"} & set(options)
