"""MixAttention models (KV shared across layers, sliding and full layers mixed) against the
plain PyTorch reference in `mixattention_reference.py` on the same random weights (fp32):
logits, greedy tokens and their logprobs through the engine (mixed-length batches, prefix
cache and chunked prefill on and off), the KV pool's size, and config errors at load."""

from __future__ import annotations

import copy

import pytest
import torch
from mixattention_reference import MIX_CONFIG, MixAttentionReference

import sglc
from sglc.runtime.mem import KVPool
from sglc.runtime.models.config import ModelConfig, UnsupportedModel
from sglc.runtime.models.loader import load_model_dir

NUM_NEW = 10
# mixed lengths around the 8-token window; the last extends the one before (a 21-token
# head: the cache keeps the sliding K/V of a prompt's last window, see test_sliding_kv.py)
HEAD = list(range(40, 59)) + [200, 201]
PROMPTS = [[1, 5, 7], list(range(100, 130)), [3, 4, 9, 11, 13, 17, 19, 23, 29, 31, 37],
           HEAD, HEAD + [210, 211, 212, 213, 214]]


@pytest.fixture(scope="module")
def mix_setup(tmp_path_factory):
    ref = MixAttentionReference(MIX_CONFIG, seed=0)
    path = ref.save(tmp_path_factory.mktemp("mixattention"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: more threads only contend on a loaded machine
    try:
        expected = [ref.greedy(p, NUM_NEW) for p in PROMPTS]
    finally:
        torch.set_num_threads(threads)
    return ref, path, expected


def test_config_reads_kv_sharing_and_windows(mix_setup):
    cfg = load_model_dir(mix_setup[1], dtype="float32", load_tokenizer=False).config
    assert cfg.kv_sources == (None, None, 1, 0, 0)
    assert cfg.sliding_windows == (None, 8, 8, None, 8)
    assert cfg.num_kv_layers == 2


def test_forward_logits_match_reference(mix_setup):
    ref, path, _ = mix_setup
    model = load_model_dir(path, dtype="float32").model
    assert not hasattr(model.model.layers[2].self_attn, "k_proj")  # readers compute no K/V
    ids = [PROMPTS[1], list(range(60, 90))]
    with torch.no_grad():
        got = model.forward_dense(torch.tensor(ids))
    for row, seq in zip(got, ids, strict=True):
        torch.testing.assert_close(row, ref.logits(seq), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("radix", [True, False], ids=["radix", "no-radix"])
@pytest.mark.parametrize("chunk", [None, 8], ids=["whole-prefill", "chunked-8"])
def test_engine_greedy_and_logprobs_match_reference(mix_setup, radix, chunk):
    _, path, expected = mix_setup
    params = {"max_new_tokens": NUM_NEW, "temperature": 0, "ignore_eos": True, "logprobs": 3}
    with sglc.Engine(path, dtype="float32", max_total_tokens=1024, page_size=4,
                     disable_radix_cache=not radix, chunked_prefill_size=chunk) as engine:
        outs = engine.generate(PROMPTS[:4], params)
        # the last prompt after its head is cached (radix) and recomputed (no radix)
        outs += engine.generate(PROMPTS[4:], params)
    for out, (tokens, logprobs) in zip(outs, expected, strict=True):
        assert out.token_ids == tokens
        for got, want in zip(out.logprobs, logprobs, strict=True):
            top_ids = [tid for tid, _ in got.top]
            assert top_ids == want.topk(3).indices.tolist()
            torch.testing.assert_close(torch.tensor([lp for _, lp in got.top]),
                                       want[top_ids], atol=2e-4, rtol=1e-4)
    assert (outs[-1].usage.cached_tokens >= 16) == radix


def test_retraction_under_a_tiny_pool_keeps_outputs(mix_setup):
    _, path, expected = mix_setup
    params = {"max_new_tokens": NUM_NEW, "temperature": 0, "ignore_eos": True}
    with sglc.Engine(path, dtype="float32", max_total_tokens=48,
                     new_token_reserve_ratio=0.0) as engine:
        outs = engine.generate(PROMPTS, params)
        assert engine.stats()["num_retractions"] > 0
    assert [o.token_ids for o in outs] == [tokens for tokens, _ in expected]


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_kernel_backends_match_reference(mix_setup, backend):
    # the CPU backend runs in the tests above; Triton is interpreted on CPU (slow: one
    # prompt past the window, one extend and one decode step)
    if backend == "triton":
        pytest.importorskip("triton")
        from sglc.kernels import triton_interpreted

        if not triton_interpreted():
            pytest.skip("needs TRITON_INTERPRET=1 (set by tests/triton_env.py)")
    _, path, expected = mix_setup
    params = {"max_new_tokens": 2, "temperature": 0, "ignore_eos": True}
    with sglc.Engine(path, dtype="float32", kernel_backend=backend,
                     max_total_tokens=256) as engine:
        out = engine.generate([PROMPTS[2]], params)[0]
    assert out.token_ids == expected[2][0][:2]


def test_quantized_kv_pool_of_a_mixattention_model(mix_setup):
    with sglc.Engine(mix_setup[1], dtype="float32", kv_cache_dtype="int8",
                     max_total_tokens=256) as engine:
        pool = engine.core.runner.kv_pool
        assert len({id(b) for b in pool.k_buffers}) == 2
        assert pool.k_buffers[3] is pool.k_buffers[0]
        outs = engine.generate(PROMPTS[:2], {"max_new_tokens": 4, "temperature": 0,
                                            "ignore_eos": True})
    assert [len(o.token_ids) for o in outs] == [4, 4]


def test_kv_pool_allocates_only_owning_layers(mix_setup):
    with sglc.Engine(mix_setup[1], dtype="float32", max_total_tokens=256) as engine:
        pool = engine.core.runner.kv_pool
        assert len({id(b) for b in pool.k_buffers}) == 2
        assert pool.k_buffers[2] is pool.k_buffers[1] and pool.v_buffers[4] is pool.v_buffers[0]
        owned = sum(k.nbytes + v.nbytes for k, v in pool.owned_buffers())
    per_slot = KVPool.bytes_per_slot(num_layers=2, num_kv_heads=2, head_dim=16,
                                     dtype=torch.float32)
    assert owned == pool.num_slots * per_slot
    assert per_slot * 5 == KVPool.bytes_per_slot(num_layers=5, num_kv_heads=2, head_dim=16,
                                                 dtype=torch.float32) * 2


def _config(**changes) -> dict:
    cfg = copy.deepcopy(MIX_CONFIG)
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("changes, message", [
    ({"kv_source_layers": [None, None, 3, 0, 0]}, "kv_source_layers[2] = 3: a layer can read "
                                                  "only the KV of an earlier layer (0..1)"),
    ({"kv_source_layers": [None, None, 1, 0, 7]}, "kv_source_layers[4] = 7: there is no layer 7"),
    ({"kv_source_layers": [0, None, 1, 0, 0]}, "kv_source_layers[0] = 0: layer 0 has no earlier"),
    ({"kv_source_layers": [None, None, 1, 2, 0]}, "layer 2 reads layer 1's KV itself; name 1"),
    ({"kv_source_layers": [None, None, 1, 1, 0]}, "kv_source_layers[3] = 1: layer 3 attends "
                                                  "over full attention but layer 1 is a "
                                                  "sliding-window layer"),
    ({"kv_source_layers": [None, 1, "0", 0, 0]}, "kv_source_layers[2] is '0'"),
    ({"kv_source_layers": [None, None]}, "kv_source_layers must list one entry per layer (5"),
    ({"sliding_window": 0}, "sliding_window must be a positive number of tokens"),
    ({"sliding_window": None}, "sliding_window must be a positive number of tokens"),
    ({"layer_types": ["full_attention"] * 4 + ["chunked_attention"]},
     "layer_types[4] is 'chunked_attention'; supported: full_attention, sliding_attention"),
    ({"layer_types": ["full_attention"]}, "layer_types must list one type per layer (5"),
])
def test_bad_mixattention_config_names_the_field(changes, message):
    with pytest.raises(UnsupportedModel) as err:
        ModelConfig.from_hf(_config(**changes))
    assert message in str(err.value)


def test_bad_config_fails_at_engine_load(tmp_path):
    bad = _config(kv_source_layers=[None, None, 4, 0, 0])
    path = MixAttentionReference(MIX_CONFIG).save(tmp_path, config=bad)
    with pytest.raises(UnsupportedModel, match=r"kv_source_layers\[2\] = 4"):
        sglc.Engine(path)


def test_lora_on_a_missing_kv_projection_is_refused(tmp_path):
    from types import SimpleNamespace

    from lora_fixtures import make_adapter
    from transformers import LlamaConfig

    from sglc.runtime.lora.adapter import LoraLoadError, load_adapter

    cfg = ModelConfig.from_hf(MIX_CONFIG)
    hf = SimpleNamespace(config=LlamaConfig(**{k: v for k, v in MIX_CONFIG.items()
                                               if k != "kv_source_layers"}))
    make_adapter(tmp_path / "q", hf, ("q_proj", "v_proj"), rank=2, alpha=4, seed=0, layers=(0,))
    make_adapter(tmp_path / "kv", hf, ("q_proj", "v_proj"), rank=2, alpha=4, seed=0,
                 layers=(2,))
    assert load_adapter("q", tmp_path / "q", cfg, torch.float32).max_rank == 2
    with pytest.raises(LoraLoadError, match=r"layer 2 v_proj: layer 2 reads layer 1's KV"):
        load_adapter("kv", tmp_path / "kv", cfg, torch.float32)
