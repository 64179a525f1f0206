"""What a remote endpoint is, asked once when a client connects: which API it speaks, which
model it serves, and the tokenizer prompts are built with.

    GET /v1/models   the served ids; `owned_by: "sglc"` is an `sglc serve` (native routes)
    GET /tokenizer   an `sglc serve`'s tokenizer files, loaded here with transformers; other
                     servers need a local copy: RemoteOptions.tokenizer, `--tokenizer PATH`
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sglc.runtime.backends.http import Transport
from sglc.runtime.backends.options import RemoteError, RemoteOptions
from sglc.runtime.core import EngineError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class ServerInfo:
    api: str  # "sglc" (native /generate and /score) or "openai" (/v1/completions)
    model: str  # the id requests name
    max_model_len: int | None  # the context length, where the server says


async def probe_server(transport: Transport, options: RemoteOptions) -> ServerInfo:
    """The endpoint's API and model (EngineError when it serves no such model)."""
    listing = await transport.get_json("/v1/models")
    cards = listing.get("data") if isinstance(listing, dict) else None
    cards = [c for c in cards or () if isinstance(c, dict) and isinstance(c.get("id"), str)]
    if not cards:
        raise EngineError(f"{transport.base_url}/v1/models lists no model: {listing!r:.200}")
    ids = [c["id"] for c in cards]
    if options.model is None:
        card = cards[0]
    elif options.model in ids:
        card = cards[ids.index(options.model)]
    else:
        raise EngineError(f"{transport.base_url} serves {', '.join(map(repr, ids))}, not "
                          f"{options.model!r} (model, --model)")
    api = options.api
    if api == "auto":
        api = "sglc" if card.get("owned_by") == "sglc" else "openai"
    length = card.get("max_model_len")
    return ServerInfo(api, card["id"], length if isinstance(length, int) else None)


async def fetch_tokenizer_files(transport: Transport) -> dict[str, bytes] | None:
    """The endpoint's tokenizer files (`GET /tokenizer`), or None where it has no such route."""
    try:
        body = await transport.get_json("/tokenizer")
    except RemoteError as exc:
        if exc.status in (404, 405):
            return None
        raise
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, dict) or not files:
        raise EngineError(f"{transport.base_url}/tokenizer sent no files")
    try:
        return {name: base64.b64decode(data, validate=True) for name, data in files.items()}
    except (binascii.Error, TypeError):
        raise EngineError(f"{transport.base_url}/tokenizer sent files that are not "
                          "base64") from None


def load_tokenizer(local: str | None, files: dict[str, bytes] | None,
                   base_url: str) -> PreTrainedTokenizerBase:
    """A local tokenizer (a directory or a Hugging Face name), else the endpoint's files."""
    from transformers import AutoTokenizer  # NOTE: heavy; loaded when a client connects

    if local is not None:
        try:
            return AutoTokenizer.from_pretrained(local)
        except Exception as exc:  # transformers raises many kinds for a bad tokenizer
            raise EngineError(f"cannot load the tokenizer {local!r} (tokenizer, --tokenizer): "
                              f"{exc}") from None
    if files is None:
        raise EngineError(
            f"{base_url} does not serve its tokenizer (no GET /tokenizer route, which "
            "`sglc serve` has); give a local copy of the served model's tokenizer: "
            "tokenizer=PATH, or `--tokenizer PATH` (a directory or a Hugging Face name)")
    with tempfile.TemporaryDirectory(prefix="sglc-remote-tokenizer-") as folder:
        for name, data in files.items():
            if Path(name).name != name or name.startswith("."):
                raise EngineError(f"{base_url}/tokenizer sent a bad file name {name!r}")
            (Path(folder) / name).write_bytes(data)
        try:
            return AutoTokenizer.from_pretrained(folder)
        except Exception as exc:  # transformers raises many kinds for a bad tokenizer
            raise EngineError(f"cannot load the tokenizer {base_url} serves: {exc}") from None
