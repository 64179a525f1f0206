"""Offloading (FlexGen): the linear program against a brute-force search of the same cost
model, budgets refused before any weight is read, and an engine whose layers stream from
host memory and the mapped checkpoint giving the fully resident engine's greedy tokens."""

from __future__ import annotations

import itertools
import json

import pytest
from model_fixtures import make_model_dir

from sglc.runtime.config import EngineConfig, parse_bytes
from sglc.runtime.core import InvalidRequest
from sglc.runtime.engine import Engine
from sglc.runtime.offload import Budgets, Costs, OffloadError, Sizes, solve_policy
from sglc.runtime.offload.policy import layer_time_s

MIB = 1 << 20
PROMPTS = [list(range(3, 40)), [1, 5, 7, 9, 11, 13]]
GREEDY = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}
# fixed costs keep the placement independent of this machine's load
COSTS = {"compute_s": 1e-4, "host_bytes_per_s": 1e10, "disk_bytes_per_s": 1e9}
SMALL = dict(max_total_tokens=1024, chunked_prefill_size=64, max_running_requests=8)


def _grid_best(sizes: Sizes, budgets: Budgets, costs: Costs, steps: int = 20) -> float:
    """The cost model's best layer time over a grid of placements that fit (the reference)."""
    n, w, k = sizes.num_layers, sizes.layer_bytes, sizes.kv_layer_bytes
    grid = [i / steps for i in range(steps + 1)]
    best = float("inf")
    for wg, wc, cg, cc in itertools.product(grid, repeat=4):
        wd, cd = 1 - wg - wc, 1 - cg - cc
        if wd < -1e-9 or cd < -1e-9:
            continue
        device = (sizes.fixed_bytes + sizes.activation_bytes + n * w * wg + 2 * w * (1 - wg)
                  + n * k * cg)
        if device > budgets.device or n * (w * wc + k * cc) > budgets.host \
                or n * k * cd > budgets.disk:
            continue
        best = min(best, layer_time_s(sizes, costs, (wg, wc, wd), (cg, cc, cd)))
    return best


@pytest.mark.parametrize(("device_mib", "host_mib", "costs"), [
    (400, 0, Costs(2e-3, 8e9, 1e9)),  # everything fits the device
    (60, 100, Costs(2e-3, 8e9, 1e9)),  # the weights stream from host memory
    (60, 20, Costs(2e-3, 8e9, 1e9)),  # host and disk
    (60, 0, Costs(5e-3, 8e9, 2e8)),  # compute-heavy: KV or weights to disk, the LP trades
    (45, 10, Costs(1e-4, 2e9, 5e8)),  # transfer-bound
])
def test_the_lp_finds_the_cost_models_optimum(device_mib, host_mib, costs):
    sizes = Sizes(num_layers=16, layer_bytes=8 * MIB, kv_layer_bytes=2 * MIB,
                  fixed_bytes=10 * MIB, activation_bytes=2 * MIB)
    budgets = Budgets(device_mib * MIB, host_mib * MIB, 1 << 40)
    policy = solve_policy(sizes, budgets, costs)
    assert sum(policy.weights) == pytest.approx(1) and sum(policy.kv) == pytest.approx(1)
    # the LP's optimum is the model's: at most the grid's best, and the grid gets close
    assert policy.layer_time_s == pytest.approx(layer_time_s(sizes, costs, policy.weights,
                                                             policy.kv))
    grid = _grid_best(sizes, budgets, costs)
    assert policy.layer_time_s <= grid * (1 + 1e-6)
    assert policy.layer_time_s == pytest.approx(grid, rel=0.15)
    n, w, k = sizes.num_layers, sizes.layer_bytes, sizes.kv_layer_bytes
    device = (sizes.fixed_bytes + sizes.activation_bytes + n * w * policy.weights[0]
              + 2 * w * (1 - policy.weights[0]) + n * k * policy.kv[0])
    assert device <= budgets.device * (1 + 1e-6)
    if device_mib == 400:
        assert policy.weights[0] == pytest.approx(1) and policy.compute_bound


def test_the_lp_prefers_host_memory_to_disk():
    sizes = Sizes(16, 8 * MIB, 1 * MIB, 10 * MIB, 2 * MIB)
    policy = solve_policy(sizes, Budgets(60 * MIB, 1 << 30, 1 << 40), Costs(1e-2, 8e9, 1e9))
    assert policy.weights[2] == pytest.approx(0, abs=1e-6) and policy.weights[1] > 0.5


def test_sizes_are_parsed_with_their_units():
    assert parse_bytes("x", "2GiB") == 2 << 30
    assert parse_bytes("x", "512MB") == 512 * 10**6
    assert parse_bytes("x", "1.5G") == 3 << 29
    assert parse_bytes("x", 1234) == 1234
    assert EngineConfig(max_device_memory="64 MiB").max_device_memory == 64 << 20
    for bad in ("2 parsecs", "GiB", 0, True, 1.5):
        with pytest.raises(InvalidRequest, match="max_host_memory"):
            EngineConfig(max_host_memory=bad)


