"""Run-time settings: command-line flags, each also read from MOCK_SERVER_<FLAG>."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

DEFAULT_JWT_SECRET = "refund-mock-server-sandbox-secret"
# loopback and private ranges: where an integrator's own webhook receiver runs on a CI network
# (link-local, 169.254.0.0/16 with cloud metadata services, is not among them)
DEFAULT_WEBHOOK_ALLOW: tuple[str, ...] = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


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
    # sessions kept at most; beyond, the least recently used idle one is evicted
    max_sessions: int = 1000
    # a session unused for this long is forgotten (None: kept until evicted)
    session_idle_ttl: timedelta | None = None
    # fault rules one session may hold, all its scenarios together
    max_fault_rules: int = 1000
    # where session state lives (core.stores): memory, sqlite:PATH or redis://HOST:PORT/DB
    store: str = "memory"
    # serving processes on the one port (mock_server.workers); more than one needs a shared store
    workers: int = 1
    # largest scenario document POSTed to /__admin/scenarios
    max_scenario_bytes: int = 256 * 1024
    # connections open at once; beyond, the longest idle one is closed
    max_connections: int = 1000
    # a connection idle this long (before its first request, or between requests) is closed
    keep_alive_timeout: timedelta = field(default_factory=lambda: timedelta(seconds=5))
    # where REFUND_CALLBACKs may go: networks (CIDR), or ("any",)
    webhook_allow: tuple[str, ...] = DEFAULT_WEBHOOK_ALLOW
    # the base URL the sandbox's own pages are reached at from a browser (redirect URLs);
    # None: the creating request's Host
    public_url: str | None = None
