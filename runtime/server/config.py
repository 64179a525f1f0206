"""ServerConfig: the HTTP server's own options and limits (the engine has EngineConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sglc.runtime.core import InvalidRequest


@dataclass(frozen=True)
class ServerConfig:
    """Validated once; `create_app(engine, config)` reads it, nothing mutates it."""

    model_name: str = "default"  # the id clients put in `model` (404 for any other)
    api_key: str | None = None  # when set, every route but /health needs `Bearer <key>`
    max_body_bytes: int = 4 << 20  # larger request bodies get 413
    max_n: int = 16  # samples per prompt
    max_prompts: int = 64  # prompts in one /v1/completions or /generate request
    max_tokens: int | None = None  # per sample; None = the engine's context length
    max_in_flight: int = 512  # sequences (prompts x n) admitted at once; then 503
    max_logprobs: int = 20  # top alternatives per token
    programs: dict[str, Path] = field(default_factory=dict)  # name -> .sgl registered at start
    allow_program_upload: bool = True  # POST /v1/programs/run with `source`
    program_timeout_s: float = 300.0  # a program run past this is cancelled (504)
    max_program_runs: int = 4  # programs running at once (each on its own thread); then 503

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_n", "max_prompts", "max_in_flight",
                     "max_program_runs"):
            if getattr(self, name) < 1:
                raise InvalidRequest(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidRequest(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.max_logprobs < 0:
            raise InvalidRequest(f"max_logprobs must be >= 0, got {self.max_logprobs}")
        if self.program_timeout_s <= 0:
            raise InvalidRequest("program_timeout_s must be > 0")
        if self.api_key is not None and not self.api_key:
            raise InvalidRequest("api_key must be non-empty when given")
