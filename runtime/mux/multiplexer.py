"""What a run's `model="auto"` gens ask: which model answers this prompt, and what to log.

`MuxConfig` is the user's choice (`Runtime(mux=...)`, `sglc run --mux PRED --mux-log LOG`);
`Multiplexer` is it checked against the models the run has, with each model's cost. The
executor asks it for a prompt's features, the model to send them to, and, when logging,
writes every candidate's answer graded against the reference model's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sglc.lang import AUTO_MODEL
from sglc.runtime.mux.errors import MuxError
from sglc.runtime.mux.features import FeatureSpec, query_features
from sglc.runtime.mux.outcome_log import Outcome, OutcomeLog, query_digest
from sglc.runtime.mux.predictor import Predictor, Route

AUTO = AUTO_MODEL
# (prompt text, a model's answer, the reference model's answer) -> quality in [0, 1]
Grader = Callable[[str, str, str], float]
# (prompt tokens, output tokens) -> the cost of one request on a model
CostFn = Callable[[int, int], float]


def same_answer(prompt: str, answer: str, reference: str) -> float:
    """The default grader: 1.0 when the answer equals the reference's (spaces at the ends
    aside), else 0.0."""
    return float(answer.strip() == reference.strip())


@dataclass(frozen=True)
class MuxConfig:
    """How `model="auto"` picks a model.

    predictor   a trained predictor (its JSON path, or a `Predictor`): route by it
    log         an outcome log to append to: every candidate answers each auto gen, each
                answer is graded against `reference`'s and logged (training data); the
                gen's value is the routed model's answer (the reference's without predictor)
    threshold   least predicted success probability a model needs to be chosen
    penalty     the cost of a poor answer, in units of the costliest candidate's cost
    reference   the model whose answer is the reference (default: the costliest)
    grader      quality of an answer given the reference's (default: `same_answer`)
    candidates  the models to choose among (default: the predictor's, else all the run's)
    is_default  gens that name no model are multiplexed too
    """

    predictor: str | Path | Predictor | None = None
    log: str | Path | None = None
    threshold: float = 0.5
    penalty: float = 1.0
    reference: str | None = None
    grader: Grader | None = None
    candidates: tuple[str, ...] | None = None
    is_default: bool = False

    def __post_init__(self) -> None:
        if self.predictor is None and self.log is None:
            raise MuxError("a multiplexer needs a predictor (mux train's output) or an "
                           "outcome log to write (--mux PRED / --mux-log LOG)")
        if not 0.0 <= self.threshold <= 1.0:
            raise MuxError(f"mux threshold must be in [0, 1], got {self.threshold}")
        if not self.penalty >= 0.0:
            raise MuxError(f"mux penalty must be >= 0, got {self.penalty}")


class Multiplexer:
    """A `MuxConfig` checked against a run's models (`model_names`, each one's `costs`)."""

    def __init__(self, config: MuxConfig, model_names: Sequence[str],
                 costs: Mapping[str, CostFn]) -> None:
        self.config = config
        predictor = config.predictor
        if isinstance(predictor, (str, Path)):
            source = str(predictor)
            predictor = Predictor.load(predictor)
        else:
            source = "the predictor"
        self.predictor: Predictor | None = predictor
        have = list(model_names)
        if AUTO in have:
            raise MuxError(f"'{AUTO}' is not a model's name: model=\"{AUTO}\" asks the "
                           "multiplexer to pick one")
        if predictor is not None:
            missing = [m for m in predictor.models if m not in have]
            if missing:
                raise MuxError(f"{source} is for models {', '.join(predictor.models)}; this "
                               f"run has {', '.join(have)} (no {', '.join(missing)}): train "
                               "one on this run's models (sglc mux train LOG)")
        pool = list(predictor.models) if predictor is not None else have
        self.candidates = list(config.candidates) if config.candidates else pool
        unknown = [m for m in self.candidates if m not in pool]
        if unknown or len(self.candidates) < 1:
            raise MuxError(f"mux candidates {', '.join(unknown) or '(none)'} are not among "
                           f"{'the predictor' if predictor else 'this run'}'s models "
                           f"{', '.join(pool)}")
        self.costs = {m: costs[m] for m in self.candidates}
        self.reference = config.reference or max(self.candidates, key=self._typical_cost)
        if self.reference not in self.candidates:
            raise MuxError(f"mux reference model '{self.reference}' is not a candidate "
                           f"({', '.join(self.candidates)})")
        self.spec = predictor.spec if predictor is not None else FeatureSpec()
        self.log = OutcomeLog(config.log) if config.log is not None else None
        self.grader = config.grader or same_answer

    @property
    def is_default(self) -> bool:
        return self.config.is_default

    def features(self, prompt_ids: Sequence[int], text: str) -> np.ndarray:
        return query_features(prompt_ids, text, self.spec)

    def route(self, features: np.ndarray) -> Route:
        """The model for a query; without a predictor (a logging run), the reference."""
        if self.predictor is None:
            return Route(self.reference, {}, {})
        return self.predictor.route(features, self.candidates, self.config.threshold,
                                    self.config.penalty)

    def record(self, prompt_ids: Sequence[int], features: np.ndarray, prompt_text: str,
               answers: Mapping[str, tuple[str, int]]) -> None:
        """Log each candidate's answer (text, output tokens), graded against the
        reference's."""
        assert self.log is not None
        reference = answers[self.reference][0]
        query = query_digest(prompt_ids)
        rows = []
        for model, (text, num_output) in answers.items():
            try:
                quality = 1.0 if model == self.reference else \
                    float(self.grader(prompt_text, text, reference))
            except Exception as exc:  # noqa: BLE001 - the user's grader: report, never leak
                raise MuxError(f"the mux grader failed on model '{model}''s answer: "
                               f"{type(exc).__name__}: {exc}") from None
            if not 0.0 <= quality <= 1.0:
                raise MuxError(f"the mux grader returned {quality!r} for model '{model}'; "
                               "a quality must be in [0, 1]")
            rows.append(Outcome(query, model, quality,
                                float(self.costs[model](len(prompt_ids), num_output)),
                                features, self.spec, len(prompt_ids), num_output))
        self.log.write(rows)

    def _typical_cost(self, model: str) -> float:
        if self.predictor is not None:
            return self.predictor.models[model].cost
        return float(self.costs[model](64, 16))
