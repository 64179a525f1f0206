"""One default-model runtime for every stdlib test that runs on it (one engine start)."""

from __future__ import annotations

import pytest

import sglc


@pytest.fixture(scope="session")
def runtime():
    with sglc.Runtime() as rt:
        yield rt
