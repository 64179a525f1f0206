"""rms_norm against transformers' LlamaRMSNorm, with and without the fused residual add."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from sglc.kernels.rmsnorm import rms_norm

EPS = 1e-6


def hf_norm(hidden: int, dtype: torch.dtype, seed: int = 0) -> LlamaRMSNorm:
    gen = torch.Generator().manual_seed(seed)
    norm = LlamaRMSNorm(hidden, eps=EPS)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.1 * torch.randn(hidden, generator=gen))
    return norm.to(dtype)


def inputs(shape, dtype, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(*shape, generator=gen)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("shape", [(1, 64), (7, 128), (2, 3, 96)])
def test_matches_llama_rmsnorm_exactly(shape, dtype):
    norm = hf_norm(shape[-1], dtype)
    x = inputs(shape, dtype)
    out = rms_norm(x, norm.weight.detach(), EPS)
    assert out.dtype == dtype
    assert torch.equal(out, norm(x).detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fused_residual_matches_add_then_norm(dtype):
    norm = hf_norm(128, dtype)
    x, residual = inputs((5, 128), dtype, seed=2), inputs((5, 128), dtype, seed=3)
    out, new_residual = rms_norm(x, norm.weight.detach(), EPS, residual=residual)
    assert torch.equal(new_residual, x + residual)
    assert torch.equal(out, norm(x + residual).detach())
    assert not torch.allclose(out, norm(x).detach())


def test_normalises_to_unit_rms_and_respects_eps():
    x = inputs((4, 64), torch.float32)
    out = rms_norm(x, torch.ones(64), 0.0)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(4))
    zeros = rms_norm(torch.zeros(2, 64), torch.ones(64), EPS)
    assert torch.equal(zeros, torch.zeros(2, 64))
