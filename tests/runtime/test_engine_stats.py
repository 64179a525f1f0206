"""EngineStats: the snapshot EngineCore.stats() takes, and the dict Engine.stats() returns."""

from __future__ import annotations

import dataclasses

import sglc
from sglc.runtime.engine.stats import EngineStats, StepCounters

# Engine.stats()'s keys, in order: benchmarks and users read them by name
KEYS = [
    "num_extend_batches", "num_decode_batches", "num_prefill_tokens", "num_decode_tokens",
    "num_failed_batches", "num_failed_requests", "num_forced_tokens", "num_column_logits_batches",
    "num_compact_logits_batches", "num_running", "num_waiting", "num_retractions",
    "free_slots", "total_slots", "cache", "client_service", "num_evicted_tokens",
]


def test_to_dict_keeps_the_field_names_in_order():
    stats = EngineStats(*range(14), cache={"hit_rate": 0.5})
    assert list(stats.to_dict()) == KEYS
    assert stats.to_dict()["total_slots"] == 13 and stats.to_dict()["cache"] == {"hit_rate": 0.5}
    assert [f.name for f in dataclasses.fields(StepCounters)] == KEYS[:6]


def test_engine_stats_count_one_generation(llama_dir):
    with sglc.Engine(llama_dir, max_total_tokens=1024) as engine:
        assert engine.core.stats() == EngineStats(**engine.stats())  # idle: nothing moves
        engine.generate([[1, 2, 3, 4], [1, 2, 5]], {"max_new_tokens": 5, "temperature": 0,
                                                     "ignore_eos": True})
        stats = engine.stats()
    assert list(stats) == KEYS
    # one extend of both prompts (7 tokens) samples the first tokens; 4 decode steps the rest
    assert (stats["num_extend_batches"], stats["num_prefill_tokens"]) == (1, 7)
    assert (stats["num_decode_batches"], stats["num_decode_tokens"]) == (4, 8)
    assert stats["num_running"] == stats["num_waiting"] == stats["num_failed_batches"] == 0
    assert stats["total_slots"] == 1024
    assert stats["free_slots"] + stats["cache"]["cached_tokens"] == stats["total_slots"]
