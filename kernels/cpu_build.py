"""Build the compiled CPU kernels: one C++ extension, compiled on first use.

The sources are `cpu_sources`, `cpu_sources_quant`, `cpu_sources_weight_quant` and
`cpu_sources_decode_step` (wrapped by `cpu_decode_attention`, `cpu_elementwise`, `kv_store`,
`weight_quant` and `runtime.models.compiled_decode`);
this module compiles them together with ``torch.utils.cpp_extension.load_inline`` (needs a
C++ compiler and ninja; once, then cached by torch under ``~/.cache/torch_extensions``).
:func:`cpu_kernels_available` says whether it built.

The cached extension's name carries a hash of everything that changes the build: the
sources, the compiler flags, the torch version and its headers' folder, and the Python
prefix (the virtualenv). Two environments on one machine therefore build once each, instead
of rebuilding over each other's build every time the other one ran.

Builds from several processes are serialized by an advisory file lock (``flock``) next to
the build folder. The kernel releases it when its holder dies, unlike torch's own ``lock``
file: a build killed part-way (Ctrl-C during the first engine start) leaves that file behind,
and every later build would wait on it forever. Whoever holds the ``flock`` knows no other
build is running, so a torch ``lock`` file it finds is stale and is removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from sglc.kernels.cpu_sources import DECODE_ATTENTION, ELEMENTWISE
from sglc.kernels.cpu_sources_decode_step import DECODE_STEP
from sglc.kernels.cpu_sources_quant import QUANT
from sglc.kernels.cpu_sources_weight_quant import WEIGHT_QUANT
from sglc.progress import working

try:
    import fcntl
except ImportError:  # not POSIX: no flock
    fcntl = None

log = logging.getLogger(__name__)

_EXTENSION_PREFIX = "sglc_cpu_kernels"
_FUNCTIONS = ["decode_attention", "decode_attention_quant", "weight_quant_linear",
              "quantize_store", "rms_norm", "silu_and_mul", "rope", "decode_stack_new",
              "decode_stack_free", "decode_stack_run"]
# DECODE_STEP calls the others' functions: it comes last (one translation unit)
_SOURCES = (DECODE_ATTENTION, QUANT, WEIGHT_QUANT, ELEMENTWISE, DECODE_STEP)
# -fopenmp: ATen's parallel_for is OpenMP pragmas in its headers; without the flag the work
# items run one after another on one core
_CFLAGS = ("-O3", "-march=native", "-fopenmp", "-ffast-math")
_LDFLAGS = ("-fopenmp",)
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


def extension_name(
    torch_version: str | None = None, torch_include: str | None = None,
    python_prefix: str = sys.prefix, sources: tuple[str, ...] = _SOURCES,
    cflags: tuple[str, ...] = _CFLAGS,
) -> str:
    """The cached extension's name: the prefix and a hash of what changes the build (the
    arguments default to this process's torch, Python prefix, sources and flags)."""
    if torch_version is None or torch_include is None:
        import torch
        from torch.utils.cpp_extension import include_paths

        torch_version = torch_version or torch.__version__
        torch_include = torch_include or include_paths()[0]
    key = "\0".join((torch_version, torch_include, python_prefix, *sources, *cflags,
                     *_LDFLAGS, *_FUNCTIONS))
    return f"{_EXTENSION_PREFIX}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def build_directory() -> Path:
    """Where torch builds and caches the extension (torch's own choice of folder, under this
    environment's extension name)."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(extension_name(), verbose=False))


@contextlib.contextmanager
def exclusive_build(folder: Path) -> Iterator[None]:
    """Hold the inter-process build lock of `folder`, and clear a stale torch ``lock`` file
    (without ``fcntl``, torch's lock file alone guards the build)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.flock", "w") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with working("waiting for another process's CPU-kernel build", delay=0.0):
                    fcntl.flock(handle, fcntl.LOCK_EX)
            stale = folder / "lock"
            if stale.exists():
                log.warning("removing %s, left by a build that was killed", stale)
                stale.unlink(missing_ok=True)
        yield


def _build() -> ModuleType:
    from torch.utils.cpp_extension import load_inline

    folder = build_directory()
    with exclusive_build(folder), working("building the CPU kernels (once per environment)"):
        return load_inline(
            name=folder.name, cpp_sources=list(_SOURCES), functions=_FUNCTIONS,
            build_directory=str(folder), extra_cflags=list(_CFLAGS),
            extra_ldflags=list(_LDFLAGS), verbose=False,
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
