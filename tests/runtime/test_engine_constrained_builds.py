"""Constraint index builds run beside decoding: the engine keeps serving other requests while
one request's index builds, and an abort or a context limit during a build or a jump ends that
request alone."""

from __future__ import annotations

import json
import re
import threading

import jsonschema
from constrained_support import WAIT_S, assert_valid, engine_with_index, greedy

from sglc.runtime.core import FinishReason, Output, SamplingParams

# -- index builds run beside decoding -------------------------------------------------------

def test_decoding_goes_on_while_an_index_builds(llama_dir, tmp_path, monkeypatch):
    """The build of one request's index is held until the free request has finished: the
    engine keeps decoding meanwhile (no timing involved)."""
    regex = r"[a-f]{2,6}-[0-9]{1,3}"
    with engine_with_index(llama_dir, tmp_path) as engine:
        free = [1, 9, 8, 7, 6, 5]
        (alone,) = engine.generate([free], greedy(max_new_tokens=32))
        cache = engine.core.constraints.cache  # the engine loop is idle: no race
        gate = threading.Event()
        build = cache._load_or_build

        def held_build(*args):
            if not gate.wait(WAIT_S):
                raise TimeoutError("test gate never opened")
            return build(*args)

        monkeypatch.setattr(cache, "_load_or_build", held_build)
        got: dict[str, Output] = {}
        done = {"free": threading.Event(), "constrained": threading.Event()}

        def collect(name):
            return lambda out: (got.__setitem__(name, out), done[name].set())

        try:
            engine.submit([[1, 5, 9]], SamplingParams(max_new_tokens=32, regex=regex, seed=1),
                          on_output=collect("constrained"))
            engine.submit([free], greedy(max_new_tokens=32), on_output=collect("free"))
            assert done["free"].wait(WAIT_S)
            assert not done["constrained"].is_set()  # its index cannot have been built yet
            assert got["free"].token_ids == alone.token_ids
        finally:
            gate.set()
        assert done["constrained"].wait(WAIT_S)
        assert_valid(got["constrained"])
        assert re.fullmatch(regex, got["constrained"].text)


def test_slow_index_build_beside_free_requests(llama_dir, tmp_path):
    """A genuinely slow build (a top-level string with a maxLength: outlines-core determinizes
    an unanchored DFA that grows exponentially with it) next to free requests."""
    schema = {"type": "string", "maxLength": 13}
    with engine_with_index(llama_dir, tmp_path) as engine:
        free = [[1, 9, 8, 7, 6, k] for k in range(3)]
        alone = engine.generate(free, greedy(max_new_tokens=40))
        got: list[Output] = []
        all_done = threading.Event()

        def collect(out):
            got.append(out)
            if len(got) == 4:
                all_done.set()

        engine.submit([[1, 5, 9]], SamplingParams(max_new_tokens=64, seed=2, json_schema=schema),
                      on_output=collect)
        rids = engine.submit(free, greedy(max_new_tokens=40), on_output=collect)
        assert all_done.wait(WAIT_S)
        (constrained,) = [o for o in got if o.is_valid is not None]
        assert_valid(constrained)
        jsonschema.validate(json.loads(constrained.text), schema)
        by_rid = {o.rid: o for o in got}
        assert [by_rid[rid].token_ids for rid in rids] == [o.token_ids for o in alone]



# -- engine bugs found by these tests (fixed; kept as regression tests) --------------------------

def test_jump_forward_respects_max_context_len(llama_dir, tmp_path):
    regex = "x" + "abcdefghijklmnopqrstuvwxyz0123456789" + "[a-z]{1,3}"
    with engine_with_index(llama_dir, tmp_path, max_total_tokens=4096, max_context_len=64) as engine:
        prompt = list(range(3, 53))  # 50 tokens: 14 left, the forced string is 36 long
        outs = engine.generate([prompt, [1, 2, 3]], [
            SamplingParams(max_new_tokens=100, temperature=0, regex=regex),
            greedy(max_new_tokens=20)])
        assert outs[1].error is None and len(outs[1].token_ids) == 20  # a bystander
        assert outs[0].error is None and outs[0].finish_reason is FinishReason.LENGTH
        assert len(prompt) + len(outs[0].token_ids) <= 64


def test_abort_while_building_gives_one_output(llama_dir, tmp_path, monkeypatch):
    regex = "r{30}"
    with engine_with_index(llama_dir, tmp_path) as engine:
        cache = engine.core.constraints.cache
        gate = threading.Event()
        build = cache._load_or_build
        monkeypatch.setattr(cache, "_load_or_build", lambda *a: (gate.wait(WAIT_S), build(*a))[1])
        got: list[Output] = []
        try:
            (rid,) = engine.submit([[1, 5, 9]], SamplingParams(max_new_tokens=2, regex=regex),
                                   on_output=got.append)
            engine.stats()  # the request reached the loop (and waits for its index)
            engine.abort(rid)
            engine.stats()
            assert [o.finish_reason for o in got] == [FinishReason.ABORT]
        finally:
            gate.set()
        cache.get(regex)  # the build is done ...
        engine.stats()
        engine.stats()  # ... and a loop step has seen it
        assert len(got) == 1, [(o.finish_reason, o.error) for o in got]
