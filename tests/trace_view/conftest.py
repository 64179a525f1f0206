"""A traced run of `trace_fixtures.PROGRAM` on a tiny random-weight model, shared by the
viewer's tests."""

from __future__ import annotations

import pytest
from model_fixtures import make_model_dir
from trace_fixtures import PROGRAM

import sglc.program as api
from sglc.runtime.executor import Trace


@pytest.fixture(scope="session")
def trace_runtime(tmp_path_factory):
    path = tmp_path_factory.mktemp("trace-model")
    make_model_dir(path, "llama")
    with api.Runtime(model_path=path, max_total_tokens=4096, kernel_backend="torch") as rt:
        yield rt


@pytest.fixture(scope="session")
def traced_run(trace_runtime):
    """(the program, its trace as JSON) of one run of `main`."""
    prog = api.compile(PROGRAM, "viewer_demo.sgl")
    trace = Trace()
    prog.main(runtime=trace_runtime, trace=trace)
    return prog, trace.to_json()
