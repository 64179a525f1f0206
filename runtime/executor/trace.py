"""`--trace trace.json`: every model call a program made, with enough to debug it.

One record per `gen` or `select`, in the order the calls finished:

    {"id": 3, "kind": "gen", "fn": "react", "name": "thought", "location": "agent.sgl:12:30",
     "prompt": "<|im_start|>system\\n...", "prompt_tokens": 41, "params": {...},
     "output": "I need to compute 12*7.", "finish_reason": "stop",
     "cached_tokens": 38, "completion_tokens": 9, "cached_response": false, "batch_size": 4,
     "start_s": 0.012, "end_s": 0.153, "latency_s": 0.141,
     "queue_s": 0.001, "prefill_s": 0.02, "decode_s": 0.118,
     "cached_chars": 150, "forced_spans": [[0, 2]], "logprobs": [...],
     "frames": [[0, "react"]]}

`select` records carry `options`, per-option `scores`, the `method` and `chosen` instead of
an output. A gen that failed is recorded too, with its prompt, the output so far and
`error`. Times are seconds since the trace started; `queue_s`, `prefill_s` and `decode_s`
(None where the backend does not report them) split the engine's part of the latency.
`cached_chars` is how much of the prompt text the cached tokens spell; `forced_spans` are the [start, end) character ranges of the output that jump-forward
appended; `logprobs` is there when the gen asked for them. `frames` places the call in the
call tree: the (frame id, label) of each SGL call from the outermost one to the one that made
it, fork branches and parallel-for items being frames of their own.

The whole trace (`to_json`) adds totals, `wall_s` and, when the run failed, its `error`
(message, SGL location, call stack). Readers must accept records without the newer keys
(older traces) and may find more kinds of records (e.g. `checks`) than listed here.

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
import itertools
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


FramePath = tuple[tuple[int, str], ...]  # (frame id, label), outermost call first


class Trace:
    """Collects model-call records; thread-safe, cheap when nobody reads it."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None  # why the run failed, if it did
        self.spec_records: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self._end: float | None = None
        self._lock = threading.Lock()
        self._frame_ids = itertools.count()

    def now(self) -> float:
        return round(time.perf_counter() - self._t0, 6)

    def start(self) -> None:
        """A run begins: times count from now, unless this trace already holds records (of
        an earlier run it shares a clock with)."""
        with self._lock:
            if not self.records:
                self._t0 = time.perf_counter()

    def new_frame_id(self) -> int:
        """A fresh id for an SGL call's frame (records name their frames by these ids)."""
        with self._lock:
            return next(self._frame_ids)

    def finish(self, error: dict[str, Any] | None = None) -> None:
        """Mark the run over (its wall time ends now), failed with `error` if given:
        {"message", "location", "stack"}."""
        self._end = self.now()
        if error is not None:
            self.error = error

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
        data = {
            "version": 1,
            "wall_s": self._end if self._end is not None else self.now(),
            "num_calls": len(calls),
            "num_prompt_tokens": sum(r.get("prompt_tokens", 0) for r in calls),
            "num_cached_tokens": sum(r.get("cached_tokens", 0) for r in calls),
            "num_completion_tokens": sum(r.get("completion_tokens", 0) for r in calls),
            "num_cached_responses": sum(bool(r.get("cached_response")) for r in calls),
            "calls": calls,
            "num_spec_checks": len(specs),
            "num_spec_failures": sum(not r["holds"] for r in specs),
            "specs": specs,
        }
        if self.error is not None:
            data["error"] = self.error
        return data

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
        "cached_response": out.usage.cached_response,
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


def call_details(out: Output, prompt_ids: list[int], logprobs: list[dict[str, Any]] | None,
                 tokenizer: Tokenizer, path: FramePath) -> dict[str, Any]:
    """What a gen record adds for the viewer: the engine's stage times, how much of the
    prompt text came from the prefix cache, the output's forced spans, its logprobs (if
    recorded) and the call's frames."""
    usage = out.usage
    cached = prompt_ids[: usage.cached_tokens]
    return {
        "queue_s": usage.queue_s, "prefill_s": usage.prefill_s, "decode_s": usage.decode_s,
        "cached_chars": len(tokenizer.decode(cached, skip_special_tokens=False)) if cached
        else 0,
        "forced_spans": forced_spans(out, tokenizer),
        "logprobs": logprobs,
        "frames": frames_json(path),
    }


def frames_json(path: FramePath) -> list[list[Any]]:
    return [[frame_id, label] for frame_id, label in path]


def forced_spans(out: Output, tokenizer: Tokenizer) -> list[list[int]]:
    """The [start, end) character ranges of `out.text` made of tokens jump-forward appended
    (runs of consecutive forced positions, each located by decoding the tokens before it)."""
    positions = [p for p in out.forced_positions if p < len(out.token_ids)]
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + 1
        else:
            runs.append([p, p + 1])

    def offset(num_tokens: int) -> int:
        text = tokenizer.decode(out.token_ids[:num_tokens], skip_special_tokens=True)
        return min(len(text), len(out.text))

    spans = [[offset(a), offset(b)] for a, b in runs]
    return [s for s in spans if s[1] > s[0]]


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
