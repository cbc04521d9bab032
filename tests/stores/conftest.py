"""Real stores for the store tests: an SQLite file in a temporary folder, and a real
redis-server (Debian's package) started on a free loopback port for the test run and stopped
after it. Without redis-server the Redis cases are skipped, except in CI, where they fail."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_server.core.ledger import InMemoryLedger, Ledger

_namespaces = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed (.ci/run installs it)")
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(500):  # until it answers (a few ms), or it has died
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}")
            try:
                if self.client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.01)
        pytest.fail("redis-server did not answer")

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


LedgerMaker = Callable[[], Ledger]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store_kind == "memory":
        return "memory"
    if store_kind == "sqlite":
        return f"sqlite:{tmp_path / 'store.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


def open_ledger(url: str, namespace: str) -> Any:
    """A ledger on the store at `url` (what a serving process does), for this namespace."""
    if url == "memory":
        return InMemoryLedger()
    if url.startswith("sqlite:"):
        from mock_server.core.ledger_sqlite import SqliteLedger, connect

        return SqliteLedger(connect(url[len("sqlite:"):]), namespace)
    import redis

    from mock_server.core.ledger_redis import RedisLedger

    client = redis.Redis.from_url(url)
    RedisLedger.check_format(client)
    return RedisLedger(client, namespace)


@pytest.fixture
def namespace() -> str:
    return f"t{os.getpid()}-{next(_namespaces)}"


@pytest.fixture
def make_ledger(store_url: str, namespace: str) -> LedgerMaker:
    """Ledgers of one namespace on the test's store: for the memory store, one shared object."""
    if store_url == "memory":
        shared = InMemoryLedger()
        return lambda: shared
    return lambda: open_ledger(store_url, namespace)
