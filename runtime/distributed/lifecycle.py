"""What every child process of a distributed engine does: leave when its parent is gone."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(poll_s: float = 0.5) -> None:
    """Exit this process once its parent (the engine's process) is gone, e.g. killed before
    it could stop us, rather than wait on a pipe or a collective that never answers."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="sglc-parent-watch", daemon=True).start()
