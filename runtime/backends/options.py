"""What users of a remote endpoint see: `RemoteOptions` (how programs reach it) and
`RemoteError` (what it refused or did not answer). No httpx here: local runs never load it."""

from __future__ import annotations

from dataclasses import dataclass

from sglc.runtime.core import EngineError, InvalidRequest

API_CHOICES = ("auto", "sglc", "openai")


class RemoteError(EngineError):
    """A request the endpoint refused or did not answer, in the server's own words where it
    gave some; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteOptions:
    """How programs reach a remote endpoint (`Runtime(endpoint=URL, **options)`, `sglc run
    --endpoint URL`). Validated when built."""

    api_key: str | None = None  # sent as `Authorization: Bearer <key>`
    model: str | None = None  # the served model's id (default: the endpoint's first)
    tokenizer: str | None = None  # a local tokenizer (default: the endpoint's GET /tokenizer)
    api: str = "auto"  # "sglc" (native /generate, /score), "openai", or "auto": ask /v1/models
    max_in_flight: int = 64  # HTTP requests on the wire at once; more wait their turn
    timeout_s: float = 600.0  # the longest wait for the server's next bytes
    connect_timeout_s: float = 10.0
    max_retries: int = 4  # per request, on 429/502/503/504 and connection failures
    backoff_s: float = 0.5  # the first retry's wait; doubles each time (up to 30 s)

    def __post_init__(self) -> None:
        if self.api not in API_CHOICES:
            raise InvalidRequest(f"api must be one of {', '.join(API_CHOICES)}, got {self.api!r}")
        if self.max_in_flight < 1:
            raise InvalidRequest(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.max_retries < 0:
            raise InvalidRequest(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("timeout_s", "connect_timeout_s"):
            if not getattr(self, name) > 0:
                raise InvalidRequest(f"{name} must be > 0, got {getattr(self, name)}")
        if self.backoff_s < 0:
            raise InvalidRequest(f"backoff_s must be >= 0, got {self.backoff_s}")
        if self.api_key is not None and not self.api_key:
            raise InvalidRequest("api_key must be non-empty when given")
