"""Programs on several models: which model each gen, select and call runs on.

A program runs with a default model and, optionally, named ones (`sglc run --model
judge=PATH`, `Runtime(models={...})`). `gen x(model="judge")`, `select y(model="judge")` and
a fn's `with model="judge"` (or a call-level `model=` default) pick one by name; anything
else runs on the default. Each model has its own `ModelCalls`, so a wave of calls to one
model is batched by that model's engine.

A call's prompt is token ids of one tokenizer: the one of the model its fn runs on (the
`model` default in force when the call starts). A gen or select on another model uses that
prompt as it is when the two models share a tokenizer (same vocabulary, chat template and
special tokens); otherwise it is an error at the gen, whose remedy is a fn for that model
(each call starts a new prompt).
"""

from __future__ import annotations

from collections.abc import Mapping

from sglc.runtime.executor.client import Tokenizer
from sglc.runtime.executor.errors import GenError
from sglc.runtime.executor.model_calls import ModelCalls

_PROBE = "Hello, world! 12*7 = 84"  # encoded by both tokenizers: the special tokens they add


class ModelChoice:
    """The `ModelCalls` of the default model (`None`) and of each named one."""

    def __init__(self, default: ModelCalls, named: Mapping[str, ModelCalls] | None = None,
                 default_name: str = "default") -> None:
        self.default = default
        self.named = dict(named or {})
        self.default_name = default_name
        self._same: dict[tuple[int, int], bool] = {}

    @property
    def names(self) -> list[str]:
        """The names a program may use: the default's, then the named ones."""
        return list(dict.fromkeys([self.default_name, *self.named]))

    def calls(self, name: str | None, what: str) -> ModelCalls:
        """The model called `name` (None: the default); GenError for one the program does
        not run with (`what` names the gen, select or call that asked)."""
        if name is None or name == self.default_name:
            return self.default
        if not isinstance(name, str):
            raise GenError(f"{what}: model must be a model's name (a str), got {name!r:.60}")
        calls = self.named.get(name)
        if calls is None:
            raise GenError(f"{what}: no model '{name}' in this run",
                           hint=f"the models are {', '.join(self.names)} (sglc run --model "
                                f"NAME=PATH, Runtime(models={{NAME: PATH}}))")
        return calls

    def check_prompt(self, prompt_tokenizer: Tokenizer, name: str | None, calls: ModelCalls,
                     what: str) -> None:
        """GenError when the prompt, built with `prompt_tokenizer`, cannot go to `calls`."""
        if self.same_tokenizer(prompt_tokenizer, calls.tokenizer):
            return
        raise GenError(f"{what} runs on model '{name}', whose tokenizer differs from the one "
                       "this call's prompt was built with",
                       hint=f"move it into a fn declared `with model=\"{name}\"` (a call starts "
                            "its own prompt, tokenized for its model)")

    def same_tokenizer(self, a: Tokenizer, b: Tokenizer) -> bool:
        if a is b:
            return True
        key = (id(a), id(b))
        if key not in self._same:
            self._same[key] = _same_tokenizer(a, b)
        return self._same[key]


def _same_tokenizer(a: Tokenizer, b: Tokenizer) -> bool:
    """Same vocabulary, chat template and special tokens added on encoding."""
    vocab_a, vocab_b = getattr(a, "get_vocab", None), getattr(b, "get_vocab", None)
    if vocab_a is None or vocab_b is None or vocab_a() != vocab_b():
        return False
    if getattr(a, "chat_template", None) != getattr(b, "chat_template", None):
        return False
    return list(a.encode(_PROBE, add_special_tokens=True)) == \
        list(b.encode(_PROBE, add_special_tokens=True))
