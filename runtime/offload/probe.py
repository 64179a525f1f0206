"""A short start-up probe of FlexGen's cost-model inputs on this machine: one layer's
decode compute time, the host-to-device copy bandwidth and the disk read bandwidth.

Each figure is the fastest of a few repeats (other processes only ever add time). The disk read is of the model's own largest checkpoint tensor through its mapping, after
its pages are evicted from the page cache (posix_fadvise DONTNEED), so it reads the
storage, whatever that is (a RAM-backed filesystem measures as fast as RAM).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sglc.runtime.models.loader import weight_files
from sglc.runtime.offload.mapped import MappedCheckpoint
from sglc.runtime.offload.policy import Costs

_MAX_PROBE_BYTES = 64 << 20
_REPEATS = 10


def measure_costs(layer_shapes: list[tuple[int, ...]], kv_layer_bytes: int, dtype: torch.dtype,
                  device: torch.device, path: Path, batch: int) -> Costs:
    """Costs of one decoder layer of a `batch`-row decode step: its matrices' products
    plus reading its KV cache at host bandwidth (attention), and the two bandwidths."""
    probe_bytes = min(_MAX_PROBE_BYTES, max(sum(_numel(s) for s in layer_shapes), 1 << 20)
                      * torch.empty((), dtype=dtype).element_size())
    host = _host_bandwidth(dtype, device, probe_bytes)
    weights = [torch.randn(s, dtype=dtype, device=device) for s in layer_shapes]
    xs = [torch.randn(batch, s[1], dtype=dtype, device=device) for s in layer_shapes]

    def layer() -> None:
        for x, w in zip(xs, weights, strict=True):
            torch.nn.functional.linear(x, w)

    compute = _in_thread(lambda: _timed(layer, device)) + kv_layer_bytes / host
    return Costs(compute, host, _disk_bandwidth(path, dtype, device, probe_bytes))


def _in_thread(fn: Callable[[], float]) -> float:
    """`fn()` on a fresh thread, as the engine's loop thread runs the model: torch's CPU
    thread pool behaves differently on the main thread (much slower on a loaded machine)."""
    box: list[float] = []
    worker = threading.Thread(target=lambda: box.append(fn()), name="sglc-offload-probe")
    worker.start()
    worker.join()
    return box[0]


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _host_bandwidth(dtype: torch.dtype, device: torch.device, num_bytes: int) -> float:
    """Copy bandwidth over `num_bytes` (at most one layer's: the probe stays in budget)."""
    n = num_bytes // torch.empty((), dtype=dtype).element_size()
    src = torch.ones(n, dtype=dtype)
    if device.type == "cuda":
        src = src.pin_memory()
    dst = torch.empty(n, dtype=dtype, device=device)
    return n * src.element_size() / _timed(lambda: dst.copy_(src), device)


def _disk_bandwidth(path: Path, dtype: torch.dtype, device: torch.device,
                    num_bytes: int) -> float:
    checkpoint = MappedCheckpoint(weight_files(path))
    try:
        name = max(checkpoint.names(), key=lambda n: checkpoint.view(n).nbytes)
        view = checkpoint.view(name).reshape(-1)
        view = view[: max(1, num_bytes // view.element_size())]
        dst = torch.empty(view.shape, dtype=dtype, device=device)
        times = []
        for _ in range(3):
            checkpoint.drop(name)
            start = time.perf_counter()
            dst.copy_(view)
            _sync(device)
            times.append(time.perf_counter() - start)
        return view.nbytes / min(times)
    finally:
        checkpoint.close()


def _timed(fn, device: torch.device) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(_REPEATS):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return max(min(times), 1e-9)  # the fastest: what other processes add is not the cost


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
