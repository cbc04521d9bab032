"""Idle connections: the open-file limit raised at start, a cap that closes the longest idle
connection for a newcomer (the health check gets through), idle connections closed."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import textwrap
from typing import Any

from mock_server.connections import ConnectionGuard


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    script = textwrap.dedent("""
        import resource
        from mock_server.connections import raise_open_file_limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        before, after = raise_open_file_limit()
        print(before, after, *resource.getrlimit(resource.RLIMIT_NOFILE))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    before, after, soft, hard = map(int, out)
    assert before == 64
    expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
    assert after == soft == expected


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class FakeCycle:
    def __init__(self, complete: bool) -> None:
        self.response_complete = complete


class FakeConnection:
    def __init__(self, cycle: FakeCycle | None = None) -> None:
        self.transport = FakeTransport()
        self.cycle = cycle
        self.pipeline: list[Any] = []


def test_over_the_cap_the_longest_idle_connection_is_closed() -> None:
    guard = ConnectionGuard(max_connections=3, idle_timeout=5)
    busy = FakeConnection(FakeCycle(complete=False))       # a request in progress
    oldest_idle = FakeConnection()                          # never sent anything
    answered = FakeConnection(FakeCycle(complete=True))     # keep-alive, between requests
    for connection in (busy, oldest_idle, answered):
        guard.opened(connection)
    newcomer = FakeConnection()
    guard.opened(newcomer)
    assert [c.transport.closed for c in (busy, oldest_idle, answered, newcomer)] == \
        [False, True, False, False]
    guard.used(answered)  # answered sends its next request: now the most recently used
    another = FakeConnection()
    guard.opened(another)
    assert newcomer.transport.closed and not answered.transport.closed
    assert guard.closed_idle == 2


def test_when_every_connection_is_busy_the_newcomer_is_closed() -> None:
    guard = ConnectionGuard(max_connections=2, idle_timeout=5)
    busy = [FakeConnection(FakeCycle(complete=False)) for _ in range(2)]
    for connection in busy:
        guard.opened(connection)
    newcomer = FakeConnection()
    guard.opened(newcomer)
    assert newcomer.transport.closed
    assert not any(c.transport.closed for c in busy)


def test_an_idle_timeout_closes_only_an_idle_connection() -> None:
    guard = ConnectionGuard(max_connections=10, idle_timeout=5)
    silent, working = FakeConnection(), FakeConnection(FakeCycle(complete=False))
    for connection in (silent, working):
        guard.opened(connection)
        guard.close_if_idle(connection)
    assert silent.transport.closed and not working.transport.closed


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(30)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False  # still open
    except OSError:
        return True  # reset


def test_a_flood_of_idle_connections_does_not_starve_the_health_check(serve: Any) -> None:
    def low_limit() -> None:
        # the open-file limit of many CI runners; the server raises it to the hard one
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))

    server = serve("--max-connections", "40", "--keep-alive-timeout", "2s", preexec=low_limit)
    idle: list[socket.socket] = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        status, body = server.health(timeout=10)
        assert status == 200, server.log()
        # every idle connection is closed by the server: for room, or once idle too long
        assert all(closed_by_server(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()
    assert server.health()[0] == 200
    assert "closed the longest idle one" in server.log()
