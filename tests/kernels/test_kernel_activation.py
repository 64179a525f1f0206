"""silu_and_mul against the gated-MLP formula written out."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.activation import silu_and_mul


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("num_tokens, intermediate", [(1, 8), (6, 96)])
def test_silu_and_mul(num_tokens, intermediate, dtype):
    gen = torch.Generator().manual_seed(0)
    x = (4 * torch.randn(num_tokens, 2 * intermediate, generator=gen)).to(dtype)
    gate, up = x[:, :intermediate].double(), x[:, intermediate:].double()
    expected = gate * torch.sigmoid(gate) * up
    out = silu_and_mul(x)
    assert out.shape == (num_tokens, intermediate) and out.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)
