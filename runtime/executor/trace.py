"""`--trace trace.json`: every model call a program made, with enough to debug it.

One record per `gen` or `select`, in the order the calls finished:

    {"id": 3, "kind": "gen", "fn": "react", "name": "thought", "location": "agent.sgl:12:30",
     "prompt": "<|im_start|>system\\n...", "prompt_tokens": 41, "params": {...},
     "output": "I need to compute 12*7.", "finish_reason": "stop",
     "cached_tokens": 38, "completion_tokens": 9, "batch_size": 4,
     "start_s": 0.012, "end_s": 0.153, "latency_s": 0.141}

`select` records carry `options`, per-option `scores`, the `method` and `chosen` instead of
an output. A gen that failed is recorded too, with its prompt, the output so far and
`error`. Times are seconds since the trace started.

Spec checks that run (the ones the spec pass could not prove) go under `specs`, one record
per check, in the order they ran; a failed `ensures ... retry N` re-runs its call, so its
checks appear again:

    {"id": 0, "kind": "ensures", "fn": "title", "location": "t.sgl:3:5",
     "spec": "ensures len(result) <= 40", "holds": false, "value": "A very long ...",
     "retries": 2, "attempt": 0, "at_s": 0.41}

The records (and `meta(x)`, whose dicts `gen_meta` makes) are built here from the model's
`Output`s.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sglc.runtime.core import Output, SamplingParams, TokenLogprob
from sglc.runtime.executor.generation import describe_constraint

if TYPE_CHECKING:
    from sglc import ir
    from sglc.runtime.executor.client import Tokenizer
    from sglc.runtime.executor.model_calls import GenResult


class Trace:
    """Collects model-call records; thread-safe, cheap when nobody reads it."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.spec_records: list[dict[str, Any]] = []
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

    def add_spec(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.spec_records.append({"id": len(self.spec_records), **record,
                                      "at_s": self.now()})

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.records)
            specs = list(self.spec_records)
        return {
            "version": 1,
            "num_calls": len(calls),
            "num_prompt_tokens": sum(r.get("prompt_tokens", 0) for r in calls),
            "num_cached_tokens": sum(r.get("cached_tokens", 0) for r in calls),
            "num_completion_tokens": sum(r.get("completion_tokens", 0) for r in calls),
            "calls": calls,
            "num_spec_checks": len(specs),
            "num_spec_failures": sum(not r["holds"] for r in specs),
            "specs": specs,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def spec_record(i: ir.AssertSpec, fn: str, message: str | None, holds: bool,
                values: dict[str, Any], attempt: int) -> dict[str, Any]:
    """The trace record of one run-time spec check (the value: `result` for an ensures;
    `attempt`: 0 for a call's first run, k for its k-th retry)."""
    value = values.get("result") if i.kind == "ensures" else None
    return {"kind": i.kind, "fn": fn, "location": str(i.span), "spec": message,
            "holds": holds, "value": _jsonable(value), "retries": i.retries,
            "attempt": attempt}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def gen_record(i: ir.Gen, fn: str, prompt_text: str, params: SamplingParams,
               result: GenResult, texts: list[str], start: float, end: float) -> dict[str, Any]:
    """The trace record of a gen that succeeded (its first sample's output; all samples'
    texts under `samples` when it asked for several)."""
    out = result.output
    record = {
        "kind": "gen",
        "fn": fn,
        "name": i.dest,
        "location": str(i.span),
        "prompt": prompt_text,
        "prompt_tokens": out.usage.prompt_tokens,
        "params": params_json(params),
        "constraint": describe_constraint(i),
        "regex": i.regex,
        "output": out.text,
        "value_text": texts[0],
        "finish_reason": out.finish_reason.value if out.finish_reason else None,
        "cached_tokens": out.usage.cached_tokens,
        "completion_tokens": out.usage.completion_tokens,
        "forced_tokens": out.usage.forced_tokens,
        "forward_passes": out.usage.forward_passes,
        "batch_size": result.batch_size,
        "start_s": start,
        "end_s": end,
    }
    if len(result.outputs) > 1:
        record["samples"] = texts
    return record


def select_record(i: ir.Select, fn: str, prompt_text: str, num_prompt_tokens: int,
                  scores: list[Any], meta: dict[str, Any], start: float,
                  end: float) -> dict[str, Any]:
    return {
        "kind": "select",
        "fn": fn,
        "name": i.dest,
        "location": str(i.span),
        "prompt": prompt_text,
        "prompt_tokens": num_prompt_tokens,
        "options": meta["options"],
        "method": meta["method"],
        "scores": [
            {"logprob": s.logprob, "num_tokens": s.num_tokens, "normalized": s.normalized,
             "score": ranked}
            for s, ranked in zip(scores, meta["scores"], strict=True)
        ],
        "chosen": meta["choice"],
        "start_s": start,
        "end_s": end,
    }


def params_json(params: SamplingParams) -> dict[str, Any]:
    """The sampling params a gen ran with (its constraint is recorded apart)."""
    out = dataclasses.asdict(params)
    for key in ("regex", "json_schema", "choices"):
        out.pop(key)
    out["stop"], out["stop_token_ids"] = list(params.stop), list(params.stop_token_ids)
    return out


def gen_meta(out: Output, text: str, tokenizer: Tokenizer) -> dict[str, Any]:
    """What `meta(x)` reads about one sample of a gen (a GenMeta, sglc.lang.state)."""
    return {
        "text": text,
        "finish_reason": out.finish_reason.value if out.finish_reason else "abort",
        "prompt_tokens": out.usage.prompt_tokens,
        "cached_tokens": out.usage.cached_tokens,
        "completion_tokens": out.usage.completion_tokens,
        "logprobs": None if out.logprobs is None else
        [_token_logprob(t, tokenizer) for t in out.logprobs],
    }


def _token_logprob(t: TokenLogprob, tokenizer: Tokenizer) -> dict[str, Any]:
    def token(token_id: int) -> str:
        return tokenizer.decode([token_id], skip_special_tokens=False)

    return {"token": token(t.token_id), "token_id": t.token_id, "logprob": t.logprob,
            "top": [{"token": token(tid), "token_id": tid, "logprob": lp} for tid, lp in t.top]}
