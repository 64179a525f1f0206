"""A pytest plugin loaded before any conftest or test module (`-p triton_env` in pyproject).

Triton kernels run on CPU through Triton's interpreter in tests. The variable must be set
before anything imports triton (transformers may, at import time), so it is set here, ahead
of every import a test makes. Run with ``TRITON_INTERPRET=0`` on a CUDA machine to test
the compiled kernels instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
