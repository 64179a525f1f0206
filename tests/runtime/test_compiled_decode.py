"""The compiled CPU decode step (`runtime/models/compiled_decode.py`) against the per-op path
it replaces: the same greedy tokens and the same logprobs, for float and quantized weights;
and the models it does not cover keep the per-op path."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_model_dir

import sglc
from sglc.kernels.cpu_decode_attention import cpu_kernels_available

pytestmark = pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain here")

SHARED = [1, *range(5, 45, 2)]
PROMPTS = [SHARED + [50, 60], SHARED + [70], [3, 4], [1, *range(100, 130)]]


def _run(path, compiled: bool, params: dict, **engine_args):
    with sglc.Engine(path, kernel_backend="cpu", max_total_tokens=1024,
                     **engine_args) as engine:
        runner = engine.core.runner
        runner.compiled_decode = compiled
        outs = engine.generate(PROMPTS, params)
        return outs, runner


@pytest.mark.parametrize(("arch", "quantization"), [
    ("llama", None), ("llama", "int8"), ("llama", "int4"), ("qwen2", None),  # qwen2: q|k|v bias
])
def test_compiled_decode_matches_the_per_op_path(tmp_path, arch, quantization):
    make_model_dir(tmp_path, arch)
    greedy = {"max_new_tokens": 20, "temperature": 0, "ignore_eos": True}
    with_logprobs = {**greedy, "max_new_tokens": 6, "logprobs": 3}
    compiled, runner = _run(tmp_path, True, greedy, quantization=quantization)
    assert runner._compiled is not None, runner.compiled_decode_off_reason
    per_op, runner = _run(tmp_path, False, greedy, quantization=quantization)
    assert runner._compiled is None
    assert [o.token_ids for o in compiled] == [o.token_ids for o in per_op]
    # logprobs need the full logits: the compiled step's own lm_head against the model's
    got, _ = _run(tmp_path, True, with_logprobs, quantization=quantization)
    want, _ = _run(tmp_path, False, with_logprobs, quantization=quantization)
    for a, b in zip(got, want, strict=True):
        assert a.token_ids == b.token_ids
        for la, lb in zip(a.logprobs, b.logprobs, strict=True):
            assert la.token_id == lb.token_id
            assert la.logprob == pytest.approx(lb.logprob, abs=1e-4)
            assert [t for t, _ in la.top] == [t for t, _ in lb.top]


def test_sampled_and_batched_decoding_run_compiled_and_agree(tmp_path):
    """Seeded sampling (the logits come from the compiled lm_head) and a mixed batch."""
    make_model_dir(tmp_path, "llama", seed=3)
    params = [{"max_new_tokens": 12, "temperature": 0.8, "seed": 7 + i, "ignore_eos": True}
              for i in range(len(PROMPTS))]
    got, runner = _run(tmp_path, True, params)
    assert runner._compiled is not None
    want, _ = _run(tmp_path, False, params)
    assert [o.token_ids for o in got] == [o.token_ids for o in want]


@pytest.mark.parametrize(("arch", "engine_args", "reason"), [
    ("qwen3", {}, "q/k norms"),
    ("mistral", {}, "sliding windows"),
    ("llama", {"kv_cache_dtype": "int8"}, "KV pool"),
    ("llama", {"kernel_backend": "torch"}, "'cpu' kernel backend"),
])
def test_what_it_does_not_cover_keeps_the_per_op_path(tmp_path, arch, engine_args, reason):
    make_model_dir(tmp_path, arch)
    args = {"max_total_tokens": 1024, "kernel_backend": "cpu", **engine_args}
    with sglc.Engine(tmp_path, **args) as engine:
        outs = engine.generate(PROMPTS[:2], {"max_new_tokens": 4, "temperature": 0})
        runner = engine.core.runner
        assert runner._compiled is None
        assert reason in runner.compiled_decode_off_reason
        assert all(len(o.token_ids) == 4 for o in outs)


def test_unfused_or_hooked_layers_are_refused():
    from sglc.runtime.mem.kv_pool import KVPool
    from sglc.runtime.models.compiled_decode import CompiledDecode, unsupported
    from sglc.runtime.models.config import ModelConfig
    from sglc.runtime.models.llama import LlamaForCausalLM

    hf = {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 50, "max_position_embeddings": 64}
    cfg = ModelConfig.from_hf(hf)
    from sglc.kernels import get_ops

    ops = get_ops("cpu")
    model = LlamaForCausalLM(cfg, ops)
    pool = KVPool(num_layers=2, num_slots=16, num_kv_heads=2, head_dim=8,
                  dtype=torch.float32, device="cpu")
    assert unsupported(model, pool, ops.decode_attention) == "projections not fused"
    model.fuse_projections()
    compiled, why = CompiledDecode.build(model, pool, ops.decode_attention)
    assert compiled is not None and why == ""
    assert compiled.usable
    model.model.layers[1].register_forward_pre_hook(lambda module, args: None)
    assert not compiled.usable  # e.g. weight offloading streams layers in such hooks
    arena = torch.zeros(16, 2, 2, 2, 8)  # Prism: each layer's K/V a strided view of one arena
    pool.k_buffers, pool.v_buffers = [arena[:, i, 0] for i in (0, 1)], [arena[:, i, 1]
                                                                         for i in (0, 1)]
    assert "not contiguous" in unsupported(model, pool, ops.decode_attention)
