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
    # on SIGTERM/SIGINT: in-flight requests, then shutdown hooks (pending callbacks), share this
    shutdown_timeout: timedelta = field(default_factory=lambda: timedelta(seconds=5))
    # the base URL shoppers' browsers reach the sandbox at (portal pages in redirect URLs);
    # None: the Host of the request that created the checkout
    public_url: str | None = None
