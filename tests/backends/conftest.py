"""Fixtures of the remote-backend tests: a real `sglc serve` with the embedded default model
in a subprocess on a free loopback port, the same model in process, and runtimes on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server.support import Server, start_server, stop_server

import sglc
from backends.support import API_KEY

SERVER_ARGS = ["--api-key", API_KEY, "--log-level", "warning", "--max-tokens", "512"]


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(SERVER_ARGS, tmp_path_factory.mktemp("remote") / "server.log")
    yield srv
    stop_server(srv)
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="session")
def local() -> Iterator[sglc.Runtime]:
    with sglc.Runtime() as runtime:
        yield runtime


@pytest.fixture(scope="module", params=["sglc", "openai"])
def remote(request: pytest.FixtureRequest, endpoint: Server) -> Iterator[sglc.Runtime]:
    """A runtime on the endpoint, once per API: native routes, and /v1/completions only."""
    with sglc.Runtime(endpoint=endpoint.base_url, api_key=API_KEY, api=request.param) as rt:
        yield rt
