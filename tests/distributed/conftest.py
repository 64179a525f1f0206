from __future__ import annotations

import pytest
from model_fixtures import make_model_dir


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama")
    make_model_dir(path, "llama")
    return path
