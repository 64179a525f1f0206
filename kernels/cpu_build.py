"""Build the compiled CPU kernels: one C++ extension, compiled on first use.

The sources are `cpu_sources` and `cpu_sources_quant` (wrapped by `cpu_decode_attention`,
`cpu_elementwise` and `weight_quant`);
this module compiles them together with ``torch.utils.cpp_extension.load_inline`` (needs a
C++ compiler and ninja; once, then cached by torch under ``~/.cache/torch_extensions``). :func:`cpu_kernels_available` says whether it built.

Builds from several processes are serialized by an advisory file lock (``flock``) next to
the build folder. The kernel releases it when its holder dies, unlike torch's own ``lock``
file: a build killed part-way (Ctrl-C during the first engine start) leaves that file behind,
and every later build would wait on it forever. Whoever holds the ``flock`` knows no other
build is running, so a torch ``lock`` file it finds is stale and is removed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from sglc.kernels.cpu_sources import DECODE_ATTENTION, ELEMENTWISE
from sglc.kernels.cpu_sources_quant import QUANT

try:
    import fcntl
except ImportError:  # not POSIX: no flock
    fcntl = None

log = logging.getLogger(__name__)

_EXTENSION = "sglc_cpu_kernels_v5"  # torch rebuilds it when the sources change
_FUNCTIONS = ["decode_attention", "decode_attention_quant", "quant_linear", "quantize_store",
              "rms_norm", "silu_and_mul", "rope"]
_BUILD_LOCK = threading.Lock()  # engines on several threads may ask for it at once


_module: ModuleType | None = None


def extension() -> ModuleType:
    """The compiled module (built now if this process has not built or loaded it yet).
    Called by every kernel wrapper: after the first build it is one global read."""
    global _module
    if _module is None:
        with _BUILD_LOCK:
            if _module is None:
                _module = _build()
    return _module


def build_directory() -> Path:
    """Where torch builds and caches the extension (torch's own choice of folder)."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(_EXTENSION, verbose=False))


@contextlib.contextmanager
def exclusive_build(folder: Path) -> Iterator[None]:
    """Hold the inter-process build lock of `folder`, and clear a stale torch ``lock`` file
    (without ``fcntl``, torch's lock file alone guards the build)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.flock", "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
            stale = folder / "lock"
            if stale.exists():
                log.warning("removing %s, left by a build that was killed", stale)
                stale.unlink(missing_ok=True)
        yield


def _build() -> ModuleType:
    from torch.utils.cpp_extension import load_inline

    folder = build_directory()
    with exclusive_build(folder):
        return load_inline(
            name=_EXTENSION, cpp_sources=[DECODE_ATTENTION, QUANT, ELEMENTWISE],
            functions=_FUNCTIONS, build_directory=str(folder),
            # -fopenmp: ATen's parallel_for is OpenMP pragmas in its headers; without the flag
            # the work items run one after another on one core
            extra_cflags=["-O3", "-march=native", "-fopenmp", "-ffast-math"],
            extra_ldflags=["-fopenmp"], verbose=False,
        )


@functools.cache
def cpu_kernels_available() -> bool:
    """Whether the compiled CPU kernels are built (building them now, once, if needed)."""
    if shutil.which("c++") is None and shutil.which("g++") is None:
        log.info("no C++ compiler: the CPU kernels fall back to the PyTorch reference")
        return False
    try:
        extension()
    except Exception as exc:  # noqa: BLE001  (any build failure means: use the reference)
        log.warning("CPU kernels did not build (%s); using the PyTorch reference", exc)
        return False
    return True
