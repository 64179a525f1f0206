"""Multi-LoRA serving against transformers with each adapter merged into the weights (greedy,
fp32): mixed batches of adapters and the base model, adapters paged through a small pool,
the prefix cache kept apart per adapter, and bad adapters or names refused clearly."""

from __future__ import annotations

import json

import pytest
from lora_fixtures import ATTENTION, MLP, hf_greedy, make_adapter, merged
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import InvalidRequest
from sglc.runtime.lora.adapter import LoraLoadError

PROMPTS = [[1, 5, 7, 9, 11, 13], [1, 20, 30, 40, 50, 60, 70, 80, 90], [3, 4, 5],
           [1, 5, 7, 9, 11, 13], [8, 9, 10, 11]]
NUM = 12
GREEDY = {"max_new_tokens": NUM, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny Llama and three adapters: q/v rank 4; all seven modules rank 8; o/down rank 2
    with rsLoRA on the first layer only."""
    root = tmp_path_factory.mktemp("lora")
    hf = make_model_dir(root / "model", "llama")
    make_adapter(root / "qv", hf, ("q_proj", "v_proj"), rank=4, alpha=8, seed=1)
    make_adapter(root / "all", hf, ATTENTION + MLP, rank=8, alpha=16, seed=2)
    make_adapter(root / "od", hf, ("o_proj", "down_proj"), rank=2, alpha=4, seed=3,
                 rslora=True, layers=(0,))
    names = ("qv", "all", "od")
    refs = {None: hf, **{n: merged(hf, root / n) for n in names}}
    return root, {n: str(root / n) for n in names}, refs


def expected(refs, prompt, lora):
    return hf_greedy(refs[lora], prompt, NUM)


def test_mixed_batch_matches_merged_weights(setup):
    root, paths, refs = setup
    loras = [None, "qv", "all", "od", "qv"]
    with sglc.Engine(root / "model", max_total_tokens=4096, lora_paths=paths,
                     max_loras_per_batch=3) as engine:
        outs = engine.generate(PROMPTS, [{**GREEDY, "lora": n} for n in loras])
        stats = engine.stats()
    for prompt, lora, out in zip(PROMPTS, loras, outs, strict=True):
        assert out.token_ids == expected(refs, prompt, lora), lora
    assert stats["num_extend_batches"] == 1  # one batch mixed all of them
    # the adapters change the outputs: a test that could pass with LoRA ignored is no test
    assert outs[1].token_ids != hf_greedy(refs[None], PROMPTS[1], NUM)


def test_more_adapters_than_slots_are_paged_in_lru(setup):
    root, paths, refs = setup
    loras = ["qv", "all", "od", "all", None]
    with sglc.Engine(root / "model", max_total_tokens=4096, lora_paths=paths,
                     max_loras_per_batch=1) as engine:
        outs = engine.generate(PROMPTS, [{**GREEDY, "lora": n} for n in loras])
        pool = engine.core.runner.lora_pool
        assert pool.num_slots == 1 and pool.num_evictions >= 2
        assert pool.num_loads == pool.num_evictions + 1
    for prompt, lora, out in zip(PROMPTS, loras, outs, strict=True):
        assert out.token_ids == expected(refs, prompt, lora), lora


def test_prefix_cache_is_kept_apart_per_adapter(setup):
    root, paths, refs = setup
    prompt = list(range(3, 40))
    with sglc.Engine(root / "model", max_total_tokens=4096, lora_paths=paths) as engine:
        first = engine.generate([prompt], {**GREEDY, "lora": "all"})[0]
        base = engine.generate([prompt], GREEDY)[0]
        again = engine.generate([prompt], {**GREEDY, "lora": "all"})[0]
    assert base.usage.cached_tokens == 0  # the adapter's KV is not the base model's
    assert again.usage.cached_tokens > 0
    assert first.token_ids == again.token_ids == expected(refs, prompt, "all")
    assert base.token_ids == expected(refs, prompt, None)


def test_unknown_adapter_is_refused(setup):
    root, paths, _ = setup
    with sglc.Engine(root / "model", max_total_tokens=1024, lora_paths=paths) as engine:
        with pytest.raises(InvalidRequest, match="unknown LoRA adapter 'nope': this engine "
                                                 "serves 'all', 'od', 'qv'"):
            engine.generate([PROMPTS[0]], {"lora": "nope"})
        assert engine.generate([PROMPTS[0]], {**GREEDY, "lora": "qv"})[0].token_ids
    with sglc.Engine(root / "model", max_total_tokens=1024) as engine:
        with pytest.raises(InvalidRequest, match="serves none"):
            engine.generate([PROMPTS[0]], {"lora": "qv"})


def test_bad_adapters_fail_at_start_naming_the_problem(setup, tmp_path):
    root, paths, _ = setup
    bad = tmp_path / "bad"
    make_adapter(bad, setup[2][None], ("q_proj",), rank=4, alpha=8, seed=4)
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(LoraLoadError, match=r"LoRA adapter 'x' .*use_dora=True"):
        sglc.Engine(root / "model", lora_paths={"x": str(bad)})
    with pytest.raises(LoraLoadError, match="no adapter_config.json"):
        sglc.Engine(root / "model", lora_paths={"x": str(tmp_path)})
    # an adapter made for another model's shapes
    other = make_model_dir(tmp_path / "wide", "llama", hidden_size=96)
    make_adapter(tmp_path / "wide-lora", other, ("k_proj",), rank=4, alpha=8, seed=5)
    with pytest.raises(LoraLoadError, match=r"layer 0 k_proj has A \(4, 96\).*A \[r, 64\]"):
        sglc.Engine(root / "model", lora_paths={"w": str(tmp_path / "wide-lora")})


SGL = '''
fn f() -> list[str]:
    user "Say something."
    assistant:
        "A: " gen base(max_tokens=6, ignore_eos=True)
    assistant:
        "B: " gen tuned(adapter="all", max_tokens=6, ignore_eos=True)
    return [base, tuned]
'''


def test_sgl_gen_with_an_adapter_runs_end_to_end(setup):
    from sglc.runtime.backends import Runtime
    from sglc.runtime.executor import Trace

    root, paths, _ = setup
    with sglc.Engine(root / "model", max_total_tokens=4096, lora_paths=paths) as engine:
        trace = Trace()
        base, tuned = sglc.compile(SGL, "lora.sgl").f(runtime=Runtime(engine=engine),
                                                      trace=trace)
        calls = trace.to_json()["calls"]
        # each gen equals the engine's own generation of its prompt, with its adapter
        for call, lora, text in zip(calls, [None, "all"], [base, tuned], strict=True):
            params = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True, "lora": lora}
            assert text == engine.generate([call["prompt"]], params)[0].text
        assert [c["params"]["lora"] for c in calls] == [None, "all"]
        untuned = engine.generate([calls[1]["prompt"]], {"max_new_tokens": 6, "temperature": 0,
                                                         "ignore_eos": True})[0].text
        assert untuned != tuned


def test_triton_lora_ops_in_the_model_match_the_reference(setup):
    # the Triton shrink/expand (interpreted on CPU) inside the model, two adapters in a batch
    import dataclasses

    import torch

    from sglc.kernels import torch_ops, triton_interpreted
    from sglc.runtime.lora.adapter import load_adapters
    from sglc.runtime.lora.pool import LoraPool
    from sglc.runtime.models.attention import DenseCausalAttention
    from sglc.runtime.models.loader import load_model_dir
    from sglc.runtime.models.lora import LoraBatch, LoraSegments

    if not triton_interpreted():
        pytest.skip("needs TRITON_INTERPRET=1 (set by the tests' triton_env plugin)")
    from sglc.kernels.triton_lora import triton_lora_expand, triton_lora_shrink

    root, paths, _ = setup
    loaded = load_model_dir(root / "model", dtype="float32", load_tokenizer=False)
    adapters = load_adapters(paths, loaded.config, torch.float32)
    pool = LoraPool(loaded.config, adapters, 2, None, torch.float32, torch.device("cpu"))
    slots = pool.prepare(["all", "od"])
    ids = torch.tensor([PROMPTS[1][:8], PROMPTS[0] + [3, 4]])
    positions = torch.arange(8).repeat(2)
    rows = LoraSegments.of([slots["all"], slots["od"]], [8, 8], torch.device("cpu"))
    triton = dataclasses.replace(torch_ops(), lora_shrink=triton_lora_shrink,
                                 lora_expand=triton_lora_expand)
    with torch.no_grad():
        hidden = {name: loaded.model(ids.reshape(-1), positions, DenseCausalAttention(2, 8),
                                     None, LoraBatch(ops, pool.weights, rows, None))
                  for name, ops in (("reference", torch_ops()), ("triton", triton))}
        base = loaded.model(ids.reshape(-1), positions, DenseCausalAttention(2, 8))
    torch.testing.assert_close(hidden["triton"], hidden["reference"], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(hidden["reference"], base)
