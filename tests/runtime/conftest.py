"""Fixtures: a tiny random-weight Llama and an engine over it, shared by the runtime tests."""

from __future__ import annotations

import pytest
from model_fixtures import make_model_dir


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama")
    make_model_dir(path, "llama")
    return path


@pytest.fixture(scope="session")
def llama_engine(llama_dir):
    import sglc

    engine = sglc.Engine(llama_dir, max_total_tokens=8192)
    yield engine
    engine.shutdown()
