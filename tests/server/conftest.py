"""Fixtures of the server tests: a real `sglc serve` with the embedded default model, shared
by the tests, and an in-process engine on the same model, for comparing outputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.support import SERVER_ARGS, Server, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(SERVER_ARGS, tmp_path_factory.mktemp("server") / "server.log")
    yield srv
    stop_server(srv)
    assert "Traceback" not in srv.log(), srv.log()  # every failure was answered, not raised


@pytest.fixture(scope="session")
def local_engine() -> Iterator[object]:
    import sglc

    with sglc.Engine() as engine:
        yield engine
