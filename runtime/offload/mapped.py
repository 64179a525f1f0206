"""The disk tier: tensors read straight from memory-mapped safetensors files.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the data. Each file is mapped once; a tensor is
a zero-copy view of its bytes, which the OS reads from disk (or its page cache) when the
loader copies them into a compute buffer. `drop` evicts a tensor's pages from the page
cache again (madvise + posix_fadvise DONTNEED), so that a RAM budget holds for the disk
tier too when `offload_drop_page_cache` asks for it.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from sglc.runtime.models.loader import ModelLoadError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_PAGE = mmap.PAGESIZE


@dataclass(frozen=True)
class _Entry:
    file: int  # index into MappedCheckpoint._maps
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int


class MappedCheckpoint:
    """Every tensor of a model's safetensors files, mapped read-only (copy-on-write, never
    written), by name."""

    def __init__(self, files: list[Path]) -> None:
        self._maps: list[mmap.mmap] = []
        self._fds: list[int] = []
        self._entries: dict[str, _Entry] = {}
        for path in files:
            self._open(path)

    def _open(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            with open(path, "rb") as f:
                (header_len,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(header_len))
            mapped = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError, struct.error) as exc:
            raise ModelLoadError(f"cannot map safetensors file {path}: {exc}") from None
        index = len(self._maps)
        self._maps.append(mapped)
        self._fds.append(fd)
        base = 8 + header_len
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in _DTYPES:
                raise ModelLoadError(f"{path}: tensor {name} has dtype {info['dtype']}, which "
                                     "the offloading loader does not read")
            start, end = info["data_offsets"]
            self._entries[name] = _Entry(index, _DTYPES[info["dtype"]], tuple(info["shape"]),
                                         base + start, base + end)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name].shape

    def view(self, name: str) -> torch.Tensor:
        """A zero-copy tensor over the mapped bytes of `name` (reading it reads the file)."""
        e = self._entries[name]
        count = (e.end - e.start) // torch.empty((), dtype=e.dtype).itemsize
        if count == 0:
            return torch.empty(e.shape, dtype=e.dtype)
        flat = torch.frombuffer(self._maps[e.file], dtype=e.dtype, count=count, offset=e.start)
        return flat.view(e.shape)

    def drop(self, name: str) -> None:
        """Evict `name`'s pages from this process's mapping and from the page cache."""
        e = self._entries[name]
        start = e.start - e.start % _PAGE
        length = e.end - start
        self._maps[e.file].madvise(mmap.MADV_DONTNEED, start, length)
        os.posix_fadvise(self._fds[e.file], start, length, os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
