"""What an OpenAI-compatible server can do beyond plain completions, each asked once, with a
tiny greedy request, the first time a program needs it.

    token_prompts     `prompt` as token ids (sglc, vLLM, SGLang), else text
    token_outputs     `return_tokens_as_token_ids` with `logprobs`: the sampled ids come back
                      (sglc, vLLM), else the prompt stream tokenizes the text itself
    regex_fields      how the server takes a regex: `regex` (sglc, SGLang), `guided_regex`
                      (vLLM before 0.10), `structured_outputs.regex` (vLLM) or not at all
    echo_logprobs     `echo` + `logprobs`: the prompt tokens' logprobs, for scoring selects
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sglc.runtime.backends.http import JSON, Transport
from sglc.runtime.backends.options import RemoteError

# (name, how a regex goes into the request body), tried in this order
REGEX_FIELDS: tuple[tuple[str, Callable[[str], dict[str, Any]]], ...] = (
    ("regex", lambda r: {"regex": r}),
    ("guided_regex", lambda r: {"guided_regex": r}),
    ("structured_outputs", lambda r: {"structured_outputs": {"regex": r}}),
)
_PROBE_REGEX = "zq"  # a text no model writes unconstrained after the probe prompt
TOKEN_ID_PREFIX = "token_id:"


class Features:
    """The probed features of one endpoint; each probe runs once (concurrent askers share
    it) on the transport's IO loop."""

    def __init__(self, transport: Transport, model: str, probe_prompt: list[int]) -> None:
        self.transport = transport
        self.model = model
        self.probe_prompt = probe_prompt  # a few token ids ("Hello")
        self._results: dict[str, asyncio.Future[Any]] = {}

    async def token_prompts(self) -> bool:
        return (await self._once("ids", self._probe_ids))[0]

    async def token_outputs(self) -> bool:
        return (await self._once("ids", self._probe_ids))[1]

    async def regex_field(self) -> str | None:
        """The name (in REGEX_FIELDS) of the way this server takes a regex, or None."""
        return await self._once("regex", self._probe_regex)

    async def echo_logprobs(self) -> bool:
        return await self._once("echo", self._probe_echo)

    def known(self) -> dict[str, object]:
        """What the probes so far found, by feature name."""
        found: dict[str, object] = {}
        for name, result in self._results.items():
            if result.done() and not result.cancelled() and result.exception() is None:
                value = result.result()
                if name == "ids":
                    found["token_prompts"], found["token_outputs"] = value
                else:
                    found[{"regex": "regex_field", "echo": "echo_logprobs"}[name]] = value
        return found

    async def _once(self, name: str, probe: Callable[[], Awaitable[Any]]) -> Any:
        if name not in self._results:
            self._results[name] = asyncio.ensure_future(probe())
        result = self._results[name]
        try:
            return await asyncio.shield(result)
        except RemoteError:
            if self._results.get(name) is result:  # not an answer: ask again next time
                del self._results[name]
            raise

    async def _try(self, **fields: Any) -> JSON | None:
        """A tiny greedy completion; None when the server refuses it with a 4xx."""
        body = {"model": self.model, "max_tokens": 1, "temperature": 0, **fields}
        try:
            return await self.transport.post_json("/v1/completions", body)
        except RemoteError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (
                    401, 403, 404, 429):
                return None
            raise

    async def _probe_ids(self) -> tuple[bool, bool]:
        data = await self._try(prompt=self.probe_prompt, logprobs=0,
                               return_tokens_as_token_ids=True)
        if data is not None:
            tokens = _first_choice(data).get("logprobs", {}) or {}
            first = (tokens.get("tokens") or [""])[0]
            return True, isinstance(first, str) and first.startswith(TOKEN_ID_PREFIX)
        return (await self._try(prompt=self.probe_prompt)) is not None, False

    async def _probe_regex(self) -> str | None:
        prompt = self.probe_prompt if await self.token_prompts() else "Hello"
        for name, put in REGEX_FIELDS:
            data = await self._try(prompt=prompt, **put(_PROBE_REGEX), max_tokens=4)
            if data is not None and re.fullmatch(_PROBE_REGEX, _first_choice(data).get("text")
                                                 or ""):
                return name
        return None

    async def _probe_echo(self) -> bool:
        if not await self.token_prompts():
            return False  # the server's tokens could not be matched to the options'
        data = await self._try(prompt=self.probe_prompt, echo=True, logprobs=0)
        if data is None:
            return False
        logprobs = _first_choice(data).get("logprobs") or {}
        return len(logprobs.get("token_logprobs") or ()) >= len(self.probe_prompt)


def regex_body(field: str, regex: str) -> dict[str, Any]:
    return dict(REGEX_FIELDS)[field](regex)


def _first_choice(data: JSON) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    return choices[0] if choices and isinstance(choices[0], dict) else {}
