"""What the parts of the sandbox that outlive one request may ask of the app that hosts them.

The app (mock_server.app) implements `Host`; the admin surface, the providers and core's
watchers take a `Host`, so none of them imports the app (docs/architecture.md, "Layers")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mock_server.core.http import ProviderApp
    from mock_server.core.metrics import Metrics
    from mock_server.core.world import World
    from mock_server.settings import Settings

# A shutdown hook returns None, or what it could not finish (one line each) to be reported.
ShutdownHook = Callable[[], Awaitable[Iterable[str] | None]]
StartupHook = Callable[[], Awaitable[None]]


class Host(Protocol):
    """The running sandbox as its surfaces see it: its world, its life-cycle hooks."""

    @property
    def world(self) -> World: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def providers(self) -> Sequence[ProviderApp]: ...

    @property
    def started_at(self) -> float:
        """time.monotonic() when the app was built (the admin health's uptime)."""

    @property
    def requests_started(self) -> int:
        """HTTP requests begun so far: tells an idle server from a busy one (core.gcpolicy)."""

    @property
    def shutdown_deadline(self) -> float | None:
        """time.monotonic() by which shutdown must be done, once a shutdown has begun."""

    @property
    def startup_hooks(self) -> list[StartupHook]: ...

    @property
    def shutdown_hooks(self) -> list[ShutdownHook]: ...

    def shutdown_remaining(self) -> float:
        """Seconds left of the shutdown grace period (a hook's budget)."""
