"""The parameters of `gen`: one record each, read by the checker (type, constant values),
the IR verifier (names) and the executor (the `SamplingParams` field each one sets).

A parameter's allowed values are the rule of its `SamplingParams` field (field metadata in
sglc.runtime.core), so `sglc check` and the engine accept the same values and word a
violation the same way; a record may narrow it with its own `rule` (an SGL-level limit).
SGL gens are greedy with 128 new tokens unless they say otherwise: `default` is where an
SGL default differs from SamplingParams'. Adding a parameter is adding one record.

A gen's parameters come, most specific first, from the gen itself, the `with` defaults of
the fns on its call chain (innermost first), the call-level defaults a program was called
with (`prog.f(x, temperature=0.7)`, `sglc run -s temperature=0.7`), then `default` here.
Only `inheritable` parameters may be defaults (`n` changes a gen's type: never inherited).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.constraints.search import SearchPatterns
from sglc.lang.types import BOOL, FLOAT, INT, STR, ListT, OptionalT, Type
from sglc.runtime.core import ParamRule, Range, SamplingParams


@dataclass(frozen=True)
class GenParam:
    """`gen x(name=value)`: the SGL types `value` may have and the SamplingParams field it
    sets. Without a field, the executor reads the value itself, or, when `unserved` says
    why, refuses any value but None at run time (the check accepts it: another backend may
    serve it)."""

    name: str
    types: tuple[Type, ...]
    sampling_field: str | None
    doc: str
    default: float | int | None = None  # SGL's default where it differs (None: the engine's)
    rule: ParamRule | None = None  # narrower than the field's rule
    unserved: str | None = None
    inheritable: bool = True  # may be a fn's `with` or a call-level default

    @property
    def value_rule(self) -> ParamRule | None:
        """What a value must be: the record's own rule, else its SamplingParams field's."""
        if self.rule is not None or self.sampling_field is None:
            return self.rule
        return SamplingParams.rules().get(self.sampling_field)

    def error(self, value: object) -> str | None:
        """Why `value` is not allowed (worded with the SGL name), or None."""
        rule = self.value_rule
        return None if rule is None else rule.error(self.name, value)

    @property
    def type_text(self) -> str:
        return " | ".join(str(t) for t in self.types)

    def default_error(self, value: object) -> str | None:
        """Why `value` (a Python value) cannot be a call-level default of this parameter:
        not inheritable, not of its SGL types, or outside its rule; None when it can."""
        if not self.inheritable:
            return f"{self.name} cannot be a default: it changes what a gen gives, so each " \
                   "gen says it"
        if not any(_fits(value, t) for t in self.types):
            return f"{self.name} must be {self.type_text}, got {value!r}"
        return self.error(value)


def _fits(value: object, t: Type) -> bool:
    """Does a Python value have the SGL type `t` (of the few types gen parameters have)?"""
    if isinstance(t, OptionalT):
        return value is None or _fits(value, t.inner)
    if isinstance(t, ListT):
        return isinstance(value, (list, tuple)) and all(_fits(v, t.elem) for v in value)
    if t == BOOL:
        return isinstance(value, bool)
    if t == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if t == FLOAT:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) if t == STR else False


GEN_PARAMS: Mapping[str, GenParam] = MappingProxyType({p.name: p for p in (
    GenParam("max_tokens", (INT,), "max_new_tokens", "the most tokens to generate",
             default=128, rule=Range(low=1, integer=True)),
    GenParam("stop", (STR, ListT(STR)), "stop", "stop before any of these strings"),
    GenParam("stop_regex", (STR, ListT(STR)), "stop_regex", "stop before the first match of "
             "any of these regexes (searched in the output)", rule=SearchPatterns()),
    GenParam("min_tokens", (INT,), "min_tokens", "the fewest tokens before an end-of-text "
             "token or a stop may end the output"),
    GenParam("temperature", (FLOAT,), "temperature", "sampling temperature; 0 is greedy",
             default=0.0),
    GenParam("top_p", (FLOAT,), "top_p", "sample from the smallest set of tokens whose "
             "probability reaches top_p"),
    GenParam("top_k", (OptionalT(INT),), "top_k", "sample from the k most likely tokens "
             "(None: no limit)"),
    GenParam("min_p", (FLOAT,), "min_p", "drop tokens less likely than min_p times the most "
             "likely one"),
    GenParam("seed", (OptionalT(INT),), "seed", "a seed for reproducible sampling"),
    GenParam("frequency_penalty", (FLOAT,), "frequency_penalty", "penalize tokens by how "
             "often they occurred"),
    GenParam("presence_penalty", (FLOAT,), "presence_penalty", "penalize tokens that "
             "occurred"),
    GenParam("repetition_penalty", (FLOAT,), "repetition_penalty", "divide the scores of "
             "tokens seen so far by this (1: none)"),
    GenParam("ignore_eos", (BOOL,), "ignore_eos", "keep generating past the end-of-text "
             "token"),
    GenParam("stop_token_ids", (ListT(INT),), "stop_token_ids", "stop at any of these token "
             "ids"),
    GenParam("n", (INT,), "n", "how many samples: the gen's value is a list of n values and "
             "nothing is appended to the prompt", inheritable=False),
    GenParam("logprobs", (OptionalT(INT),), "logprobs", "record each generated token's "
             "logprob and its N likeliest alternatives (0: the token's only), read with "
             "meta(x).logprobs"),
    GenParam("skip_special_tokens", (BOOL,), "skip_special_tokens", "leave special tokens "
             "out of the text"),
    GenParam("adapter", (STR,), "lora", "the LoRA adapter to generate with (one the engine "
             "serves, from its lora_paths)"),
    GenParam("model", (STR,), None, "the model to generate with: one the program runs with "
             "by name (sglc run --model NAME=PATH, Runtime(models={...})), or \"auto\": the "
             "cheapest one a trained predictor expects to answer well (sglc run --mux "
             "PRED.json); a fn's `with model=` runs its calls on that model"),
)})
"""Every gen parameter, by SGL name."""


def sampling_defaults() -> dict[str, object]:
    """The SamplingParams fields a gen sets when its program does not (greedy, 128 tokens)."""
    return {p.sampling_field: p.default for p in GEN_PARAMS.values()
            if p.sampling_field is not None and p.default is not None}


AUTO_MODEL = "auto"
"""`model="auto"`: the run's multiplexer picks the model (sglc.runtime.mux); never a model's
name."""

__all__ = ["AUTO_MODEL", "GEN_PARAMS", "GenParam", "sampling_defaults"]
