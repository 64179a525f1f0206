"""The parameters of `gen`: one record each, read by the checker (type, constant values),
the IR verifier (names) and the executor (the `SamplingParams` field each one sets).

A parameter's allowed values are the rule of its `SamplingParams` field (field metadata in
sglc.runtime.core), so `sglc check` and the engine accept the same values and word a
violation the same way; a record may narrow it with its own `rule` (an SGL-level limit).
SGL gens are greedy with 128 new tokens unless they say otherwise: `default` is where an
SGL default differs from SamplingParams'. Adding a parameter is adding one record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

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


GEN_PARAMS: Mapping[str, GenParam] = MappingProxyType({p.name: p for p in (
    GenParam("max_tokens", (INT,), "max_new_tokens", "the most tokens to generate",
             default=128, rule=Range(low=1, integer=True)),
    GenParam("stop", (STR, ListT(STR)), "stop", "stop before any of these strings"),
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
    GenParam("ignore_eos", (BOOL,), "ignore_eos", "keep generating past the end-of-text "
             "token"),
    GenParam("adapter", (STR,), "lora", "the LoRA adapter to generate with (one the engine "
             "serves, from its lora_paths)"),
)})
"""Every gen parameter, by SGL name."""


def sampling_defaults() -> dict[str, object]:
    """The SamplingParams fields a gen sets when its program does not (greedy, 128 tokens)."""
    return {p.sampling_field: p.default for p in GEN_PARAMS.values()
            if p.sampling_field is not None and p.default is not None}


__all__ = ["GEN_PARAMS", "GenParam", "sampling_defaults"]
