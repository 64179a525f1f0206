"""The KV cache's disk tier: a layer's K and V buffers as file-backed shared mappings in
`offload_dir`. Attention reads and writes them in place; the OS pages them between RAM
and the file. The files are unlinked at once, so nothing is left behind when the engine
goes. Only plain (not quantized) CPU pools have a disk tier (`Sizes.kv_on_device_only`).
"""

from __future__ import annotations

import os
import tempfile

import torch

from sglc.runtime.mem.kv_pool import KVPool


def place_kv(pool: KVPool, kv_tiers: tuple[str, ...], directory: str) -> int:
    """Move the layers whose tier is "disk" to mapped files; returns how many moved."""
    moved = 0
    for layer, tier in enumerate(kv_tiers):
        if tier != "disk":
            continue
        pool.k_buffers[layer] = _mapped_like(pool.k_buffers[layer], directory)
        pool.v_buffers[layer] = _mapped_like(pool.v_buffers[layer], directory)
        moved += 1
    return moved


def _mapped_like(buffer: torch.Tensor, directory: str) -> torch.Tensor:
    fd, name = tempfile.mkstemp(prefix="sglc-kv-", dir=directory)
    try:
        os.close(fd)
        mapped = torch.from_file(name, shared=True, size=buffer.numel(), dtype=buffer.dtype)
    finally:
        os.unlink(name)
    return mapped.view(buffer.shape)  # zeros, as a new pool's buffers are
