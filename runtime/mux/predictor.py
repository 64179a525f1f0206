"""The multiplexer's predictor: per model, a logistic regression of "answers well" on the
query's features, and the model's mean cost; the routing rule over them.

Routing (after Zhu et al., "On Optimal Caching and Model Multiplexing for Large Model
Inference", section 4: send each query to the model of least expected cost, where a poor
answer costs a penalty): for each candidate m with predicted success probability p_m and
mean cost c_m (relative to the costliest candidate's),

    expected_m = c_m / c_max + penalty * (1 - p_m)

and the query goes to the candidate of least expected cost among those with
p_m >= threshold (the costliest candidate when none reaches it).

Saved as JSON (coefficients, feature scaling, costs; never pickle), loaded with checks.
Training needs scikit-learn (`pip install 'sglc[mux]'`); routing needs only numpy.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sglc.runtime.mux.errors import MuxError
from sglc.runtime.mux.features import FeatureSpec
from sglc.runtime.mux.outcome_log import Outcome

FORMAT = "sglc-mux-predictor"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelFit:
    """One model's fitted "answers well" regression (on standardized features) and cost."""

    coef: tuple[float, ...]
    intercept: float
    cost: float  # mean logged cost of its answers
    num_samples: int
    good_share: float  # share of its logged answers that were good


@dataclass(frozen=True)
class Route:
    """Where the multiplexer sent one query, and why."""

    model: str
    probabilities: dict[str, float]
    expected_costs: dict[str, float]

    def to_json(self) -> dict:
        return {"model": self.model,
                "probabilities": {m: round(p, 4) for m, p in self.probabilities.items()},
                "expected_costs": {m: round(c, 4) for m, c in self.expected_costs.items()}}


@dataclass(frozen=True)
class Predictor:
    spec: FeatureSpec
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    models: dict[str, ModelFit]
    quality_threshold: float = 0.5  # a logged answer with quality >= this counted as good

    def probability(self, model: str, features: np.ndarray) -> float:
        """P(model answers this query well)."""
        fit = self.models[model]
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(np.dot(z, np.asarray(fit.coef)) + fit.intercept)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))

    def route(self, features: np.ndarray, candidates: Sequence[str] | None = None,
              threshold: float = 0.5, penalty: float = 1.0) -> Route:
        """The candidate of least expected cost (module docstring); all models if None."""
        names = list(candidates if candidates is not None else self.models)
        probs = {m: self.probability(m, features) for m in names}
        top = max(self.models[m].cost for m in names) or 1.0
        relative = {m: self.models[m].cost / top for m in names}
        expected = {m: relative[m] + penalty * (1.0 - probs[m]) for m in names}
        eligible = [m for m in names if probs[m] >= threshold]
        if not eligible:
            eligible = [max(names, key=lambda m: relative[m])]
        best = min(eligible, key=lambda m: (expected[m], relative[m]))
        return Route(best, probs, expected)

    # -- saving ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "spec": self.spec.to_json(),
                "quality_threshold": self.quality_threshold,
                "mean": list(self.mean), "scale": list(self.scale),
                "models": {m: {"coef": list(f.coef), "intercept": f.intercept, "cost": f.cost,
                               "num_samples": f.num_samples, "good_share": f.good_share}
                           for m, f in self.models.items()}}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """A saved predictor; MuxError naming the file and what is wrong with it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MuxError(f"cannot read predictor {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise MuxError(f"predictor {path} is not JSON ({exc})") from None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise MuxError(f"predictor {path} is not one `sglc mux train` writes: {exc}") \
                from None

    @classmethod
    def from_json(cls, data: Mapping) -> Predictor:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError(f"its format is not {FORMAT!r}")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {data.get('version')!r}, this sglc reads "
                             f"{FORMAT_VERSION}")
        spec = FeatureSpec(**data["spec"])
        n = spec.num_features
        mean, scale = tuple(map(float, data["mean"])), tuple(map(float, data["scale"]))
        if len(mean) != n or len(scale) != n or min(scale) <= 0:
            raise ValueError(f"mean and scale must be {n} numbers (scale positive)")
        models = {}
        for name, fit in data["models"].items():
            coef = tuple(map(float, fit["coef"]))
            if len(coef) != n:
                raise ValueError(f"model {name!r} has {len(coef)} coefficients, not {n}")
            models[str(name)] = ModelFit(coef, float(fit["intercept"]), float(fit["cost"]),
                                         int(fit["num_samples"]), float(fit["good_share"]))
        if not models:
            raise ValueError("it has no models")
        return cls(spec, mean, scale, models, float(data.get("quality_threshold", 0.5)))


def train_predictor(outcomes: Sequence[Outcome], *, quality_threshold: float = 0.5,
                    regularization: float = 1.0) -> Predictor:
    """Fit one logistic regression per model in `outcomes` (scikit-learn's, L2 with inverse
    strength `regularization`): good = quality >= `quality_threshold`. A model whose
    answers were all good (or all poor) gets a constant probability: that share, clipped."""
    if not outcomes:
        raise MuxError("the outcome log is empty: run a program with model=\"auto\" and "
                       "--mux-log LOG first")
    specs = {o.spec for o in outcomes}
    if len(specs) > 1:
        raise MuxError("the outcome log mixes feature settings "
                       f"({', '.join(str(s.to_json()) for s in specs)}); train on one")
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise MuxError("training a predictor needs scikit-learn: pip install "
                       "'sglc[mux]' (or scikit-learn)") from None
    spec = specs.pop()
    x_all = np.stack([o.features for o in outcomes])
    mean = x_all.mean(axis=0)
    scale = x_all.std(axis=0)
    scale[scale < 1e-9] = 1.0
    by_model: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_model[o.model].append(o)
    models = {}
    for name, rows in sorted(by_model.items()):
        x = (np.stack([o.features for o in rows]) - mean) / scale
        y = np.asarray([o.quality >= quality_threshold for o in rows], dtype=int)
        share = float(y.mean())
        cost = float(np.mean([o.cost for o in rows]))
        if 0 < y.sum() < len(y):
            fit = LogisticRegression(C=regularization, max_iter=2000).fit(x, y)
            coef, intercept = tuple(map(float, fit.coef_[0])), float(fit.intercept_[0])
        else:
            clipped = min(max(share, 1e-3), 1 - 1e-3)
            coef, intercept = (0.0,) * spec.num_features, math.log(clipped / (1 - clipped))
        models[name] = ModelFit(coef, intercept, cost, len(rows), share)
    return Predictor(spec, tuple(map(float, mean)), tuple(map(float, scale)), models,
                     quality_threshold)
