"""The outcome log: one JSON line per (query, model) answer a multiplexed gen logged.

    {"query": "3f2a...", "model": "small", "quality": 1.0, "cost": 1.9e9,
     "prompt_tokens": 41, "output_tokens": 8, "spec": {...}, "features": [...]}

`query` is a digest of the prompt's token ids (the rows of one query share it), `quality`
the grader's score in [0, 1], `cost` the model's cost estimate of that request (FLOPs for
an in-process engine). A JSON-lines file rather than the response cache's SQLite: outcomes
must outlive any eviction and exist with the cache off, a log only ever grows by appends
(one line per write, so several processes may share a file), and training reads it whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sglc.runtime.mux.errors import MuxError
from sglc.runtime.mux.features import FeatureSpec


@dataclass(frozen=True)
class Outcome:
    """One logged answer: the query's features, which model answered, how well, at what
    cost."""

    query: str
    model: str
    quality: float
    cost: float
    features: np.ndarray
    spec: FeatureSpec
    prompt_tokens: int = 0
    output_tokens: int = 0

    def to_json(self) -> dict:
        return {"query": self.query, "model": self.model, "quality": self.quality,
                "cost": self.cost, "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens, "spec": self.spec.to_json(),
                "features": [round(float(x), 6) for x in self.features]}


def query_digest(prompt_ids: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps(list(prompt_ids)).encode()).hexdigest()[:16]


class OutcomeLog:
    """Appends outcomes to a JSON-lines file (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise MuxError(f"outcome log {self.path} is a directory; give a file path")
        if not self.path.parent.is_dir():
            raise MuxError(f"outcome log {self.path}: the folder {self.path.parent} does "
                           "not exist")
        self._lock = threading.Lock()

    def write(self, outcomes: Sequence[Outcome]) -> None:
        lines = "".join(json.dumps(o.to_json()) + "\n" for o in outcomes)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(lines)


def read_outcomes(path: str | Path) -> list[Outcome]:
    """Every outcome of a log; MuxError naming `path:line` for a malformed line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MuxError(f"cannot read outcome log {path}: {exc.strerror or exc}") from None
    outcomes = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            outcomes.append(_outcome(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            why = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise MuxError(f"{path}:{number}: not an outcome log line ({why}); expected "
                           "the JSON objects a multiplexed run writes with --mux-log") from None
    return outcomes


def _outcome(row: dict) -> Outcome:
    spec = FeatureSpec(**row["spec"])
    features = np.asarray(row["features"], dtype=np.float64)
    if features.shape != (spec.num_features,):
        raise ValueError(f"{features.size} features, its spec has {spec.num_features}")
    quality, cost = float(row["quality"]), float(row["cost"])
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality {quality} is not in [0, 1]")
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"cost {cost} is not a non-negative number")
    if not isinstance(row["model"], str) or not row["model"]:
        raise ValueError("model must be a non-empty string")
    return Outcome(str(row["query"]), row["model"], quality, cost, features, spec,
                   int(row.get("prompt_tokens", 0)), int(row.get("output_tokens", 0)))
