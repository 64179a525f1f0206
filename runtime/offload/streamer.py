"""Layer streaming: the weights a layer does not keep resident are loaded just before it
runs, the next layer's while it computes, and let go after it.

Two buffer sets of the streamed matrices' shapes live on the device; each decoder layer's
streamed parameters point at one of them only while the layer runs (forward pre- and
post-hooks, so the model code is unchanged). A single loader thread fills the other set
with the next layer's weights: host copies first, then reads from the mapped checkpoint
(on CUDA through a pinned staging tensor and a side stream).

    compute:  | layer 0 (set A) | layer 1 (set B) | layer 2 (set A) | ...
    loader:   | load 1 -> B     | load 2 -> A     | load 3 -> B     | ...
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

from sglc.runtime.offload.mapped import MappedCheckpoint


@dataclass(frozen=True)
class DiskParts:
    """A streamed matrix read from the checkpoint: source tensors stacked along rows (a
    fused q|k|v is q, k and v)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class StreamedParam:
    unit: str  # the parameter's name inside its layer, e.g. "mlp.down_proj.weight"
    param: nn.Parameter
    source: torch.Tensor | DiskParts  # a host copy, or where it is on disk


class LayerStreamer:
    """Hooks on `layers` that bind each one's streamed parameters to loaded buffers.
    `params[i]` are layer i's streamed parameters, the same units in every layer."""

    def __init__(self, layers: Sequence[nn.Module], params: Sequence[Sequence[StreamedParam]],
                 checkpoint: MappedCheckpoint, device: torch.device, dtype: torch.dtype,
                 drop_page_cache: bool = False) -> None:
        self.layers, self.params = list(layers), [list(p) for p in params]
        self.checkpoint, self.device, self.drop_page_cache = checkpoint, device, drop_page_cache
        shapes = {sp.unit: _shape(sp, checkpoint) for sp in self.params[0]}
        self._sets = [{u: torch.empty(s, dtype=dtype, device=device) for u, s in shapes.items()}
                      for _ in range(2)]
        self._empty = torch.empty(0, dtype=dtype, device=device)
        self._is_cuda = device.type == "cuda"
        self._stream = torch.cuda.Stream(device) if self._is_cuda else None
        self._staging = ({u: torch.empty(s, dtype=dtype).pin_memory() for u, s in shapes.items()}
                         if self._is_cuda else None)
        self._set_free = [_done_marker(device), _done_marker(device)]  # set s no longer read
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sglc-offload")
        self._pending: tuple[int, int, Future] | None = None  # (layer, set, load)
        self._next_set = 0
        self._bound: dict[int, int] = {}  # layer -> set it runs on
        self.num_loads = 0
        self._handles = []
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_pre_hook(self._before_hook(i)))
            self._handles.append(layer.register_forward_hook(self._after_hook(i)))

    @property
    def buffer_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for s in self._sets for t in s.values())

    def _before_hook(self, i: int):
        def hook(module: nn.Module, args: tuple) -> None:
            s = self._wait_for(i)
            for sp in self.params[i]:
                sp.param.data = self._sets[s][sp.unit]
            self._bound[i] = s
            following = (i + 1) % len(self.layers)  # wraps: the next step starts at layer 0
            self._pending = (following, 1 - s, self._submit(following, 1 - s))
        return hook

    def _after_hook(self, i: int):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            s = self._bound.pop(i)
            for sp in self.params[i]:
                sp.param.data = self._empty
            if self._is_cuda:
                self._set_free[s].record(torch.cuda.current_stream(self.device))
        return hook

    def _wait_for(self, i: int) -> int:
        """The buffer set holding layer i's weights, loading them now unless prefetched."""
        pending, self._pending = self._pending, None
        if pending is not None:
            layer, s, future = pending
            future.result()  # also when it is another layer: the set must be quiet
            if layer == i:
                return s
        s = self._next_set  # a step that began elsewhere (or after an error): load in place
        self._next_set = 1 - s
        self._submit(i, s).result()
        return s

    def _submit(self, i: int, s: int) -> Future:
        return self._loader.submit(self._load, i, s)

    @torch.no_grad()
    def _load(self, i: int, s: int) -> None:
        if self._is_cuda:
            self._set_free[s].synchronize()
        target = self._sets[s]
        ordered = sorted(self.params[i], key=lambda sp: isinstance(sp.source, DiskParts))
        for sp in ordered:  # host copies first, then the disk reads
            if isinstance(sp.source, torch.Tensor):
                self._copy(target[sp.unit], sp.source)
                continue
            staging = self._staging[sp.unit] if self._staging is not None else target[sp.unit]
            row = 0
            for name in sp.source.names:
                part = self.checkpoint.view(name)
                staging[row:row + part.shape[0]].copy_(part)
                row += part.shape[0]
                if self.drop_page_cache:
                    self.checkpoint.drop(name)
            if self._staging is not None:
                self._copy(target[sp.unit], staging)
        if self._stream is not None:
            self._stream.synchronize()
        self.num_loads += 1

    def _copy(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        if self._stream is None:
            dst.copy_(src)
            return
        with torch.cuda.stream(self._stream):
            dst.copy_(src, non_blocking=True)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._loader.shutdown(wait=True)


def _shape(sp: StreamedParam, checkpoint: MappedCheckpoint) -> tuple[int, ...]:
    if isinstance(sp.source, torch.Tensor):
        return tuple(sp.source.shape)
    shapes = [checkpoint.shape(n) for n in sp.source.names]
    return (sum(s[0] for s in shapes), *shapes[0][1:])


class _Ready:
    """On CPU a buffer set is free as soon as its layer's hook ran (compute is synchronous)."""

    def record(self, stream: object) -> None:
        pass

    def synchronize(self) -> None:
        pass


def _done_marker(device: torch.device) -> torch.cuda.Event | _Ready:
    if device.type != "cuda":
        return _Ready()
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event
