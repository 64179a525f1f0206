"""What the executor needs of a model: the `ModelClient` protocol.

    tokenizer          prompts are built here, as token ids (encode, decode, chat template)
    submit(...)        queue requests; each Output (and, if asked, each StreamDelta) comes back
                       through a callback, on any thread
    score(...)         the log-likelihood of each option after a prompt, in one batched pass
    prebuild(regexes)  a hint before a program runs: the regexes its constrained gens use

The executor imports nothing else of a model's side. `sglc.runtime.backends.LocalEngine`
implements the protocol over an in-process `sglc.Engine`; a remote endpoint (an `sglc serve`
server, an OpenAI-compatible one) implements it too, and `Runtime(client=...)` runs programs
on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from sglc.runtime.core import Output, SamplingParams, StreamDelta


@runtime_checkable
class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer that prompt streams use. `chat_template` is None
    for a base model (streams then write a plain "Role: content" transcript)."""

    chat_template: str | None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str: ...

    def apply_chat_template(
        self, conversation: list[dict[str, str]], tokenize: bool = True,
        add_generation_prompt: bool = False,
    ) -> str: ...


@runtime_checkable
class OptionScore(Protocol):
    """How likely one option is after the prompt."""

    @property
    def logprob(self) -> float: ...  # the sum over the option's tokens

    @property
    def num_tokens(self) -> int: ...

    @property
    def normalized(self) -> float: ...  # logprob per token


@runtime_checkable
class ModelClient(Protocol):
    """A model the executor can call. Methods are called on the event loop's thread and must
    not block it for long; `submit`'s callbacks may run on any thread. A failure of the model
    raises `EngineError` (`sglc.runtime.core`), or comes back as one request's `Output.error`;
    the executor reports either at the gen or select in the program."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    def submit(
        self,
        prompts: Sequence[list[int]],
        params: Sequence[SamplingParams],
        *,
        rids: Sequence[str],
        on_output: Callable[[Output], None],
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> None:
        """Queue one request per prompt (their `params`, request ids `rids`), scheduled
        together where the model can. `on_output` gets each request's final Output (with
        `error` set when it failed); `on_delta`, when given, each piece of text as it is
        decoded. May raise for requests it refuses outright."""
        ...

    async def score(
        self, prompt_ids: list[int], options: Sequence[str | list[int]]
    ) -> list[OptionScore]:
        """One score per option (text, or token ids that directly follow the prompt)."""
        ...

    def prebuild(self, regexes: Sequence[str]) -> None:
        """Prepare to decode under these regexes (build their automata) without waiting. A
        hint: a client may ignore it; a bad regex fails later, with its request."""
        ...


__all__ = ["ModelClient", "OptionScore", "Tokenizer"]
