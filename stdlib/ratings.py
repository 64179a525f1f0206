"""Chatbot-Arena ratings from pairwise battles: online Elo, Bradley-Terry, bootstrap CIs.

    battles = [Battle("m1", "m2", "model_a"), Battle("m2", "m3", "tie"), ...]
    elo_ratings(battles)           # sequential Elo, K=4, in the battles' order
    bt_ratings(battles)            # Bradley-Terry maximum likelihood (order-free)
    rows = leaderboard(battles)    # BT ratings, 95% bootstrap CIs, ranks
    print(format_leaderboard(rows))

Conventions follow LMSYS's Chatbot Arena: a rating is `scale * r + initial` with base-10
logits (a 400-point gap means 10:1 odds), a tie counts as half a win and half a loss, and
Bradley-Terry strengths are centred (without an anchor the mean rating is `initial`).

Bradley-Terry is fitted as weighted logistic regression, minimised by an established
optimizer: scipy's L-BFGS-B when scipy is installed, else torch's L-BFGS (torch is an sglc
dependency). The loss is convex, so both reach the same optimum.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

WINNERS = ("model_a", "model_b", "tie")
Ratings = dict[str, float]


@dataclass(frozen=True)
class Battle:
    """One comparison: `winner` is "model_a", "model_b" or "tie"."""

    model_a: str
    model_b: str
    winner: str

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise ValueError(f"Battle.winner must be one of {WINNERS}, got {self.winner!r}")
        if self.model_a == self.model_b:
            raise ValueError(f"a battle needs two different models, got {self.model_a!r} twice")

    @property
    def score_a(self) -> float:
        """model_a's result: 1 (win), 0.5 (tie) or 0 (loss)."""
        return {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[self.winner]


def models_of(battles: Sequence[Battle]) -> list[str]:
    """Every model in the battles, sorted."""
    return sorted({b.model_a for b in battles} | {b.model_b for b in battles})


# -- online Elo ----------------------------------------------------------------------------------
def elo_ratings(battles: Sequence[Battle], *, k: float = 4.0, scale: float = 400.0,
                base: float = 10.0, initial: float = 1000.0) -> Ratings:
    """Sequential Elo in the order given: `R_a += k (s - p)`, `R_b -= k (s - p)` with
    `p = 1 / (1 + base ** ((R_b - R_a) / scale))`. Zero-sum: the mean stays `initial`."""
    ratings = dict.fromkeys(models_of(battles), initial)
    for b in battles:
        ra, rb = ratings[b.model_a], ratings[b.model_b]
        expected_a = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        delta = k * (b.score_a - expected_a)
        ratings[b.model_a] = ra + delta
        ratings[b.model_b] = rb - delta
    return ratings


# -- Bradley-Terry ---------------------------------------------------------------------------------
def bt_ratings(battles: Sequence[Battle], *, scale: float = 400.0, base: float = 10.0,
               initial: float = 1000.0, l2: float = 0.0, max_iter: int = 200,
               check_connected: bool = True) -> Ratings:
    """Bradley-Terry maximum-likelihood ratings: minimise the weighted log loss of
    `P(a beats b) = sigmoid(ln(base) * (r_a - r_b))` over the unique (a, b, outcome)
    triples, then `rating = scale * r + initial`.

    Raises ValueError when the comparison graph is disconnected (ratings of separate groups
    are not comparable) unless `check_connected=False` (bootstrap resamples use that). A model that never loses (or never wins) has no finite MLE: its
    rating stops where `max_iter` ends the search; pass `l2 > 0` for a finite optimum.
    """
    models = models_of(battles)
    if not models:
        return {}
    groups = connected_groups(battles) if check_connected else [models]
    if len(groups) > 1:
        shown = "; ".join(", ".join(g) for g in groups)
        raise ValueError(f"the battles form {len(groups)} unconnected groups ({shown}): "
                         "ratings across groups are not comparable")
    r = _fit_bt(battles, models, math.log(base), l2, max_iter)
    return {m: scale * float(x) + initial for m, x in zip(models, r, strict=True)}


def connected_groups(battles: Sequence[Battle]) -> list[list[str]]:
    """The models grouped by who is (transitively) compared with whom."""
    parent = {m: m for m in models_of(battles)}

    def root(m: str) -> str:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for b in battles:
        parent[root(b.model_a)] = root(b.model_b)
    groups: dict[str, list[str]] = {}
    for m in parent:
        groups.setdefault(root(m), []).append(m)
    return sorted(groups.values())


def _fit_bt(battles: Sequence[Battle], models: list[str], alpha: float, l2: float,
            max_iter: int) -> np.ndarray:
    index = {m: i for i, m in enumerate(models)}
    counts = Counter((index[b.model_a], index[b.model_b], b.score_a) for b in battles)
    triples = np.array(list(counts), dtype=np.float64).reshape(-1, 3)
    a, b = triples[:, 0].astype(np.int64), triples[:, 1].astype(np.int64)
    y = triples[:, 2]
    w = np.array(list(counts.values()), dtype=np.float64)
    return _minimize(a, b, y, w, len(models), alpha, l2, max_iter)


def _loss_and_grad(r: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray,
                   alpha: float, l2: float) -> tuple[float, np.ndarray]:
    z = alpha * (r[a] - r[b])
    # -[y log s(z) + (1-y) log s(-z)] = logaddexp(0, z) - y z, stable for any z
    loss = float(np.sum(w * (np.logaddexp(0.0, z) - y * z))) + 0.5 * l2 * float(r @ r)
    dz = w * (1.0 / (1.0 + np.exp(-z)) - y) * alpha
    grad = np.zeros_like(r)
    np.add.at(grad, a, dz)
    np.add.at(grad, b, -dz)
    return loss, grad + l2 * r


def _minimize(a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray, num_models: int,
              alpha: float, l2: float, max_iter: int) -> np.ndarray:
    def fun(r: np.ndarray) -> tuple[float, np.ndarray]:
        return _loss_and_grad(r, a, b, y, w, alpha, l2)

    r0 = np.zeros(num_models)
    try:
        from scipy.optimize import minimize
    except ImportError:
        r = _minimize_torch(fun, r0, max_iter)
    else:
        r = minimize(fun, r0, jac=True, method="L-BFGS-B",
                     options={"maxiter": max_iter, "gtol": 1e-9}).x
    # the loss depends only on differences: centre it (the gradient sums to zero, so the
    # optimizer keeps the mean at 0; this removes rounding drift)
    return r - r.mean()


def _minimize_torch(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], r0: np.ndarray,
                    max_iter: int) -> np.ndarray:
    import torch

    r = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([r], max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss, grad = fun(r.detach().numpy())
        r.grad = torch.from_numpy(grad)
        return torch.tensor(loss, dtype=torch.float64)

    opt.step(closure)
    return r.detach().numpy().copy()


# -- bootstrap and the leaderboard ------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval (the `lower`/`upper` quantiles) and the median."""

    lower: float
    median: float
    upper: float


def bootstrap(battles: Sequence[Battle], rate: Callable[[Sequence[Battle]], Ratings] = bt_ratings,
              *, num_rounds: int = 100, seed: int = 0, confidence: float = 0.95,
              ) -> dict[str, Interval]:
    """Refit `rate` on `num_rounds` resamples of the battles (drawn with replacement, as
    many as there are; seeded) and take each model's quantiles. A model missing from a
    resample is left out of that round. Resampled BT fits skip the connectivity check."""
    if num_rounds < 1:
        raise ValueError(f"bootstrap needs num_rounds >= 1, got {num_rounds}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    fit = partial(bt_ratings, check_connected=False) if rate is bt_ratings else rate
    samples: dict[str, list[float]] = {m: [] for m in models_of(battles)}
    for _ in range(num_rounds):
        picked = rng.integers(0, len(battles), len(battles))
        for model, value in fit([battles[i] for i in picked]).items():
            samples[model].append(value)
    tail = (1 - confidence) / 2
    return {m: Interval(*(float(q) for q in np.quantile(v, [tail, 0.5, 1 - tail])))
            for m, v in samples.items() if v}


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    rating: float
    lower: float
    upper: float
    num_battles: int
    rank: int


def leaderboard(battles: Sequence[Battle], *, method: str = "bt", num_rounds: int = 100,
                seed: int = 0) -> list[LeaderboardRow]:
    """Ratings (`method` "bt" or "elo") with 95% bootstrap CIs, best first. A model's rank
    is 1 + the number of models whose lower bound is above its upper bound (Arena's rule)."""
    fits: dict[str, Callable[[Sequence[Battle]], Ratings]] = {"bt": bt_ratings,
                                                              "elo": elo_ratings}
    if method not in fits:
        raise ValueError(f"leaderboard method must be one of {sorted(fits)}, got {method!r}")
    ratings = fits[method](battles)
    intervals = bootstrap(battles, fits[method], num_rounds=num_rounds, seed=seed)
    played = Counter(m for b in battles for m in (b.model_a, b.model_b))
    rows = []
    for m, rating in ratings.items():
        ci = intervals.get(m, Interval(rating, rating, rating))
        rank = 1 + sum(intervals[o].lower > ci.upper for o in intervals if o != m)
        rows.append(LeaderboardRow(m, rating, ci.lower, ci.upper, played[m], rank))
    return sorted(rows, key=lambda row: (-row.rating, row.model))


def format_leaderboard(rows: Sequence[LeaderboardRow]) -> str:
    """A Markdown table: rank, model, rating, 95% CI, battles."""
    lines = ["| rank | model | rating | 95% CI | battles |", "| ---: | --- | ---: | --- | ---: |"]
    lines += [f"| {r.rank} | {r.model} | {r.rating:.1f} | {r.lower - r.rating:+.1f} / "
              f"{r.upper - r.rating:+.1f} | {r.num_battles} |" for r in rows]
    return "\n".join(lines)


__all__ = ["WINNERS", "Battle", "Interval", "LeaderboardRow", "bootstrap", "bt_ratings",
           "connected_groups", "elo_ratings", "format_leaderboard", "leaderboard", "models_of"]
