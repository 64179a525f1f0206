"""The parameters of `select`: one record each, read by the checker (types, constant values)
and the executor (which scores the options and picks one by them).

    select action(temperature=0.5, seed=3) in ["search", "finish"]
    select answer(choices_method="unconditional_likelihood_normalized") in options

A select scores every option as a continuation of the prompt (one batched pass sharing the
prefix), ranks them by `choices_method`, and picks the best, or, with a temperature, samples
one with probability proportional to exp(score / temperature). `meta(x)` reads every
option's score afterwards. Selects do not inherit gen defaults.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.lang.types import FLOAT, INT, STR, OptionalT, Type
from sglc.runtime.core import ParamRule, Range

CHOICES_METHODS = (
    "token_length_normalized", "greedy_token_selection", "unconditional_likelihood_normalized")
"""How options are ranked (SGLang's names):

token_length_normalized           the mean logprob of the option's tokens (the default)
greedy_token_selection            token by token: keep the options whose next token is the
                                  likeliest, until one is left (a shorter option goes on with
                                  its mean logprob)
unconditional_likelihood_normalized  the mean of (logprob after the prompt - logprob without
                                  it), so options that are likely anywhere do not win for that;
                                  "without it" is a prompt of just the open role turn's header,
                                  or, outside a turn, just the prompt's first token
"""


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of strings."""

    values: tuple[str, ...]

    def error(self, name: str, value: object) -> str | None:
        if value in self.values:
            return None
        close = difflib.get_close_matches(str(value), self.values, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{name} must be one of {', '.join(map(repr, self.values))}, got {value!r}{hint}"


@dataclass(frozen=True)
class SelectParam:
    """`select x(name=value) in ...`: the SGL types `value` may have, its rule, its default."""

    name: str
    types: tuple[Type, ...]
    doc: str
    default: object
    rule: ParamRule | None = None

    def error(self, value: object) -> str | None:
        return None if self.rule is None else self.rule.error(self.name, value)

    @property
    def type_text(self) -> str:
        return " | ".join(str(t) for t in self.types)


SELECT_PARAMS: Mapping[str, SelectParam] = MappingProxyType({p.name: p for p in (
    SelectParam("temperature", (FLOAT,), "0 picks the best option; above 0 samples one, "
                "with probability proportional to exp(score / temperature)", 0.0,
                Range(low=0)),
    SelectParam("seed", (OptionalT(INT),), "a seed for a reproducible sampled choice", None,
                Range(integer=True, optional=True)),
    SelectParam("choices_method", (STR,), "how options are ranked: "
                + ", ".join(CHOICES_METHODS), CHOICES_METHODS[0], OneOf(CHOICES_METHODS)),
    SelectParam("model", (STR,), "the model that scores the options (by name, as gen's "
                "model=); default: the one the fn runs on", None),
)})
"""Every select parameter, by SGL name."""


__all__ = ["CHOICES_METHODS", "SELECT_PARAMS", "OneOf", "SelectParam"]
