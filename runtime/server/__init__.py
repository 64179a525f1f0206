"""`sglc serve`: the engine behind an OpenAI-compatible and native HTTP API.

    from sglc.runtime.server import ServerConfig, create_app
    app = create_app(engine, ServerConfig(api_key="..."))      # a FastAPI app
    python -m sglc.runtime.server --model PATH --port 30000      # the same as `sglc serve`

Modules: config (ServerConfig), protocol (request models), sampling (request -> engine
params), jobs (admission, engine jobs), connection (SSE, disconnects), responses (OpenAI
bodies), openai_routes / native_routes / programs (routes), metrics, middleware (auth, body
limit), errors (OpenAI-shaped errors), app (create_app), cli (the command).

`create_app` and `ServerConfig` load on first use, so the CLI's parser setup
(`add_serve_command`) does not import FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"create_app": "sglc.runtime.server.app", "ServerConfig": "sglc.runtime.server.config"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sglc.runtime.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
