"""Run-time settings: command-line flags, each also read from MOCK_SERVER_<FLAG>."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

DEFAULT_JWT_SECRET = "refund-mock-server-sandbox-secret"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    scenarios: tuple[str, ...] = ()
    seed: int | None = None
    strict: bool = False
    admin_token: str | None = None
    jwt_secret: str = DEFAULT_JWT_SECRET
    watch: bool = False
    log_format: str = "text"
    log_level: str = "info"
    idempotency_ttl: timedelta = field(default_factory=lambda: timedelta(days=7))
    journal_size: int = 10_000
    max_body_bytes: int = 1024 * 1024
    # the request head: request line plus every header line (as nginx counts its header
    # buffers and Node its --max-http-header-size), and any one header line (Apache's 8190,
    # nginx's 8k buffer): core.limits, docs/fidelity.md
    max_header_bytes: int = 64 * 1024
    max_header_field_bytes: int = 8 * 1024
    # what one journal entry keeps of the request (headers + body), and again of the answer
    journal_entry_bytes: int = 64 * 1024
    # what a session's journal keeps in all; the oldest entries go first when it is full
    journal_bytes: int = 64 * 1024 * 1024
    # names whose values the journal never keeps (headers, query, form and JSON fields), in
    # addition to core.redact's defaults
    redact: tuple[str, ...] = ()
    # on SIGTERM/SIGINT: in-flight requests, then shutdown hooks (pending callbacks), share this
    shutdown_timeout: timedelta = field(default_factory=lambda: timedelta(seconds=5))
