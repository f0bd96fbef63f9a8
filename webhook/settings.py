"""The webhook's settings: parsed once at the edge (the CLI) and passed down frozen."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class WebhookSettings(BaseModel):
    """Limits of the app itself; the defaults are what the API server's traffic needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The API server sends at most 3 MiB; Istio caps the webhook body at 6 MiB.
    max_body_bytes: int = Field(default=6 * MIB, gt=0)
    # A body must arrive within this many seconds of the request's headers: well under the API
    # server's 10 s webhook timeout, so a trickling client is answered (408) and cut off.
    body_read_timeout: float = Field(default=3.0, gt=0)
    # Bodies at least this big are parsed and decided in a worker thread, at most
    # `offload_threads` at once. What that buys is bounded memory (a 6 MiB body of tiny JSON
    # objects parses to ~150 MiB) and the event loop getting turns during the injector's
    # Python code; `json.loads` holds the GIL throughout, so a ~3 MiB pod still costs the loop
    # a few milliseconds (see hack/bench/bench_webhook.py).
    offload_threshold_bytes: int = Field(default=128 * 1024, ge=0)
    offload_threads: int = Field(default=2, gt=0)
    # Reviews read and decided at once; beyond, a review is answered 503 before its body is
    # read. Bodies of `offload_threshold_bytes` or more also share `max_buffered_bytes` (by
    # their declared length), so stalled big bodies cannot take the memory, nor crowd out the
    # small reviews (a pod is a few KB) that make up the API server's traffic.
    max_concurrent_reviews: int = Field(default=256, gt=0)
    max_buffered_bytes: int = Field(default=48 * MIB, gt=0)


class ServerSettings(BaseModel):
    """How the TLS server listens and guards its connections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=15017, ge=0, le=65535)
    cert_file: Path
    key_file: Path
    # How often the certificate files are checked for a rotation.
    reload_interval: float = Field(default=1.0, gt=0)
    # From a request's first byte to its last (headers and body): the connection is closed when
    # a client takes longer. The backstop behind `body_read_timeout`, and the only guard against
    # clients that trickle their headers (uvicorn has no header timeout).
    request_read_timeout: float = Field(default=5.0, gt=0)
    # Open connections (the API server keeps a pool per replica; a few hundred is plenty), TLS
    # handshakes in progress, and how long one may take: beyond, a connection is closed at once.
    max_connections: int = Field(default=1024, gt=0)
    max_handshakes: int = Field(default=128, gt=0)
    handshake_timeout: float = Field(default=5.0, gt=0)
    # Idle keep-alive connections are closed after this many seconds: longer than the API
    # server's own idle timeout (Go's 90 s), so that it is always the client that closes an idle
    # connection, never the server just as the client sends a review on it (a POST that would
    # fail, not be retried, and with failurePolicy Fail refuse a pod).
    keep_alive_timeout: int = Field(default=120, gt=0)
    log_level: str = "info"
