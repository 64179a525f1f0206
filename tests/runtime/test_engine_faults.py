"""Fault injection: a request whose processing raises at one stage inside the loop thread
fails alone, with an error naming the stage, while good requests in the same batch finish
with exactly their solo runs' tokens; the engine serves new requests afterwards."""

from __future__ import annotations

import threading

import pytest

import sglc
from sglc.runtime.core import FinishReason, InvalidRequest

GOOD_PROMPTS = [[1, 5, 9, 12], [1, 7, 7], [1, 20, 30, 40, 50], [1, 5, 9, 100, 101, 102]]
GOOD = {"max_new_tokens": 10, "temperature": 0, "ignore_eos": True}
BAD_PROMPT = [1, 3, 4, 6]
CONSTRAINED = {**GOOD, "regex": "[a-z]+ [a-z]+ [a-z ]+"}


@pytest.fixture(scope="module")
def engine(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=4096) as engine:
        yield engine


@pytest.fixture(scope="module")
def solo(engine):
    return [engine.generate([p], GOOD)[0].token_ids for p in GOOD_PROMPTS]


def is_bad(req) -> bool:
    return req.rid.endswith("bad")


def raising_for_bad(real, arg=0):
    """`real`, raising when its argument `arg` is (or, for a list, holds) the bad request."""
    def double(*args, **kwargs):
        value = args[arg]
        reqs = value if isinstance(value, list) else [value]
        reqs = [r[0] if isinstance(r, tuple) else r for r in reqs]
        if any(is_bad(r) for r in reqs):
            raise RuntimeError("injected fault")
        return real(*args, **kwargs)
    return double


def on_output_raising(outputs: list, out) -> None:
    outputs.append(out)
    if out.rid.endswith("bad"):
        raise RuntimeError("injected fault in on_output")


def on_delta_raising(delta) -> None:
    if delta.rid.endswith("bad"):
        raise RuntimeError("injected fault in on_delta")


# (stage, the part's attribute to replace, where the fault is, bad params, error words)
STAGES = [
    ("admission", "outputs.start", 0, GOOD, "engine error while admitting it"),
    ("sampling", "_sample_rows", 1, GOOD, "engine error while sampling"),
    ("detokenizing", "outputs._push_text", 0, GOOD, "engine error while detokenizing"),
    ("constraint mask", "constraints.mask", 1, CONSTRAINED, "engine error while sampling"),
    ("constraint step", "constraints.after_token", 0, CONSTRAINED,
     "engine error while advancing its constraint"),
    ("streaming", "outputs.delta", 0, GOOD, "engine error while streaming its output"),
    ("output", "outputs.output", 0, GOOD, "engine error while building its output"),
    ("on_delta", None, None, GOOD, "the on_delta callback raised RuntimeError"),
    ("on_output", None, None, GOOD, None),
]


def patch(engine, monkeypatch, path: str, arg: int) -> None:
    owner = engine.core
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    monkeypatch.setattr(owner, name, raising_for_bad(getattr(owner, name), arg))


@pytest.mark.parametrize(("stage", "path", "arg", "bad_params", "words"), STAGES,
                         ids=[s[0] for s in STAGES])
def test_a_request_failing_at_one_stage_fails_alone(engine, solo, monkeypatch, stage, path,
                                                    arg, bad_params, words):
    if path is not None:
        patch(engine, monkeypatch, path, arg)
    failed_before = engine.stats()["num_failed_requests"]
    tag = stage.replace(" ", "-")
    rids = [f"{tag}-good-{i}" for i in range(len(GOOD_PROMPTS))] + [f"{tag}-bad"]
    outputs: list = []
    done = threading.Event()

    def on_output(out) -> None:
        try:
            on_output_raising(outputs, out) if stage == "on_output" else outputs.append(out)
        finally:
            if len(outputs) == len(rids):
                done.set()

    engine.submit(GOOD_PROMPTS + [BAD_PROMPT], [GOOD] * len(GOOD_PROMPTS) + [bad_params],
                  rids=rids, on_output=on_output,
                  on_delta=on_delta_raising if stage == "on_delta" else (lambda d: None))
    assert done.wait(60), f"the engine stalled after a fault in {stage}"
    by_rid = {o.rid: o for o in outputs}
    for i, tokens in enumerate(solo):
        good = by_rid[f"{tag}-good-{i}"]
        assert good.error is None and good.token_ids == tokens, stage
    bad = by_rid[f"{tag}-bad"]
    if words is not None:
        assert bad.finish_reason is FinishReason.ABORT
        assert words in bad.error and "injected fault" in bad.error
        assert engine.stats()["num_failed_requests"] > failed_before
    monkeypatch.undo()
    # the engine goes on serving, the bad request's id included
    (again,) = engine.generate([GOOD_PROMPTS[0]], GOOD, rids=[f"{tag}-bad"])
    assert again.token_ids == solo[0]
    stats = engine.stats()
    assert stats["num_running"] == stats["num_waiting"] == 0


def test_a_failing_score_fails_alone(engine, solo, monkeypatch):
    real = engine.core.outputs.record_scores

    def failing(req, logprobs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(engine.core.outputs, "record_scores", failing)
    results: dict = {}
    thread = threading.Thread(target=lambda: results.update(
        good=engine.generate([GOOD_PROMPTS[1]], GOOD)[0]))
    thread.start()
    with pytest.raises(sglc.EngineError, match="engine error while scoring: RuntimeError"):
        engine.score([1, 5, 9], [[12], [13]])
    thread.join()
    assert results["good"].token_ids == solo[1]
    monkeypatch.setattr(engine.core.outputs, "record_scores", real)
    assert len(engine.score([1, 5, 9], [[12], [13]])) == 2


def test_an_inbox_item_that_raises_does_not_kill_the_loop(engine, solo):
    def boom() -> None:
        raise RuntimeError("injected fault in the inbox")

    engine._call(boom)
    assert engine.generate([GOOD_PROMPTS[0]], GOOD)[0].token_ids == solo[0]


def test_the_issue_probes_are_refused_up_front(engine):
    with pytest.raises(InvalidRequest, match="skip_special_tokens must be True or False, got 'no'"):
        engine.generate("hi", {"skip_special_tokens": "no"})
    with pytest.raises(InvalidRequest, match=r"n: 100000 is more than this engine allows "
                                             r"\(max_n=128; raise it with Engine\(max_n=...\)\)"):
        engine.generate("hi", {"n": 100000})
    assert engine.generate([GOOD_PROMPTS[0]], GOOD)[0].error is None


def test_a_request_id_in_flight_is_refused(engine):
    started = threading.Event()
    finished = threading.Event()
    engine.submit([GOOD_PROMPTS[0]], {**GOOD, "max_new_tokens": 200}, rids=["busy"],
                  on_output=lambda out: finished.set(),
                  on_delta=lambda delta: started.set())
    assert started.wait(30)
    with pytest.raises(InvalidRequest, match="request id 'busy' is already in flight"):
        engine.generate([GOOD_PROMPTS[1]], GOOD, rids=["busy"])
    engine.abort("busy")
    assert finished.wait(30)
    assert engine.generate([GOOD_PROMPTS[1]], GOOD, rids=["busy"])[0].error is None
