"""Callbacks with a store shared by processes (two apps on one SQLite file or one Redis server,
each with its dispatcher running): every REFUND_CALLBACK is delivered once, not once per
process, whichever process took the refund or moved the clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.core.stores import open_store
from mock_server.settings import Settings
from tests.api.optty.test_async_refunds import hooked_world, optty_of
from tests.conftest import ManualTime
from tests.stores.conftest import redis_server  # noqa: F401 - the fixture, for this module

Optty = Any
Receiver = Any


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.db'}"
    server = request.getfixturevalue("redis_server")
    server.client.flushdb()
    return str(server.url)


@pytest.fixture
def two(shared_url: str) -> Iterator[list[tuple[SandboxApp, TestClient]]]:
    made = []
    for _ in range(2):
        app = create_app(Settings(seed=7), time_source=ManualTime(),
                         store=open_store(shared_url))
        client = TestClient(app)
        client.__enter__()  # the lifespan: each process's dispatcher runs
        made.append((app, client))
    yield made
    for app, client in made:
        client.__exit__(None, None, None)
        assert app.world.store is not None
        app.world.store.close()


def idle(apps: list[SandboxApp]) -> bool:
    return all(not optty_of(app).dispatcher.pending_callbacks() for app in apps)


def test_a_callback_is_delivered_once_by_one_of_the_processes(
        two: list[tuple[SandboxApp, TestClient]], receiver: Receiver,
        optty_client: type[Optty], wait: Any) -> None:
    (app_a, a), (app_b, b) = two
    one, other = optty_client(a, "cb"), optty_client(b, "cb")
    one.load(hooked_world(receiver.url))
    answer = other.refund("ORD-V1", 25, "r-shared")  # through the other process
    assert answer.status_code == 201 and answer.json()["refundStatus"] == "PENDING"
    one.advance(2)  # the refund falls due; both dispatchers look
    got = receiver.wait_for(1)
    assert got[0].json()["data"]["refundReference"] == "r-shared"
    # once the delivery is recorded in the store nobody holds it any more; a second delivery
    # could only have been claimed before that, so none can come after this point
    wait(lambda: idle([app_a, app_b]))
    assert len(receiver.received) == 1
    assert other.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"


def test_a_delivery_in_flight_in_one_process_is_not_taken_by_the_other_until_its_claim_ends(
        two: list[tuple[SandboxApp, TestClient]], optty_client: type[Optty],
        wait: Any) -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mock_server.optty.webhooks import CLAIM_LEASE_SECONDS

    arrived, release = threading.Event(), threading.Event()
    got: list[bytes] = []

    class Held(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            arrived.set()
            release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Held)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (app_a, a), (app_b, b) = two
        one = optty_client(a, "held")
        one.load(hooked_world(f"http://127.0.0.1:{server.server_address[1]}/hook"))
        assert one.refund("ORD-V1", 25, "r-held").status_code == 201
        one.advance(2)
        assert arrived.wait(10)  # process A's attempt is at the receiver, unanswered
        world = app_b.world
        session = world.acquire("held")[0]
        store = world.store
        assert store is not None

        def take(wall: float) -> list[Any]:
            assert world.try_hold(session)
            try:
                queue = session.state("optty").callbacks
                return queue.take_due(session.clock.now(), owner=store.owner, wall=wall,
                                      lease=CLAIM_LEASE_SECONDS)
            finally:
                world.leave(session, local=False)

        assert take(time.time()) == []  # A's claim holds
        # A killed mid-attempt: once its claim has run out, B takes the delivery over
        taken = take(time.time() + CLAIM_LEASE_SECONDS + 1)
        assert [d.refund.refund_reference for d in taken] == ["r-held"]
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_the_dispatcher_outlives_a_round_that_failed(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from mock_server.optty.webhooks import WebhookDispatcher

    dispatcher = WebhookDispatcher()
    rounds: list[str] = []

    def failing() -> float:
        rounds.append("failed")
        if len(rounds) == 2:
            raise asyncio.CancelledError  # ends the loop once it came back for a second round
        assert dispatcher._event is not None
        dispatcher._event.set()  # the wait after this round returns at once
        raise OSError("the store is gone")

    async def run() -> None:
        dispatcher._event = asyncio.Event()
        await dispatcher._run()

    monkeypatch.setattr(dispatcher, "_tick", failing)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert rounds == ["failed", "failed"]
    assert "a round failed" in caplog.text
