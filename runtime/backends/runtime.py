"""`Runtime`: where SGL programs run.

    Runtime()                          the embedded default model, in process (made on first use)
    Runtime(model_path=P, **opts)      `sglc.Engine(P, **opts)`, in process (made on first use)
    Runtime(engine=engine)             an `sglc.Engine` you made (and shut down)
    Runtime(endpoint=URL, **options)   a remote `sglc serve` or OpenAI-compatible server (options:
                                       RemoteOptions' fields: api_key, model, tokenizer, ...)
    Runtime(client=client)             any `ModelClient`
    Runtime(models={"draft": P1, "judge": P2}, **opts)
                                       several models by name, one in-process engine each
                                       (a path, or an `sglc.Engine` you made); gens and fns
                                       pick one with `model="judge"`. With `model_path` (or
                                       `engine`) too, that one is the default, named
                                       "default"; else the first named one is.
    Runtime(..., mux=MuxConfig(...) or PRED.json)
                                       `gen x(model="auto")` picks among the models by a
                                       trained predictor (sglc.runtime.mux)

The same program gives the same greedy outputs on each: the executor only sees the client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sglc.runtime.backends.local import LocalEngine
from sglc.runtime.backends.options import RemoteOptions
from sglc.runtime.executor.client import ModelClient
from sglc.runtime.mux import AUTO, CostFn, Multiplexer, MuxConfig

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
        models: Mapping[str, str | Path | Engine] | None = None,
        mux: MuxConfig | str | Path | None = None,
        **options: Any,
    ) -> None:
        self._named = _check_models(models, client is not None or endpoint is not None)
        self.mux_config = MuxConfig(predictor=mux) if isinstance(mux, (str, Path)) else mux
        self._multiplexer: Multiplexer | None = None
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
        # the default model is the first named one, unless a model_path or engine is given
        self._named_default = next(iter(self._named)) if self._named and engine is None \
            and model_path is None else None
        self._named_clients: dict[str, ModelClient] = {}
        self._owned_engines: list[Engine] = []

    @property
    def default_model(self) -> str:
        """The default model's name: "default", or the first of `models` when only they
        are given."""
        return self._named_default or "default"

    @property
    def model_names(self) -> list[str]:
        """The names a program's `model=` may use ("auto" with a multiplexer)."""
        auto = [AUTO] if self.mux_config is not None else []
        return list(dict.fromkeys([self.default_model, *self._named, *auto]))

    @property
    def multiplexer(self) -> Multiplexer | None:
        """What `model="auto"` asks, checked against the models (their engines made on
        first use); None without `mux`."""
        if self.mux_config is None:
            return None
        if self._multiplexer is None:
            clients = {self.default_model: self.client, **self.model_clients}
            self._multiplexer = Multiplexer(self.mux_config, list(clients),
                                            {m: request_cost(c) for m, c in clients.items()})
        return self._multiplexer

    @property
    def model_clients(self) -> dict[str, ModelClient]:
        """Each named model's client (their engines made on first use); the default model
        is `client`."""
        for name, model in self._named.items():
            if name in self._named_clients:
                continue
            if name == self._named_default:
                self._named_clients[name] = self.client
            elif isinstance(model, (str, Path)):
                from sglc.runtime.engine import Engine  # NOTE: lazily, as `engine` does

                engine = Engine(model, **self.engine_options)
                self._owned_engines.append(engine)
                self._named_clients[name] = LocalEngine(engine)
            else:
                self._named_clients[name] = LocalEngine(model)
        return dict(self._named_clients)

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

            default = self._named.get(self._named_default) if self._named_default else None
            if default is not None and not isinstance(default, (str, Path)):
                self._engine = default  # an Engine given by name: the caller shuts it down
                self._owns_engine = False
            else:
                self._engine = Engine(default or self.model_path, **self.engine_options)
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
        """Shut down the engines, or close the connection, this runtime made."""
        for engine in self._owned_engines:
            engine.shutdown()
        self._owned_engines.clear()
        self._named_clients.clear()
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


def _check_models(models: Mapping[str, Any] | None, remote: bool) -> dict[str, Any]:
    """`models` as a dict of name -> path or Engine (ValueError naming what is wrong)."""
    if models is None:
        return {}
    if remote:
        raise ValueError("models= runs in-process engines; it cannot be combined with a "
                         "client or an endpoint")
    if not isinstance(models, Mapping) or not models:
        raise ValueError(f"models must be a non-empty dict of name -> model path (or "
                         f"sglc.Engine), got {models!r:.80}")
    for name, model in models.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"model name {name!r} must be a name (letters, digits, _)")
        if name == AUTO:
            raise ValueError(f"'{AUTO}' cannot name a model: model=\"{AUTO}\" asks the "
                             "multiplexer to pick one (Runtime(mux=...))")
        if not isinstance(model, (str, Path)) and not hasattr(model, "submit"):
            raise ValueError(f"models[{name!r}] must be a model path or an sglc.Engine, got "
                             f"{type(model).__name__}")
    return dict(models)


def request_cost(client: ModelClient) -> CostFn:
    """The cost of a request on `client`'s model: the FLOPs estimate the response cache
    uses for an in-process engine whose model is loaded here, else its tokens."""
    loaded = getattr(getattr(client, "engine", None), "loaded", None)
    if loaded is None:
        return lambda num_prompt, num_output: float(num_prompt + num_output)
    from sglc.runtime.engine.cached_responses import flops_model  # NOTE: torch, lazily

    return flops_model(loaded.config).request_flops
