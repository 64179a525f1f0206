"""End to end: the engine gives the same greedy tokens with the Triton kernels (interpreted on
CPU) as with the PyTorch reference ops, over a plain and a quantized KV cache."""

from __future__ import annotations

import os

# NOTE: before the Triton kernel modules are first imported (the backend imports them lazily)
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from model_fixtures import make_model_dir  # noqa: E402

import sglc  # noqa: E402
from sglc.runtime.core import InvalidRequest  # noqa: E402

SHARED = [1, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41]
# the second prompt extends the first: with mistral's window, a cached prefix is reused only
# where the sliding K/V of the window before its end is kept (a prompt's last window)
PROMPTS = [SHARED + [50, 60], SHARED + [50, 60, 70], [3, 4], [1, *range(100, 130)]]
GREEDY = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}


@pytest.mark.parametrize("arch", ["llama", "mistral"])  # mistral: a 16-token window
def test_triton_backend_matches_torch(tmp_path, arch):
    make_model_dir(tmp_path, arch)
    outs = {}
    for backend in ("torch", "triton"):
        with sglc.Engine(tmp_path, attention_backend=backend, max_total_tokens=1024) as engine:
            first = engine.generate(PROMPTS[:1], GREEDY)  # then the rest extend a cached prefix
            outs[backend] = first + engine.generate(PROMPTS[1:], GREEDY)
    assert [o.token_ids for o in outs["triton"]] == [o.token_ids for o in outs["torch"]]
    assert outs["triton"][1].usage.cached_tokens > 0


def test_triton_backend_reads_a_quantized_cache_as_torch_does(tmp_path):
    # int4 (packed codes); int8 and the other shapes are covered per kernel in tests/kernels
    make_model_dir(tmp_path, "llama")
    outs, scores = {}, {}
    for backend in ("torch", "triton"):
        with sglc.Engine(tmp_path, attention_backend=backend, max_total_tokens=1024,
                         kv_cache_dtype="int4") as engine:
            first = engine.generate(PROMPTS[:1], GREEDY)
            outs[backend] = first + engine.generate(PROMPTS[1:3], GREEDY)
            scores[backend] = engine.score(PROMPTS[3], [list(range(40, 46))])[0].logprob
    assert [o.token_ids for o in outs["triton"]] == [o.token_ids for o in outs["torch"]]
    assert outs["triton"][1].usage.cached_tokens > 0
    assert scores["triton"] == pytest.approx(scores["torch"], rel=1e-4)


def test_unknown_backend_is_a_clear_error(tmp_path):
    make_model_dir(tmp_path, "llama")
    with pytest.raises(InvalidRequest, match="unknown kernel backend 'cuda-graph'"):
        sglc.Engine(tmp_path, attention_backend="cuda-graph")
