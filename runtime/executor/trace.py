"""`--trace trace.json`: every model call a program made, with enough to debug it.

One record per `gen` or `select`, in the order the calls finished:

    {"id": 3, "kind": "gen", "fn": "react", "name": "thought", "location": "agent.sgl:12:30",
     "prompt": "<|im_start|>system\\n...", "prompt_tokens": 41, "params": {...},
     "output": "I need to compute 12*7.", "finish_reason": "stop",
     "cached_tokens": 38, "completion_tokens": 9, "batch_size": 4,
     "start_s": 0.012, "end_s": 0.153, "latency_s": 0.141}

`select` records carry `options`, per-option `scores` and `chosen` instead of an output.
Times are seconds since the trace started.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class Trace:
    """Collects model-call records; thread-safe, cheap when nobody reads it."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.perf_counter() - self._t0, 6)

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            record = {"id": len(self.records), **record}
            if "start_s" in record and "end_s" in record:
                record["latency_s"] = round(record["end_s"] - record["start_s"], 6)
            self.records.append(record)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.records)
        return {
            "version": 1,
            "num_calls": len(calls),
            "num_prompt_tokens": sum(r.get("prompt_tokens", 0) for r in calls),
            "num_cached_tokens": sum(r.get("cached_tokens", 0) for r in calls),
            "num_completion_tokens": sum(r.get("completion_tokens", 0) for r in calls),
            "calls": calls,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
