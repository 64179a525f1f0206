"""What the trace records for the viewer: the call tree, the engine's stage times, the
cached part of each prompt, forced output spans, logprobs, the run's error and wall time."""

from __future__ import annotations

import json

from trace_fixtures import PROGRAM, failing_trace

import sglc.program as api


def gens(trace: dict) -> list[dict]:
    return [c for c in trace["calls"] if c["kind"] == "gen"]


def test_each_call_names_its_frames_from_the_outermost_call(traced_run):
    _, trace = traced_run
    paths = {tuple(label for _, label in c["frames"]) for c in trace["calls"]}
    assert ("main", "main (fork branch 1 of 2)") in paths
    assert ("main", "main (fork branch 2 of 2)") in paths
    assert ("main", "main (parallel for item 1 of 2)", "item") in paths
    assert ("main", "code") in paths
    # one frame id per SGL call: both fork branches sit under the same `main` frame, and
    # the two parallel-for items (same fn, same labels below main) are different frames
    mains = {c["frames"][0][0] for c in trace["calls"]}
    assert len(mains) == 1
    items = {tuple(i for i, _ in c["frames"]) for c in gens(trace) if c["fn"] == "item"}
    assert len(items) == 2


def test_gens_carry_stage_times_that_fit_in_their_latency(traced_run):
    _, trace = traced_run
    for c in gens(trace):
        stages = [c["queue_s"], c["prefill_s"], c["decode_s"]]
        assert all(s is not None and s >= 0 for s in stages), c
        assert c["prefill_s"] > 0
        assert sum(stages) <= c["latency_s"] + 1e-3
    assert 0 < trace["wall_s"] and all(c["end_s"] <= trace["wall_s"] for c in trace["calls"])


def test_the_cached_part_of_a_prompt_is_located_in_its_text(traced_run):
    _, trace = traced_run
    branch = next(c for c in gens(trace) if c["name"] == "t")
    assert branch["cached_tokens"] > 0  # the fork's shared prefix was prefetched
    cached = branch["prompt"][: branch["cached_chars"]]
    assert "Once upon a time" in cached and 0 < branch["cached_chars"] < len(branch["prompt"])


def test_forced_spans_are_the_constant_parts_of_a_regex(traced_run):
    _, trace = traced_run
    (code,) = [c for c in gens(trace) if c["name"] == "c"]
    assert code["forced_tokens"] > 0
    forced = "".join(code["output"][a:b] for a, b in code["forced_spans"])
    # jump-forward can only have written text the regex fixes: ID-, -OK (and a space
    # the tokenizer glues to the first of them)
    assert forced.strip() and set(forced) <= set(" ID-OK")


def test_logprobs_are_recorded_when_a_gen_asks_for_them(traced_run):
    _, trace = traced_run
    said = [c for c in gens(trace) if c["name"] == "said"]
    assert said and all(len(c["logprobs"]) == c["completion_tokens"] for c in said)
    assert all(len(lp["top"]) == 2 for c in said for lp in c["logprobs"])
    assert all(c["logprobs"] is None for c in gens(trace) if c["name"] != "said")


def test_a_failed_run_records_its_error_with_the_sgl_location(trace_runtime):
    trace = failing_trace(trace_runtime)
    assert trace["error"]["location"] == "viewer_demo.sgl:21:18"
    assert "constraint needs at least" in trace["error"]["message"]
    assert trace["error"]["stack"] == ["viewer_demo.sgl:21:18 in broken"]
    (call,) = trace["calls"]
    assert call["error"] and call["location"] == "viewer_demo.sgl:21:18"


def test_trace_as_a_path_writes_json_or_the_viewer(trace_runtime, tmp_path):
    prog = api.compile(PROGRAM, "viewer_demo.sgl")
    prog.item("red", runtime=trace_runtime, trace=tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["num_calls"] == 1 and data["calls"][0]["name"] == "said"
    prog.item("red", runtime=trace_runtime, trace=str(tmp_path / "t.html"))
    page = (tmp_path / "t.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '"name": "said"' in page
