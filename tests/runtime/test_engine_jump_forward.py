"""Jump-forward inside the engine: forced tokens run in the next batch with the other
running requests (no extra passes), dropped tokens give their KV slots back, outputs valid."""

from __future__ import annotations

import json

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import SamplingParams
from sglc.runtime.req import KVState, Req
from sglc.runtime.scheduler.kv_manager import KVManager

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "ok"],
}
PROMPTS = [f"Person {i}: " for i in range(12)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("jf")
    make_model_dir(path, "llama")
    return path


def run(model_dir, sampling=None, **options):
    sampling = sampling or {"temperature": 0}
    with sglc.Engine(model_dir, max_total_tokens=4096, **options) as engine:
        outs = engine.generate(PROMPTS, {"max_new_tokens": 120, **sampling}, json_schema=SCHEMA)
        return outs, engine.stats()


@pytest.mark.parametrize("page_size", [1, 4])
def test_jump_forward_saves_passes_and_leaks_nothing(model_dir, page_size):
    on, on_stats = run(model_dir, page_size=page_size)
    off, off_stats = run(model_dir, page_size=page_size, enable_jump_forward=False)
    for outs in (on, off):
        assert all(o.is_valid and o.finish_reason.value == "stop" for o in outs)
        assert all(set(json.loads(o.text)) == {"name", "age", "ok"} for o in outs)
    passes = {name: s["num_extend_batches"] + s["num_decode_batches"]
              for name, s in (("on", on_stats), ("off", off_stats))}
    assert on_stats["num_forced_tokens"] > 0 and passes["on"] < passes["off"]
    # per request: without jump-forward every completion token took one pass (prefill
    # included, no chunking here); with it, forced tokens took none
    assert all(o.usage.forward_passes == o.usage.completion_tokens for o in off)
    assert all(o.usage.forced_tokens == 0 for o in off)
    assert sum(o.usage.forced_tokens for o in on) == on_stats["num_forced_tokens"]
    for o in on:
        sampled = o.usage.completion_tokens - o.usage.forced_tokens
        assert 0 < o.usage.forced_tokens < o.usage.completion_tokens
        # a pass per sampled token (+1 when the forced start runs in a pass of its own),
        # more only where a jump dropped sampled tokens
        assert sampled <= o.usage.forward_passes < o.usage.completion_tokens
    assert max(o.usage.forward_passes for o in on) <= passes["on"]
    for stats in (on_stats, off_stats):  # every slot is free or held by the prefix cache
        assert stats["free_slots"] + stats["cache"]["cached_tokens"] == stats["total_slots"]


class _Alloc:
    """A test double recording freed slots (page size 4)."""

    def __init__(self) -> None:
        self.freed: list[int] = []

    def free(self, slots) -> None:
        self.freed += slots.tolist()


class _Pool:
    def __init__(self) -> None:
        import torch

        self.req_to_token = torch.arange(100, 140)[None, :].repeat(2, 1)


def test_truncate_frees_whole_pages_only_and_never_cache_owned_kv():
    kv = KVManager(_Alloc(), _Pool(), cache=None, page_size=4, caches_prefixes=True)
    req = Req("r", 0, [1] * 10, SamplingParams(), frozenset())
    req.kv = KVState(row=1, num_computed_tokens=10, num_allocated_tokens=10,
                     num_cache_owned_tokens=4)
    assert kv.truncate(req, 6)
    assert kv.allocator.freed == [108, 109]  # positions 8, 9: the page of 4..7 is kept
    assert (req.kv.num_computed_tokens, req.kv.num_allocated_tokens) == (6, 6)
    assert not kv.truncate(req, 3)  # inside the prefix cache's part: refused, unchanged
    assert (req.kv.num_computed_tokens, req.kv.num_allocated_tokens) == (6, 6)


@pytest.mark.parametrize("sampling", [
    {"temperature": 0},  # all greedy: sampled from the compact [rows, columns] logits
    {"temperature": 0, "repetition_penalty": 1.3},  # greedy, but penalties need full width
    {"temperature": 0.9, "seed": 7},  # sampled: full-width rows, -inf outside the columns
], ids=["greedy", "greedy-penalty", "seeded"])
def test_column_logits_sample_the_same_tokens(model_dir, monkeypatch, sampling):
    """Batches of constrained requests compute only the logit columns their masks allow;
    the outputs equal those of full logits (the other columns would be masked anyway)."""
    import sglc.runtime.constrained.stage as stage

    runs = {}
    for fraction in (0.0, 1.0):  # never / always restrict the columns
        monkeypatch.setattr(stage, "COLUMN_LOGITS_MAX_FRACTION", fraction)
        outs, stats = run(model_dir, sampling)
        runs[fraction] = ([o.token_ids for o in outs], stats["num_column_logits_batches"],
                          stats["num_compact_logits_batches"])
    assert runs[0.0][1:] == (0, 0) and runs[1.0][1] > 0
    assert runs[1.0][2] == (runs[1.0][1] if sampling == {"temperature": 0} else 0)
    assert runs[1.0][0] == runs[0.0][0]


def test_forced_start_runs_in_the_prefill(model_dir):
    # a text forced from the automaton's start state is appended before the first pass: a
    # fully forced answer takes no pass at all, a forced head then a digit takes only the
    # prefill (which computes the head's tokens with the prompt and samples the digit)
    with sglc.Engine(model_dir, max_total_tokens=4096) as engine:
        whole = engine.generate(["Q: ", "R: "], {"max_new_tokens": 20}, choices=["forced text"])
        forced = engine.stats()
        [digit] = engine.generate("Q: ", {"max_new_tokens": 20}, regex=r"\{x\}=[0-9]")
        stats = engine.stats()
    assert [o.text for o in whole] == ["forced text"] * 2
    assert all(o.is_valid and o.finish_reason.value == "stop" for o in whole)
    assert forced["num_extend_batches"] + forced["num_decode_batches"] == 0
    assert digit.is_valid and digit.text[:4] == "{x}=" and digit.text[4:].isdigit()
    assert stats["num_extend_batches"] - forced["num_extend_batches"] == 1
    assert stats["num_decode_batches"] - forced["num_decode_batches"] <= 1
