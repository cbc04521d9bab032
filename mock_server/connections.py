"""Connections under load: the open-file limit raised at start, idle connections closed, and a
cap on open connections that closes the longest idle one rather than refuse a new client (so a
flood of idle sockets cannot starve the health check)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

log = logging.getLogger("mock_server")


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raises the soft RLIMIT_NOFILE to the hard limit; returns (before, after), None where
    there is no such limit (Windows) or it cannot be changed."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    target = hard
    if target == resource.RLIM_INFINITY:
        # macOS refuses an infinite soft limit for files; a million is plenty
        target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        return soft, soft
    return soft, target


class ConnectionGuard:
    """Every open connection, longest idle first. A connection is idle from its start until a
    request begins on it, and again once the answer has gone out."""

    def __init__(self, max_connections: int, idle_timeout: float) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.open: OrderedDict[int, Any] = OrderedDict()
        self.closed_idle = 0  # connections closed for room (--max-connections)

    def protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """uvicorn's HTTP protocol class with the guard around it."""
        guard = self

        class Guarded(base):  # type: ignore[valid-type,misc]
            _guard_timer: asyncio.TimerHandle | None = None

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                guard.opened(self)
                # uvicorn times out an idle keep-alive connection only after a first request;
                # one that never sends anything is closed here
                self._guard_timer = asyncio.get_running_loop().call_later(
                    guard.idle_timeout, guard.close_if_idle, self)

            def data_received(self, data: bytes) -> None:
                timer = self._guard_timer
                if timer is not None:
                    timer.cancel()
                    self._guard_timer = None
                guard.used(self)
                super().data_received(data)

            def connection_lost(self, exc: Exception | None) -> None:
                timer = self._guard_timer
                if timer is not None:
                    timer.cancel()
                    self._guard_timer = None
                guard.open.pop(id(self), None)
                super().connection_lost(exc)

        Guarded.__name__ = f"Guarded{base.__name__}"
        return Guarded

    def opened(self, connection: Any) -> None:
        self.open[id(connection)] = connection
        if len(self.open) > self.max_connections:
            self._make_room(connection)

    def used(self, connection: Any) -> None:
        key = id(connection)
        if key in self.open:
            self.open.move_to_end(key)

    def close_if_idle(self, connection: Any) -> None:
        connection._guard_timer = None
        if _idle(connection):
            _close(connection)

    def _make_room(self, newcomer: Any) -> None:
        for key, connection in list(self.open.items()):
            if connection is newcomer:
                continue
            if _idle(connection):
                self.open.pop(key, None)
                _close(connection)
                self.closed_idle += 1
                if self.closed_idle in (1, 10, 100) or self.closed_idle % 1000 == 0:
                    log.warning("%d open connections (--max-connections %d): closed the longest "
                                "idle one (%d so far)", len(self.open) + 1, self.max_connections,
                                self.closed_idle)
                return
        # every other connection has a request in progress: this one waits its turn closed
        self.open.pop(id(newcomer), None)
        _close(newcomer)


def _idle(connection: Any) -> bool:
    """No request in progress: none begun yet, or the last one answered and none queued."""
    cycle = getattr(connection, "cycle", None)
    if getattr(connection, "pipeline", None):
        return False
    if cycle is None:
        # no request yet; bytes may have come, but no complete request head
        return True
    return bool(getattr(cycle, "response_complete", False))


def _close(connection: Any) -> None:
    transport = getattr(connection, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()
