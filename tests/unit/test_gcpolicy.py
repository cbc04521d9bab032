"""The serving process's use of the cyclic garbage collector (core/gcpolicy.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from mock_server.core import gcpolicy
from mock_server.core.gcpolicy import NEVER, CollectorPolicy


class _Server:
    def __init__(self) -> None:
        self.requests = 0
        self.now = 1000.0


@pytest.fixture
def server() -> _Server:
    return _Server()


@pytest.fixture
def policy(server: _Server) -> CollectorPolicy:
    return CollectorPolicy(lambda: server.requests, interval=60, max_interval=600,
                           clock=lambda: server.now)


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@pytest.fixture
def started(policy: CollectorPolicy, collector_restored: None) -> CollectorPolicy:
    assert policy.tick()  # the first idle second: start-up's garbage goes, the rest is frozen
    assert policy.frozen and gc.get_freeze_count() > 0
    return policy


def test_an_idle_server_collects_once_the_interval_has_passed(server: _Server,
                                                             started: CollectorPolicy) -> None:
    policy = started
    server.now += 30
    assert not policy.tick()  # idle, but the last collection is recent
    server.now += 31
    assert policy.tick()
    assert policy.full_collections == 2
    server.now += 1
    assert not policy.tick()  # just collected


def test_a_busy_server_is_not_paused_until_the_longest_interval(
        server: _Server, policy: CollectorPolicy, collector_restored: None) -> None:
    # busy from the first second: not even the start-up freeze pauses it
    for _ in range(599):
        server.now += 1
        server.requests += 25  # requests began since the last look: busy
        assert not policy.tick()
    server.now += 1
    server.requests += 25
    assert policy.tick()  # 600 s without a full collection: one runs under load too
    assert policy.full_collections == 1 and policy.frozen


def test_the_first_quiet_second_after_a_busy_stretch_collects(server: _Server,
                                                             started: CollectorPolicy) -> None:
    policy = started
    for _ in range(90):
        server.now += 1
        server.requests += 1
        assert not policy.tick()
    server.now += 1
    assert policy.tick()


def test_start_takes_full_collections_off_the_counter_and_stop_gives_them_back(
        collector_restored: None) -> None:
    class App:
        requests_started = 0
        startup_hooks: list = []  # noqa: RUF012 - one instance
        shutdown_hooks: list = []  # noqa: RUF012

    app = App()
    before = gc.get_threshold()
    policy = gcpolicy.install(app)  # type: ignore[arg-type]
    seen: dict[str, object] = {}

    async def lifetime() -> None:
        for hook in app.startup_hooks:
            await hook()
        seen["thresholds"] = gc.get_threshold()
        policy.tick()  # the first idle second
        seen["frozen"] = gc.get_freeze_count()
        for hook in app.shutdown_hooks:
            await hook()

    asyncio.run(lifetime())
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 0
    assert seen["thresholds"] == (*gcpolicy.YOUNG_THRESHOLDS, NEVER)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert policy._task is None


def test_the_app_counts_the_requests_it_began() -> None:
    from starlette.testclient import TestClient

    from mock_server.app import create_app
    from mock_server.settings import Settings

    app = create_app(Settings(seed=1))
    with TestClient(app) as client:
        client.get("/__admin/health")
        client.get("/ping")
    assert app.requests_started == 2


def test_serve_applies_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    import uvicorn

    from mock_server import cli
    from mock_server.app import create_app
    from mock_server.settings import Settings

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    app = create_app(Settings(seed=1))
    try:
        assert cli.serve(Settings(port=0, seed=1), app) == 0
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    owners = [getattr(hook, "__self__", None) for hook in app.startup_hooks]
    assert any(isinstance(owner, CollectorPolicy) for owner in owners)