def test_options_that_cannot_combine_are_refused():
    with pytest.raises(InvalidRequest, match="offload_costs must give compute_s"):
        EngineConfig(max_device_memory="1GiB", offload_costs={"compute_s": 1})
    with pytest.raises(InvalidRequest, match="quantization='int8'"):
        EngineConfig(max_device_memory="1GiB", quantization="int8")
    with pytest.raises(InvalidRequest, match="tp_size=2"):
        EngineConfig(max_device_memory="1GiB", tp_size=2)


@pytest.fixture(scope="module")
def config_only_dir(tmp_path_factory, llama4_dir):
    """The 4-layer model's config.json and no weights: a plan that loads anything fails."""
    path = tmp_path_factory.mktemp("config-only")
    (path / "config.json").write_text((llama4_dir / "config.json").read_text())
    return path


def test_a_device_budget_below_one_layer_is_refused_before_loading(config_only_dir):
    with pytest.raises(OffloadError, match=r"max_device_memory=100\.0 KiB is below .* two "
                                           r"layers' streaming buffers .* at least \d+ bytes"):
        Engine(config_only_dir, max_device_memory="100KiB", offload_costs=COSTS, **SMALL)


def test_kv_beyond_every_tier_is_refused_before_loading(config_only_dir, tmp_path):
    with pytest.raises(OffloadError, match=r"KV cache .* exceeds every tier .*max_host_memory.*"
                                           r"lower max_total_tokens"):
        Engine(config_only_dir, max_device_memory="2MiB", max_host_memory="1MiB",
               offload_costs=COSTS, offload_dir=str(tmp_path), **{**SMALL,
               "max_total_tokens": 1 << 40})


@pytest.fixture(scope="module")
def llama4_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama4")
    make_model_dir(path, "llama", num_hidden_layers=4)
    return path


@pytest.fixture(scope="module")
def resident_tokens(llama4_dir):
    with Engine(llama4_dir, **SMALL) as engine:
        return [o.token_ids for o in engine.generate(PROMPTS, GREEDY)]


@pytest.mark.parametrize(("device", "host", "extra"), [
    ("1400KiB", None, {}),  # matrices from the mapped checkpoint, KV layers in files
    ("900KiB", "4MiB", {}),  # from host memory, the KV cache in RAM
    ("1400KiB", None, {"offload_drop_page_cache": True}),
])
def test_streamed_layers_give_the_resident_models_tokens(llama4_dir, resident_tokens, device,
                                                         host, extra):
    with Engine(llama4_dir, max_device_memory=device, max_host_memory=host,
                offload_costs=COSTS, **SMALL, **extra) as engine:
        placement = engine.offloaded.plan.placement
        assert engine.offloaded.streamer is not None
        if host is None:
            assert placement.units_on("disk") and "disk" in placement.kv_tiers
        else:
            assert placement.units_on("host") and not placement.units_on("disk")
            assert "disk" not in placement.kv_tiers
        assert [o.token_ids for o in engine.generate(PROMPTS, GREEDY)] == resident_tokens
        # every streamed layer was loaded once per forward pass (and the next one ahead)
        assert engine.offloaded.streamer.num_loads >= 4 * GREEDY["max_new_tokens"]
        assert "weights" in engine.offloaded.describe()


def test_tied_embeddings_and_qkv_bias_stream_too(tmp_path):
    make_model_dir(tmp_path, "qwen2", num_hidden_layers=3)
    with Engine(tmp_path, **SMALL) as engine:
        want = [o.token_ids for o in engine.generate(PROMPTS, GREEDY)]
    with Engine(tmp_path, max_device_memory="1200KiB", offload_costs=COSTS, **SMALL) as engine:
        assert engine.offloaded.plan.placement.streams
        assert [o.token_ids for o in engine.generate(PROMPTS, GREEDY)] == want


def test_a_roomy_budget_keeps_everything_resident(llama4_dir, resident_tokens):
    with Engine(llama4_dir, max_device_memory="1GiB", offload_costs=COSTS, **SMALL) as engine:
        assert engine.offloaded.streamer is None
        assert set(engine.offloaded.plan.placement.kv_tiers) == {"device"}
        assert [o.token_ids for o in engine.generate(PROMPTS, GREEDY)] == resident_tokens


def test_the_probe_measures_costs_when_none_are_given(llama4_dir):
    with Engine(llama4_dir, max_device_memory="1400KiB", **SMALL) as engine:
        costs = engine.offloaded.plan.costs
        assert costs.compute_s > 0 and costs.host_bytes_per_s > 0 and costs.disk_bytes_per_s > 0
        assert json.dumps(engine.offloaded.plan.placement.kv_tiers)


def test_the_cli_passes_the_budgets_and_words_a_budget_too_small(llama4_dir, capsys):
    from sglc.cli import build_parser, main
    from sglc.cli.common import engine_options

    args = build_parser().parse_args(["generate", "--max-device-memory", "1GiB",
                                      "--max-host-memory", "512MiB", "--offload-dir", "/tmp",
                                      "hi"])
    assert {k: engine_options(args)[k] for k in ("max_device_memory", "max_host_memory",
                                                 "offload_dir")} == {
        "max_device_memory": "1GiB", "max_host_memory": "512MiB", "offload_dir": "/tmp"}
    assert main(["generate", "--model", str(llama4_dir), "--max-device-memory", "10KiB",
                 "--max-total-tokens", "1024", "hi"]) != 0
    err = capsys.readouterr().err
    assert "max_device_memory=10.0 KiB is below" in err and "Traceback" not in err
