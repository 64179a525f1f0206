"""The backend switch: names, frozen op tables, and the torch backend's ops."""

from __future__ import annotations

import dataclasses

import pytest

import sglc.kernels as kernels
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.rope import build_rope_cache


def test_torch_backend_is_default_and_complete():
    ops = kernels.get_ops()
    assert ops == kernels.get_ops("torch")
    assert ops.decode_attention is decode_attention
    # every op is set; the one flag says whether the ops read a quantized KV pool
    assert all(callable(getattr(ops, f.name)) or f.name == "reads_quantized_kv"
               for f in dataclasses.fields(ops))
    assert kernels.build_rope_cache is build_rope_cache


def test_unknown_backend_lists_known_names():
    with pytest.raises(ValueError, match="'cuda'.*known backends: cpu, torch, triton"):
        kernels.get_ops("cuda")


def test_check_backend_names_without_building_anything():
    for name in ("cpu", "torch", "triton"):
        kernels.check_backend(name)
    with pytest.raises(ValueError, match="'cuda'.*known backends: cpu, torch, triton"):
        kernels.check_backend("cuda")


def test_ops_table_is_frozen():
    ops = kernels.get_ops()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ops.rms_norm = None  # type: ignore[misc]
