"""Engine(tp_size=2): worker processes over gloo on CPU give the greedy tokens of tp_size=1,
with the radix cache, chunked prefill and retraction at work; dead workers and Ctrl-C
leave no request hanging and no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import InvalidRequest

SHARED = list(range(10, 90))
PARAMS = {"max_new_tokens": 20, "temperature": 0, "ignore_eos": True}
# a pool so small that decode must retract, 16-token prefill chunks, the radix cache on
PRESSURED = {"max_total_tokens": 400, "new_token_reserve_ratio": 0.0, "chunked_prefill_size": 16,
             "kernel_backend": "torch"}


def workload(num: int = 12) -> list[list[int]]:
    return [([1] + SHARED if i % 2 else [1]) + [3 + (i * 37 + k * 11) % 290 for k in range(5 + i * 3)]
            for i in range(num)]


@pytest.fixture(scope="module")
def reference(llama_dir):
    with sglc.Engine(llama_dir, disable_radix_cache=True, chunked_prefill_size=0,
                     max_total_tokens=8192, kernel_backend="torch") as engine:
        return [o.token_ids for o in engine.generate(workload(), PARAMS)]


@pytest.fixture(scope="module")
def tp_engine(llama_dir):
    with sglc.Engine(llama_dir, tp_size=2, **PRESSURED) as engine:
        yield engine


def test_tp2_greedy_tokens_equal_tp1_under_cache_chunks_and_retraction(tp_engine, reference):
    outs = tp_engine.generate(workload(), PARAMS)
    stats = tp_engine.stats()
    assert [o.token_ids for o in outs] == reference
    assert stats["num_retractions"] > 0
    assert stats["cache"]["matched_tokens"] > 0
    assert stats["num_extend_batches"] > len(workload())  # prompts were chunked
    assert stats["free_slots"] + stats["cache"]["cached_tokens"] == stats["total_slots"]


def test_tp2_constrained_and_scored_requests(tp_engine, llama_dir):
    choices = ["alpha", "beta", "gamma"]
    out = tp_engine.generate("Question: pick one", {"max_new_tokens": 8, "temperature": 0},
                             choices=choices)[0]
    assert out.text in choices
    scores = tp_engine.score([1, 5, 9], [[10, 11], [12]])
    with sglc.Engine(llama_dir, kernel_backend="torch") as one:
        assert one.generate("Question: pick one", {"max_new_tokens": 8, "temperature": 0},
                            choices=choices)[0].text == out.text
        expected = one.score([1, 5, 9], [[10, 11], [12]])
    for got, want in zip(scores, expected, strict=True):
        assert got.logprob == pytest.approx(want.logprob, abs=1e-4)


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "qwen3"])
def test_tp2_matches_tp1_for_each_architecture(tmp_path, arch):
    make_model_dir(tmp_path, arch)
    prompts = [[1, 5, 9, 11, 40], [1] + SHARED[:30], [1, 200, 100]]
    params = {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}
    with sglc.Engine(tmp_path, kernel_backend="torch") as one:
        expected = [o.token_ids for o in one.generate(prompts, params)]
    with sglc.Engine(tmp_path, tp_size=2, kernel_backend="torch") as two:
        assert [o.token_ids for o in two.generate(prompts, params)] == expected


def test_unsupported_combinations_are_refused_before_any_process_starts(llama_dir):
    with pytest.raises(InvalidRequest, match="kv_policy 'h2o' with tp_size=2"):
        sglc.Engine(llama_dir, tp_size=2, kv_policy="h2o", kv_budget=8)
    with pytest.raises(InvalidRequest, match="tp_size must be"):
        sglc.Engine(llama_dir, tp_size=0)
    with pytest.raises(sglc.runtime.core.EngineError, match="tp_size=3 must divide"):
        sglc.Engine(llama_dir, tp_size=3)


def test_a_dead_worker_fails_requests_with_a_clear_error(tp_engine):
    """Last in the module: it kills the shared engine's worker."""
    worker = tp_engine._tp.workers[0]
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    out = tp_engine.generate([[1, 2, 3]], {"max_new_tokens": 4})[0]
    assert out.finish_reason == "abort"
    assert "tensor-parallel worker rank 1" in out.error and "exited" in out.error


_CTRL_C_SCRIPT = """
import sys, sglc
if __name__ == "__main__":
    engine = sglc.Engine(sys.argv[1], tp_size=2, kernel_backend="torch")
    print(*engine._tp.worker_pids, flush=True)
    engine.generate([[1, 2, 3]], {"max_new_tokens": 200, "ignore_eos": True})
    while True:
        engine.generate([[1, 2, 3]], {"max_new_tokens": 50, "ignore_eos": True})
"""


def test_ctrl_c_leaves_no_worker_behind(llama_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_CTRL_C_SCRIPT))
    proc = subprocess.Popen([sys.executable, str(script), str(llama_dir)],
                            stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (its parent exited; init reaps it)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
