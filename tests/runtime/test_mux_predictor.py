"""The multiplexer's predictor without a model: features, training on a generated outcome
log (a separable rule is learned and generalizes), the routing rule (cheap model when
predicted good, else the large one; threshold and penalty), JSON round trips, and bad
predictor files, logs and settings failing with errors that name them."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from sglc.runtime.mux import (
    FeatureSpec,
    Multiplexer,
    MuxConfig,
    MuxError,
    Outcome,
    OutcomeLog,
    Predictor,
    query_features,
    read_outcomes,
    train_predictor,
)
from sglc.runtime.mux.predictor import ModelFit

SPEC = FeatureSpec(num_buckets=16)
WORDS = ["apple", "river", "stone", "cloud", "green", "table", "music", "light"]


def prompt(rng: random.Random, with_numbers: bool) -> tuple[list[int], str]:
    words = rng.sample(WORDS, 3)
    if with_numbers:
        words.append(f"{rng.randrange(100, 10_000)}*{rng.randrange(10, 99)}")
    text = " ".join(words)
    return [ord(c) for c in text], text


def generated_log(path, n: int, seed: int) -> list[tuple[np.ndarray, bool]]:
    """A log where the small model is good exactly on prompts without numbers (the large
    one always), costs 1 and 8; returns each query's features and whether small was good."""
    rng = random.Random(seed)
    log, queries = OutcomeLog(path), []
    for k in range(n):
        numbers = k % 2 == 0
        x = query_features(*prompt(rng, numbers), SPEC)
        log.write([Outcome(f"q{k}", "small", 0.0 if numbers else 1.0, 1.0, x, SPEC),
                   Outcome(f"q{k}", "large", 1.0, 8.0, x, SPEC)])
        queries.append((x, not numbers))
    return queries


def test_features_are_deterministic_and_sized() -> None:
    ids, text = [5, 9, 5, 12], "What is 12*7?"
    a, b = query_features(ids, text, SPEC), query_features(list(ids), text, SPEC)
    assert a.shape == (SPEC.num_features,) and np.array_equal(a, b)
    assert a[0] == pytest.approx(math.log1p(4)) and a[1] == pytest.approx(3 / 4)
    assert a[2] == pytest.approx(3 / len(text))  # digits
    assert a[7:].sum() == pytest.approx(1.0)  # unigram + bigram shares
    assert not np.array_equal(a, query_features([5, 9, 5, 13], text, SPEC))


def test_training_learns_a_separable_rule(tmp_path) -> None:
    generated_log(tmp_path / "log.jsonl", 60, seed=0)
    predictor = train_predictor(read_outcomes(tmp_path / "log.jsonl"))
    assert predictor.models["small"].good_share == pytest.approx(0.5)
    assert predictor.models["large"].good_share == 1.0
    assert predictor.models["small"].cost == 1.0 and predictor.models["large"].cost == 8.0
    held_out = generated_log(tmp_path / "other.jsonl", 40, seed=1)  # unseen queries
    for x, small_good in held_out:
        p = predictor.probability("small", x)
        assert (p > 0.5) == small_good, p
        assert predictor.probability("large", x) > 0.99  # constant: always good
        assert predictor.route(x).model == ("small" if small_good else "large")


def fixed(p_small: float) -> Predictor:
    """A predictor whose probabilities are constants: small p_small, large 0.99."""
    def fit(p: float, cost: float) -> ModelFit:
        return ModelFit((0.0,) * SPEC.num_features, math.log(p / (1 - p)), cost, 10, p)
    return Predictor(SPEC, (0.0,) * SPEC.num_features, (1.0,) * SPEC.num_features,
                     {"small": fit(p_small, 1.0), "large": fit(0.99, 10.0)})


def test_routing_rule_cost_penalty_and_threshold() -> None:
    x = np.zeros(SPEC.num_features)
    route = fixed(0.8).route(x)
    assert route.model == "small"
    assert route.expected_costs["small"] == pytest.approx(0.1 + 0.2)
    assert route.expected_costs["large"] == pytest.approx(1.0 + 0.01)
    assert fixed(0.3).route(x).model == "large"  # below the threshold
    assert fixed(0.8).route(x, threshold=0.9).model == "large"
    assert fixed(0.8).route(x, threshold=0.0, penalty=10.0).model == "large"  # 2.1 > 1.1
    assert fixed(0.3).route(x, threshold=0.0, penalty=0.5).model == "small"  # 0.45 < 1.005
    assert fixed(0.8).route(x, candidates=["large"]).model == "large"


def test_predictor_json_round_trip(tmp_path) -> None:
    generated_log(tmp_path / "log.jsonl", 20, seed=2)
    predictor = train_predictor(read_outcomes(tmp_path / "log.jsonl"))
    predictor.save(tmp_path / "p.json")
    again = Predictor.load(tmp_path / "p.json")
    assert again == predictor
    assert json.loads((tmp_path / "p.json").read_text())["format"] == "sglc-mux-predictor"


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"format": "pickle"}', "its format is not 'sglc-mux-predictor'"),
    ('{"format": "sglc-mux-predictor", "version": 9}', "version 9, this sglc reads 1"),
])
def test_bad_predictor_files(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(MuxError, match=message) as info:
        Predictor.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(MuxError, match="cannot read predictor"):
        Predictor.load(tmp_path / "missing.json")


def test_wrong_coefficient_count_is_refused(tmp_path) -> None:
    data = fixed(0.5).to_json()
    data["models"]["small"]["coef"] = [0.0, 1.0]
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(MuxError, match="model 'small' has 2 coefficients, not 23"):
        Predictor.load(tmp_path / "p.json")


def test_bad_outcome_logs(tmp_path) -> None:
    path = tmp_path / "log.jsonl"
    generated_log(path, 2, seed=3)
    with path.open("a") as f:
        f.write('{"model": "small"}\n')
    with pytest.raises(MuxError, match=rf"{path}:5: not an outcome log line"):
        read_outcomes(path)
    with pytest.raises(MuxError, match="the outcome log is empty"):
        train_predictor([])
    with pytest.raises(MuxError, match="folder .* does not exist"):
        OutcomeLog(tmp_path / "nowhere" / "log.jsonl")


def test_multiplexer_checks_models_and_settings(tmp_path) -> None:
    fixed(0.5).save(tmp_path / "p.json")
    costs = {m: (lambda p, o: float(p + o)) for m in ("small", "large", "judge")}
    with pytest.raises(MuxError, match=r"p.json is for models small, large; this run has "
                                       r"small, judge \(no large\)"):
        Multiplexer(MuxConfig(tmp_path / "p.json"), ["small", "judge"], costs)
    with pytest.raises(MuxError, match="needs a predictor"):
        MuxConfig()
    with pytest.raises(MuxError, match="threshold must be in"):
        MuxConfig(tmp_path / "p.json", threshold=2.0)
    with pytest.raises(MuxError, match="reference model 'judge' is not a candidate"):
        Multiplexer(MuxConfig(log=tmp_path / "l.jsonl", reference="judge",
                              candidates=("small", "large")), ["small", "large", "judge"],
                    costs)
    mux = Multiplexer(MuxConfig(tmp_path / "p.json"), ["large", "small", "judge"], costs)
    assert mux.candidates == ["small", "large"] and mux.reference == "large"
