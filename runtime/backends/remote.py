"""`RemoteClient`: the executor's `ModelClient` over HTTP, for an `sglc serve` endpoint or any
OpenAI-compatible server (vLLM, SGLang, ...).

    RemoteClient(url, RemoteOptions(...))   connects now: which API and model
                                            (server_info.py), the tokenizer, then one wire:
      sglc serve        NativeWire: /generate with the SamplingParams as they are, /score
      OpenAI-compatible OpenAIWire: /v1/completions, features probed once

Every request runs on the transport's IO loop (http.py: bounded, retried, timed out); its
Output comes back through the executor's callback, with `error` set when the endpoint failed
it, so the executor reports the failure at the gen. Prefetches (max_new_tokens=0) are real
requests: the server's radix cache then holds a fan-out's shared prefix, and the branches'
`usage` report it as cached tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sglc.runtime.backends.http import Transport
from sglc.runtime.backends.native_wire import NativeWire
from sglc.runtime.backends.openai_wire import OpenAIWire
from sglc.runtime.backends.options import RemoteError, RemoteOptions
from sglc.runtime.backends.server_info import (
    ServerInfo,
    fetch_tokenizer_files,
    load_tokenizer,
    probe_server,
)
from sglc.runtime.backends.wire import RemoteScore, Wire, failed_output
from sglc.runtime.core import EngineError, Output, SamplingParams, StreamDelta
from sglc.runtime.executor.client import Tokenizer

log = logging.getLogger(__name__)
T = TypeVar("T")


class RemoteClient:
    """A `ModelClient` for a model behind an HTTP endpoint. Close it (or use it as a context
    manager) to end its IO thread and cancel what is in flight."""

    def __init__(self, endpoint: str, options: RemoteOptions | None = None) -> None:
        self.endpoint = _base_url(endpoint)
        self.options = options or RemoteOptions()
        self.transport = Transport(self.endpoint, self.options)
        try:
            self.info: ServerInfo = self.transport.call(probe_server(self.transport, self.options))
            files = None if self.options.tokenizer else self.transport.call(
                fetch_tokenizer_files(self.transport))
            self._tokenizer = load_tokenizer(self.options.tokenizer, files, self.endpoint)
        except BaseException:
            self.transport.close()
            raise
        self.wire: Wire = (NativeWire(self.transport, self.info.model) if self.info.api == "sglc"
                           else OpenAIWire(self.transport, self.info.model, self._tokenizer))

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def submit(
        self,
        prompts: Sequence[list[int]],
        params: Sequence[SamplingParams],
        *,
        rids: Sequence[str],
        on_output: Callable[[Output], None],
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> None:
        if not len(prompts) == len(params) == len(rids):
            raise EngineError(f"got {len(prompts)} prompts, {len(params)} sampling params and "
                              f"{len(rids)} request ids")
        for prompt, sampling, rid in zip(prompts, params, rids, strict=True):
            self.transport.spawn(self._request(rid, list(prompt), sampling, on_output, on_delta))

    async def _request(self, rid: str, prompt_ids: list[int], params: SamplingParams,
                       on_output: Callable[[Output], None],
                       on_delta: Callable[[StreamDelta], None] | None) -> None:
        """One request, on the IO loop: every sample's Output reaches `on_output`, failed or
        not (unless the request is cancelled: the client closed)."""
        deltas = None if on_delta is None else lambda d: _call_back(on_delta, d)
        try:
            outputs = await self.wire.generate(rid, prompt_ids, params, deltas)
            missing = set(range(params.n)) - {out.index for out in outputs}
            outputs += [failed_output(rid, i, len(prompt_ids), "the endpoint sent no output "
                                      "for this sample") for i in sorted(missing)]
        except EngineError as exc:
            outputs = [failed_output(rid, i, len(prompt_ids), str(exc)) for i in range(params.n)]
        except Exception as exc:  # noqa: BLE001 - a bug of ours fails the request, not the loop
            log.exception("remote request %s failed", rid)
            outputs = [failed_output(rid, i, len(prompt_ids), f"{type(exc).__name__}: {exc}")
                       for i in range(params.n)]
        for out in outputs:
            _call_back(on_output, out)

    async def score(self, prompt_ids: list[int],
                    options: Sequence[str | list[int]]) -> list[RemoteScore]:
        return await self.transport.run(self.wire.score(list(prompt_ids), list(options)))

    def prebuild(self, regexes: Sequence[str]) -> None:
        """Start what the program's constrained gens need (an OpenAI server: the regex probe)."""
        if regexes:
            future = self.transport.spawn(self.wire.prepare(list(regexes)))
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a hint only

    def stats(self) -> dict[str, object]:
        """The API spoken, the model, the HTTP requests sent (retries among them) and, for
        an OpenAI-compatible server, what its probed features turned out to be."""
        stats: dict[str, object] = {
            "api": self.info.api, "model": self.info.model,
            "requests": self.transport.num_requests, "retries": self.transport.num_retries}
        if isinstance(self.wire, OpenAIWire):
            stats["features"] = self.wire.features.known()
        return stats

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _base_url(endpoint: str) -> str:
    """`http://host:port` from what users paste: a trailing `/` or `/v1` (the OpenAI SDK's
    base_url) is dropped."""
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise EngineError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
    return url.removesuffix("/v1")


def _call_back(callback: Callable[[T], None], item: T) -> None:
    try:
        callback(item)
    except RuntimeError:  # the caller's event loop is closed: nobody waits for it any more
        pass


__all__ = ["RemoteClient", "RemoteError", "RemoteOptions"]
