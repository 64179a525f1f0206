"""Where SGL programs run: `Runtime` and the models behind it, each a `ModelClient`.

runtime.py          Runtime: an in-process engine, a remote endpoint, or any ModelClient
local.py            LocalEngine: the ModelClient of an in-process sglc.Engine
remote.py           RemoteClient: the ModelClient of an HTTP endpoint (sglc serve, vLLM, ...)
options.py          RemoteOptions, RemoteError: what users of an endpoint set and see
http.py             Transport: the endpoint's IO thread, bounded requests, retries, timeouts
server_info.py      what an endpoint is (API, model) and its tokenizer, asked once
wire.py             Wire: model calls as requests of one API; RemoteScore
native_wire.py      sglc serve's native /generate and /score
openai_wire.py      OpenAI /v1/completions (+ openai_features.py: what the server can do)

The executor sees only a `ModelClient` (`sglc.runtime.executor.client`); a new backend is a
module here implementing it.
"""

from __future__ import annotations

from sglc.runtime.backends.local import LocalEngine
from sglc.runtime.backends.options import RemoteError, RemoteOptions
from sglc.runtime.backends.runtime import Runtime

__all__ = ["LocalEngine", "RemoteError", "RemoteOptions", "Runtime"]
