"""What a running SGL call can read back about itself: its prompt as text and as chat
messages (`text()`, `messages()`), and what each gen and select did (`meta(x)`).

The builtins that read them get the call's `CallContext` (the executor implements it over
a frame); their values have these builtin schema types, which SGL code may also name
(`let m: GenMeta = meta(answer)`):

    Message       role, content                          an item of messages()
    GenMeta       text, finish_reason, prompt_tokens, cached_tokens, completion_tokens,
                  logprobs (a list of TokenLogprob when the gen asked for `logprobs=`)
    TokenLogprob  token, token_id, logprob, top (its `logprobs=N` likeliest alternatives)
    SelectMeta    choice, index, options, method, scores (what the method ranked by),
                  logprobs, num_tokens, token_logprobs (per option)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from sglc.lang.types import FLOAT, INT, STR, ListT, LiteralT, OptionalT, SchemaInfo, SchemaT


class CallContext(Protocol):
    """The running call, as the state builtins see it."""

    def text(self) -> str:
        """The prompt so far, as the model's chat template renders it."""
        ...

    def messages(self) -> list[dict[str, str]]:
        """The chat turns so far (`role`, `content`), the open one included."""
        ...

    def meta(self, name: str) -> Any:
        """What the last run of gen or select `name` in this call did (a GenMeta or a
        SelectMeta dict; a list of GenMeta for a gen with `n=`)."""
        ...


def _schema(name: str, doc: str, **fields: Any) -> SchemaInfo:
    return SchemaInfo(name, dict(fields), doc)


ROLE = LiteralT(("system", "user", "assistant"))
MESSAGE = _schema("Message", "One chat turn of the prompt.", role=ROLE, content=STR)
TOP_LOGPROB = _schema("TopLogprob", "A likely alternative to a generated token.",
                      token=STR, token_id=INT, logprob=FLOAT)
TOKEN_LOGPROB = _schema("TokenLogprob", "A generated token and its log-probability.",
                        token=STR, token_id=INT, logprob=FLOAT,
                        top=ListT(SchemaT(TOP_LOGPROB)))
GEN_META = _schema(
    "GenMeta", "What one gen did.",
    text=STR, finish_reason=LiteralT(("stop", "length", "abort")), prompt_tokens=INT,
    cached_tokens=INT, completion_tokens=INT,
    logprobs=OptionalT(ListT(SchemaT(TOKEN_LOGPROB))))
SELECT_META = _schema(
    "SelectMeta", "What one select did: every option's score.",
    choice=STR, index=INT, options=ListT(STR), method=STR, scores=ListT(FLOAT),
    logprobs=ListT(FLOAT), num_tokens=ListT(INT), token_logprobs=ListT(ListT(FLOAT)))

STATE_SCHEMAS: Mapping[str, SchemaInfo] = MappingProxyType(
    {s.name: s for s in (MESSAGE, TOP_LOGPROB, TOKEN_LOGPROB, GEN_META, SELECT_META)})
"""The builtin schema types, by name (a program's own schema of the same name wins)."""


__all__ = ["GEN_META", "MESSAGE", "SELECT_META", "STATE_SCHEMAS", "TOKEN_LOGPROB",
           "TOP_LOGPROB", "CallContext"]
