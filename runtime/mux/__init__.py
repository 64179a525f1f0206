"""The model multiplexer: `gen x(model="auto")` goes to the cheapest model predicted to
answer it well (after Zhu et al., "On Optimal Caching and Model Multiplexing for Large Model
Inference").

    features      a query's features from its prompt (lengths, digits, hashed token n-grams)
    outcome_log   the JSON-lines log of (features, model, quality, cost) a logging run writes
    predictor     per-model logistic regressions (trained with scikit-learn, saved as JSON)
                  and the routing rule: least cost + penalty x predicted failure
    multiplexer   MuxConfig (the user's options) checked against a run's models

Torch-free; routing needs numpy only, training scikit-learn (`pip install 'sglc[mux]'`).
"""

from sglc.runtime.mux.errors import MuxError
from sglc.runtime.mux.features import FeatureSpec, query_features
from sglc.runtime.mux.multiplexer import AUTO, CostFn, Grader, Multiplexer, MuxConfig, same_answer
from sglc.runtime.mux.outcome_log import Outcome, OutcomeLog, read_outcomes
from sglc.runtime.mux.predictor import Predictor, Route, train_predictor

__all__ = ["AUTO", "CostFn", "FeatureSpec", "Grader", "Multiplexer", "MuxConfig", "MuxError",
           "Outcome", "OutcomeLog", "Predictor", "Route", "query_features", "read_outcomes",
           "same_answer", "train_predictor"]
