"""Sessions under a flood of names: bounded in number (LRU of idle ones, idle TTL), nothing kept
for a refused request, and a new session that reads the startup world instead of copying it."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tracemalloc
from datetime import datetime, timedelta

import pytest

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import ManualTime
from tests.reliability.conftest import AFTERPAY, BAD_AUTH, PAYMENT, call, run

REFUND = json.dumps({"amount": {"amount": "1.00", "currency": "AUD"}}).encode()


def in_session(name: str, **headers: str) -> dict[str, str]:
    return {**AFTERPAY, "x-sandbox-session": name, **headers}


def test_refused_requests_leave_no_session_behind() -> None:
    app = create_app(Settings(seed=1, admin_token="admin-secret"))

    async def flood() -> set[int]:
        statuses = set()
        for i in range(300):
            kind = i % 5
            name = f"attacker-{i}"
            if kind == 0:  # Afterpay, wrong key
                answer = await call(app, "GET", f"/v2/payments/{PAYMENT}",
                                    in_session(name, authorization=BAD_AUTH))
            elif kind == 1:  # Optty, no token
                answer = await call(app, "POST", "/orders/ORD-1001/refund",
                                    {"x-sandbox-session": name,
                                     "content-type": "application/json"}, b"{}")
            elif kind == 2:  # admin API, no admin token
                answer = await call(app, "GET", f"/sessions/{name}/__admin/requests")
            elif kind == 3:  # nothing there
                answer = await call(app, "GET", f"/sessions/{name}/no/such/path")
            else:  # the health probe needs no session
                answer = await call(app, "GET", f"/sessions/{name}/__admin/health")
            statuses.add(answer.status)
        return statuses

    assert asyncio.run(flood()) == {200, 401, 404}
    assert [s.name for s in app.world.sessions()] == ["default"]


def test_a_session_that_was_used_stays() -> None:
    app = create_app(Settings(seed=1))
    assert run(app, "GET", f"/v2/payments/{PAYMENT}", in_session("ci-1")).status == 200
    assert [s.name for s in app.world.sessions()] == ["default", "ci-1"]


class Ticking(ManualTime):
    """A wall clock that moves a millisecond every time it is read."""

    def __call__(self) -> datetime:
        self.advance(milliseconds=1)
        return self.now


def test_a_new_session_reads_the_startup_world_until_it_writes() -> None:
    app = create_app(Settings(seed=1), time_source=Ticking())
    world = app.world
    before = run(app, "GET", f"/v2/payments/{PAYMENT}", in_session("reader")).json()
    reader = world.acquire("reader")[0]
    assert reader.shared  # no copy of its own: it only read
    assert run(app, "POST", f"/v2/payments/{PAYMENT}/refund", in_session("writer"),
               REFUND).status == 201
    writer = world.acquire("writer")[0]
    assert not writer.shared
    # the writer's refund is its own: neither the reader nor a new session sees it
    for name in ("reader", "new"):
        seen = run(app, "GET", f"/v2/payments/{PAYMENT}", in_session(name)).json()
        assert seen["refunds"] == before["refunds"], name
    # once it writes, the reader's own copy is the world it was reading, ids and dates alike
    assert run(app, "POST", f"/v2/payments/{PAYMENT}/refund", in_session("reader"),
               REFUND).status == 201
    after = run(app, "GET", f"/v2/payments/{PAYMENT}", in_session("reader")).json()
    moved = ("refunds", "events", "openToRefundAmount")
    assert "token" in before  # drawn from the ids when the world was seeded
    assert {k: v for k, v in after.items() if k not in moved} == \
        {k: v for k, v in before.items() if k not in moved}
    assert after["refunds"][:len(before["refunds"])] == before["refunds"]
    assert len(after["refunds"]) == len(before["refunds"]) + 1


def test_an_admin_change_gives_the_session_its_own_copy() -> None:
    app = create_app(Settings(seed=1))
    scenario = json.dumps({"name": "extra", "faults": [
        {"name": "down", "match": {"path": "/ping"}, "respond": {"status": 503}}]}).encode()
    assert run(app, "POST", "/__admin/scenarios", {"x-sandbox-session": "drill",
                                                   "content-type": "application/json"},
               scenario).status == 201
    assert run(app, "GET", "/ping", {"x-sandbox-session": "drill"}).status == 503
    assert run(app, "GET", "/ping", {"x-sandbox-session": "other"}).status == 200


def _bytes_per_session(app: object, count: int) -> float:
    async def flood() -> None:
        for i in range(count):
            answer = await call(app, "GET", f"/v2/payments/{PAYMENT}", in_session(f"s-{i}"))
            assert answer.status == 200

    asyncio.run(flood())  # warm: caches, interned strings
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        asyncio.run(_named_flood(app, count))
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count


async def _named_flood(app: object, count: int) -> None:
    for i in range(count):
        answer = await call(app, "GET", f"/v2/payments/{PAYMENT}", in_session(f"t-{i}"))
        assert answer.status == 200


def test_a_new_session_costs_far_less_than_a_copy_of_the_world() -> None:
    # a copy of the default world is ~37 KB; a session that reads it, journal entry included,
    # costs a few
    app = create_app(Settings(seed=1, max_sessions=1000))
    assert _bytes_per_session(app, 200) < 12 * 1024


def test_the_least_recently_used_idle_session_is_evicted(
        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(seed=1, max_sessions=3))
    for name in ("a", "b"):
        assert run(app, "GET", "/ping", {"x-sandbox-session": name}).status == 200
    run(app, "GET", "/ping", {"x-sandbox-session": "a"})  # a is now the most recently used
    with caplog.at_level(logging.INFO, logger="mock_server.sessions"):
        assert run(app, "GET", "/ping", {"x-sandbox-session": "c"}).status == 200
    assert [s.name for s in app.world.sessions()] == ["default", "a", "c"]
    assert "session b evicted: least recently used" in caplog.text
    health = run(app, "GET", "/__admin/health").json()
    assert (health["sessions"], health["maxSessions"], health["sessionsEvicted"]) == (3, 3, 1)


def test_a_busy_session_is_not_evicted_and_a_full_house_answers_503() -> None:
    app = create_app(Settings(seed=1, max_sessions=2))
    assert run(app, "GET", "/ping", {"x-sandbox-session": "busy"}).status == 200
    busy = app.world.acquire("busy")[0]
    busy.active += 1  # a request in flight
    try:
        answer = run(app, "GET", f"/v2/payments/{PAYMENT}", in_session("newcomer"))
        assert answer.status == 503
        assert answer.json()["errorCode"] == "service_unavailable"  # Afterpay's own shape
        assert "--max-sessions" in answer.headers["x-sandbox-warning"]
        admin = run(app, "GET", "/sessions/newcomer/__admin/requests")
        assert admin.status == 503 and admin.json()["error"] == "service_unavailable"
        assert [s.name for s in app.world.sessions()] == ["default", "busy"]
        assert len(app.world.acquire("default")[0].journal) == 0  # not journaled elsewhere
    finally:
        busy.active -= 1
    assert run(app, "GET", "/ping", {"x-sandbox-session": "newcomer"}).status == 200
    assert [s.name for s in app.world.sessions()] == ["default", "newcomer"]


def test_a_flood_of_names_stays_within_max_sessions() -> None:
    app = create_app(Settings(seed=1, max_sessions=50))

    async def flood() -> None:
        for i in range(2000):
            answer = await call(app, "GET", f"/v2/payments/{PAYMENT}", in_session(f"n-{i}"))
            assert answer.status == 200

    asyncio.run(flood())
    assert len(app.world.sessions()) == 50
    assert app.world.evicted == 2000 + 1 - 50


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_idle_past_the_ttl_are_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    wall = ManualTime()
    app = create_app(Settings(seed=1, session_idle_ttl=timedelta(minutes=10)), time_source=wall)
    ticks = Ticks()
    app.world.monotonic = ticks
    for name in ("old", "fresh"):
        run(app, "GET", "/ping", {"x-sandbox-session": name})
    ticks.now += 9 * 60
    wall.advance(minutes=9)
    run(app, "GET", "/ping", {"x-sandbox-session": "fresh"})
    assert app.world.acquire("fresh")[0].last_used == wall.now  # the wall clock of its last use
    ticks.now += 2 * 60
    with caplog.at_level(logging.INFO, logger="mock_server.sessions"):
        assert app.world.expire_idle() == 1
    assert [s.name for s in app.world.sessions()] == ["default", "fresh"]
    assert "session old expired: idle for more than 600s (--session-idle-ttl)" in caplog.text
    assert run(app, "GET", "/__admin/health").json()["sessionsExpired"] == 1


def test_a_session_in_use_does_not_expire() -> None:
    app = create_app(Settings(seed=1, session_idle_ttl=timedelta(seconds=1)))
    ticks = Ticks()
    app.world.monotonic = ticks
    run(app, "GET", "/ping", {"x-sandbox-session": "long-request"})
    session = app.world.acquire("long-request")[0]
    session.active += 1
    ticks.now += 3600
    assert app.world.expire_idle() == 0
    session.active -= 1
    assert app.world.expire_idle() == 1
