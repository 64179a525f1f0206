"""Progress on long work, with tqdm: on a terminal a bar (or a timer for work of unknown
length), elsewhere nothing, so logs, pipes and CI output stay clean.

    for item in progress(items, "items"): ...           # a bar over an iterable
    with working("building the CPU kernels"): build()    # elapsed time while it runs

Shown when stderr is a terminal; ``SGLC_PROGRESS=1`` forces it on, ``SGLC_PROGRESS=0`` off.
`delay` hides work that ends sooner (the short cases stay silent even on a terminal).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

_T = TypeVar("_T")
_REFRESH_S = 0.5  # how often a `working` timer redraws


def is_enabled() -> bool:
    """Whether progress is shown: SGLC_PROGRESS=1/0 if set, else whether stderr is a tty."""
    forced = os.environ.get("SGLC_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def progress(iterable: Iterable[_T] | None = None, desc: str = "", *, total: int | None = None,
             unit: str = "it", delay: float = 0.0, enabled: bool = True) -> tqdm:
    """A tqdm bar over `iterable` (or updated by hand with `total`), disabled unless
    progress is shown (`is_enabled`) and the caller `enabled` it; it draws once `delay`
    seconds have passed."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, delay=delay, leave=False,
                disable=not (enabled and is_enabled()), dynamic_ncols=True)


@contextlib.contextmanager
def working(desc: str, delay: float = 1.0) -> Iterator[None]:
    """Show `desc` and the time elapsed while the block runs (work of unknown length: a
    build, a wait on a lock), once it has run `delay` seconds."""
    if not is_enabled():
        yield
        return
    bar = tqdm(desc=desc, total=None, delay=delay, leave=False, bar_format="{desc}: {elapsed}",
               dynamic_ncols=True)
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(_REFRESH_S):
            if time.monotonic() - started >= delay:  # refresh() draws at once
                bar.refresh()

    ticker = threading.Thread(target=tick, name="sglc-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        bar.close()
