"""Kernel tests run the Triton kernels on CPU through Triton's interpreter by default.

``triton.jit`` picks the interpreter when a kernel is decorated, so the variable is set here,
before any test module imports ``sglc.kernels.triton_*``. Run with ``TRITON_INTERPRET=0`` on
a CUDA machine to test the compiled kernels instead (the `device` fixture follows).
"""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from sglc.kernels import KernelOps, torch_ops  # noqa: E402


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where the Triton kernels' tensors live: CPU under the interpreter, else CUDA."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET is off and no CUDA device is available")
    return torch.device("cuda")


@pytest.fixture
def triton_ops() -> KernelOps:
    """The torch op table with the attention and KV-store ops swapped for Triton kernels."""
    from sglc.kernels.triton_decode_attention import triton_decode_attention, triton_plan_decode
    from sglc.kernels.triton_extend_attention import triton_extend_attention, triton_plan_extend
    from sglc.kernels.triton_kv_store import triton_store_kv

    return dataclasses.replace(
        torch_ops(),
        store_kv=triton_store_kv,
        extend_attention=triton_extend_attention,
        decode_attention=triton_decode_attention,
        plan_extend=triton_plan_extend,
        plan_decode=triton_plan_decode,
    )
