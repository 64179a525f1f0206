"""A query's features, as the multiplexer's predictor reads them: cheap, from the prompt.

    dense    log(1 + prompt tokens), distinct-token share, digit share of the text,
             log(1 + numbers in the text), log(1 + the longest number's digits),
             log(1 + words), mean word length / 10
    hashed   token unigrams and bigrams of the prompt's last `max_tokens` tokens, counted
             into `num_buckets` buckets by a fixed multiplicative hash, divided by the count

Every feature is a pure function of the prompt's token ids and its text, the same on every
run and machine (no Python `hash`), so a predictor trained on one run's log routes another's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FEATURES_VERSION = 1
DENSE_NAMES = ("log_tokens", "distinct_share", "digit_share", "log_numbers",
               "log_longest_number", "log_words", "mean_word_len")
_NUMBER = re.compile(r"\d+")
_MULT = 2654435761  # Knuth's multiplicative hash constant (2^32 / golden ratio)


@dataclass(frozen=True)
class FeatureSpec:
    """How features are computed; a predictor stores it and refuses a different one."""

    num_buckets: int = 64
    max_tokens: int = 512
    version: int = FEATURES_VERSION

    def __post_init__(self) -> None:
        if not 1 <= self.num_buckets <= 65536:
            raise ValueError(f"num_buckets must be in 1..65536, got {self.num_buckets}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")

    @property
    def num_features(self) -> int:
        return len(DENSE_NAMES) + self.num_buckets

    def to_json(self) -> dict[str, int]:
        return {"num_buckets": self.num_buckets, "max_tokens": self.max_tokens,
                "version": self.version}


def query_features(prompt_ids: Sequence[int], text: str, spec: FeatureSpec) -> np.ndarray:
    """The feature vector (float64, `spec.num_features` long) of a prompt: its token ids and
    its decoded text."""
    ids = list(prompt_ids)[-spec.max_tokens:]
    numbers = _NUMBER.findall(text)
    words = text.split()
    dense = [
        math.log1p(len(ids)),
        len(set(ids)) / len(ids) if ids else 0.0,
        sum(c.isdigit() for c in text) / len(text) if text else 0.0,
        math.log1p(len(numbers)),
        math.log1p(max((len(n) for n in numbers), default=0)),
        math.log1p(len(words)),
        (sum(len(w) for w in words) / len(words) / 10.0) if words else 0.0,
    ]
    buckets = np.zeros(spec.num_buckets)
    grams = [(t,) for t in ids] + list(zip(ids[:-1], ids[1:], strict=True))
    for gram in grams:
        h = 0
        for t in gram:
            h = ((h ^ (t + 1)) * _MULT) & 0xFFFFFFFF
        buckets[(h >> 8) % spec.num_buckets] += 1.0
    if grams:
        buckets /= len(grams)
    return np.concatenate([np.asarray(dense, dtype=np.float64), buckets])
