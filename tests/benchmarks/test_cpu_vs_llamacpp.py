"""benchmarks/cpu_vs_llamacpp.py: it skips with a message when llama-cpp-python is absent, and
the GGUF it writes holds the model's weights (q/k rows in llama.cpp's rotary order)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import make_model_dir

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import cpu_vs_llamacpp  # noqa: E402
import llamacpp_side  # noqa: E402


def test_skips_with_a_message_without_llama_cpp(monkeypatch, capsys):
    monkeypatch.setattr(llamacpp_side, "missing", lambda: ["llama-cpp-python"])
    assert cpu_vs_llamacpp.main(["--quick"]) is None
    out = capsys.readouterr().out
    assert "skipped: llama-cpp-python not installed" in out and "pip install" in out


@pytest.mark.parametrize("kind", llamacpp_side.GGUF_TYPES)
def test_the_gguf_holds_the_weights(tmp_path, kind):
    gguf = pytest.importorskip("gguf")
    hf = make_model_dir(tmp_path / "hf", "llama")  # hidden 64: q8_0 blocks of 32 fit
    path = llamacpp_side.write_gguf(tmp_path / "hf", tmp_path / f"m-{kind}.gguf", kind)
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    cfg = hf.config
    assert len(tensors) == 2 + 9 * cfg.num_hidden_layers + (not cfg.tie_word_embeddings)
    q = tensors["blk.0.attn_q.weight"]
    got = np.asarray(q.data, dtype=np.float32) if kind == "f32" else gguf.quants.dequantize(
        q.data, q.tensor_type)
    want = hf.model.layers[0].self_attn.q_proj.weight.detach()
    heads, half = cfg.num_attention_heads, want.shape[0] // cfg.num_attention_heads // 2
    # GGUF row h*2*half + 2*i + j is Hugging Face row h*2*half + j*half + i
    reordered = want.view(heads, 2, half, -1).transpose(1, 2).reshape(want.shape).numpy()
    assert got.shape == reordered.shape
    tolerance = 0 if kind == "f32" else 0.01 * np.abs(reordered).max()
    assert np.abs(got - reordered).max() <= tolerance
    assert not torch.equal(torch.from_numpy(reordered), want)  # the order did change
