"""`Runtime`: where SGL programs run.

    Runtime()                          the embedded default model, in process (made on first use)
    Runtime(model_path=P, **opts)      `sglc.Engine(P, **opts)`, in process (made on first use)
    Runtime(engine=engine)             an `sglc.Engine` you made (and shut down)
    Runtime(endpoint=URL, **options)   a remote `sglc serve` or OpenAI-compatible server (options:
                                       RemoteOptions' fields: api_key, model, tokenizer, ...)
    Runtime(client=client)             any `ModelClient`

The same program gives the same greedy outputs on each: the executor only sees the client.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sglc.runtime.backends.local import LocalEngine
from sglc.runtime.backends.options import RemoteOptions
from sglc.runtime.executor.client import ModelClient

if TYPE_CHECKING:
    from sglc.runtime.backends.remote import RemoteClient
    from sglc.runtime.engine import Engine


class Runtime:
    """Where programs run: a model behind a `ModelClient`. Use it as a context manager, or
    `close()` it, to shut down an engine it created or close a connection it opened."""

    def __init__(
        self,
        engine: Engine | None = None,
        model_path: str | Path | None = None,
        *,
        client: ModelClient | None = None,
        endpoint: str | None = None,
        **options: Any,
    ) -> None:
        chosen = (engine is not None) + (client is not None) + (endpoint is not None)
        if chosen > 1 or (chosen and model_path is not None) or (
                (engine is not None or client is not None) and options):
            raise ValueError("give a Runtime one of: an engine, a client, an endpoint (and "
                             "its options), or model_path and engine options")
        self.remote_options: RemoteOptions | None = None
        if endpoint is not None:
            names = {f.name for f in dataclasses.fields(RemoteOptions)}
            unknown = sorted(set(options) - names)
            if unknown:
                raise ValueError(f"unknown endpoint option(s) {', '.join(unknown)}; the "
                                 f"options are {', '.join(sorted(names))}")
            self.remote_options = RemoteOptions(**options)
            options = {}
        self._engine = engine
        self._client = client
        self._owns_engine = engine is None and client is None and endpoint is None
        self._owns_client = endpoint is not None
        self.endpoint = endpoint
        self.model_path = model_path
        self.engine_options = options

    @property
    def engine(self) -> Engine:
        """The in-process engine, created on first use; a runtime on a client has none."""
        if self._engine is None:
            if self._client is not None or self.endpoint is not None:
                raise ValueError("this Runtime runs on a ModelClient (an endpoint), not an "
                                 "in-process engine")
            # NOTE: imported here so that `import sglc` and compiling programs stay free of
            # torch; the engine loads with the first program that runs.
            from sglc.runtime.engine import Engine

            self._engine = Engine(self.model_path, **self.engine_options)
        return self._engine

    @property
    def client(self) -> ModelClient:
        """What the executor calls: the given client, the endpoint's (connected on first
        use), or the local engine's."""
        if self._client is None:
            if self.endpoint is not None:
                self._client = self._connect()
            else:
                self._client = LocalEngine(self.engine)
        return self._client

    def _connect(self) -> RemoteClient:
        # NOTE: imported here so that local runs never load httpx and transformers' tokenizer
        from sglc.runtime.backends.remote import RemoteClient

        assert self.endpoint is not None and self.remote_options is not None
        return RemoteClient(self.endpoint, self.remote_options)

    def close(self) -> None:
        """Shut down the engine, or close the connection, if this runtime made it."""
        if self._owns_engine and self._engine is not None:
            self._engine.shutdown()
            self._engine = None
            self._client = None
        if self._owns_client and self._client is not None:
            close = getattr(self._client, "close", None)
            if close is not None:
                close()
            self._client = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
