"""Where SGL programs run: `Runtime` and the models behind it.

    Runtime()                        the embedded default model, in process (made on first use)
    Runtime(model_path=P, **opts)    `sglc.Engine(P, **opts)`, in process (made on first use)
    Runtime(engine=engine)           an `sglc.Engine` you made (and shut down)
    Runtime(client=client)           any `ModelClient`, e.g. a remote endpoint

local.py   LocalEngine: the ModelClient of an in-process sglc.Engine

The executor sees only a `ModelClient` (`sglc.runtime.executor.client`); a new backend (a
remote `sglc serve`, an OpenAI-compatible server) is a module here implementing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sglc.runtime.backends.local import LocalEngine
from sglc.runtime.executor.client import ModelClient

if TYPE_CHECKING:
    from sglc.runtime.engine import Engine


class Runtime:
    """Where programs run: a model behind a `ModelClient`. Use it as a context manager, or
    `close()` it, to shut down an engine it created."""

    def __init__(
        self,
        engine: Engine | None = None,
        model_path: str | Path | None = None,
        *,
        client: ModelClient | None = None,
        **engine_options: Any,
    ) -> None:
        chosen = (engine is not None) + (client is not None)
        if chosen > 1 or (chosen and (model_path is not None or engine_options)):
            raise ValueError("give a Runtime one of: an engine, a client, or model_path and "
                             "engine options")
        self._engine = engine
        self._client = client
        self._owns_engine = not chosen
        self.model_path = model_path
        self.engine_options = engine_options

    @property
    def engine(self) -> Engine:
        """The in-process engine, created on first use; a runtime given a client has none."""
        if self._engine is None:
            if self._client is not None:
                raise ValueError("this Runtime runs on a ModelClient, not an in-process engine")
            # NOTE: imported here so that `import sglc` and compiling programs stay free of
            # torch; the engine loads with the first program that runs.
            from sglc.runtime.engine import Engine

            self._engine = Engine(self.model_path, **self.engine_options)
        return self._engine

    @property
    def client(self) -> ModelClient:
        """What the executor calls: the given client, or the local engine's."""
        if self._client is None:
            self._client = LocalEngine(self.engine)
        return self._client

    def close(self) -> None:
        """Shut down the engine if this runtime created it."""
        if self._owns_engine and self._engine is not None:
            self._engine.shutdown()
            self._engine = None
            self._client = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LocalEngine", "Runtime"]
