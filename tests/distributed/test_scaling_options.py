"""The scaling options are checked when the config is built (before any process starts),
and `--tp`/`--dp` reach them from every command that runs a model."""

from __future__ import annotations

import pytest

from sglc.cli import build_parser
from sglc.cli.common import engine_options
from sglc.runtime.core import InvalidRequest
from sglc.runtime.engine.build import engine_config


@pytest.mark.parametrize(("options", "message"), [
    ({"tp_size": 0}, "tp_size must be an integer >= 1, got 0"),
    ({"dp_size": "2"}, "dp_size must be an integer >= 1, got '2'"),
    ({"dp_router": "random"}, "unknown dp_router 'random'; choose one of cache_aware, round_robin"),
    ({"dp_cache_threshold": 1.5}, "dp_cache_threshold must be in [0, 1], got 1.5"),
    ({"tp_size": 2, "dp_size": 2}, "combining tensor and data parallelism is not supported"),
    ({"tp_size": 2, "lora_paths": {"a": "x"}}, "LoRA adapters are not sharded yet"),
    ({"tp_size": 2, "quantization": "int8"}, "quantized weights and KV need tp_size=1"),
    ({"tp_size": 2, "kv_cache_dtype": "int4"}, "quantized weights and KV need tp_size=1"),
])
def test_scaling_options_name_what_is_wrong(options, message):
    with pytest.raises(InvalidRequest) as info:
        engine_config(options)
    assert message in str(info.value)


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
