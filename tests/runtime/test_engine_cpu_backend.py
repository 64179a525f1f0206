"""End to end: the engine gives the same greedy tokens with the compiled CPU decode attention
as with the PyTorch reference ops."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_model_dir

import sglc
from sglc.kernels.cpu_decode_attention import cpu_kernels_available

pytestmark = pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain here")


@pytest.mark.parametrize("arch", ["llama", "mistral"])  # mistral: a 16-token window
def test_engine_gives_the_same_tokens_as_the_torch_backend(tmp_path, arch):
    make_model_dir(tmp_path, arch)
    shared = [1, *range(5, 45, 2)]
    prompts = [shared + [50, 60], shared + [70], [3, 4], [1, *range(100, 130)]]
    greedy = {"max_new_tokens": 24, "temperature": 0, "ignore_eos": True}
    outs = {}
    for backend in ("torch", "cpu"):
        with sglc.Engine(tmp_path, attention_backend=backend, max_total_tokens=1024) as engine:
            outs[backend] = engine.generate(prompts, greedy)
    assert [o.token_ids for o in outs["cpu"]] == [o.token_ids for o in outs["torch"]]


def test_cpu_backend_on_another_device_is_a_clear_error(tmp_path):
    from sglc.runtime.core import InvalidRequest
    from sglc.runtime.engine.build import kernel_ops

    with pytest.raises(InvalidRequest, match="kernel backend 'cpu' runs on CPU tensors"):
        kernel_ops("cpu", torch.device("meta"))
