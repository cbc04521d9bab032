"""Sessions in a store shared by processes: two apps on one SQLite file or one Redis server
stand for two serving processes (tests/reliability/ runs real ones). Whatever one changes the
other sees; a restart on the same file finds it all again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.core.stores import open_store
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, ManualTime

PAYMENT = "100101785223"
REFUND = f"/v2/payments/{PAYMENT}/refund"


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.db'}"
    server = request.getfixturevalue("redis_server")
    server.client.flushdb()  # each test its own world (the server is the run's)
    return str(server.url)


Processes = Callable[[], TestClient]


@pytest.fixture
def process(shared_url: str) -> Iterator[Processes]:
    """Starts one more "process" on the shared store: its own app, store handle and clock."""
    made: list[TestClient] = []

    def start(settings: Settings | None = None) -> TestClient:
        app = create_app(settings or Settings(seed=7), time_source=ManualTime(),
                         store=open_store(shared_url))
        client = TestClient(app)
        made.append(client)
        return client

    yield start
    for client in made:
        client.close()
        store = getattr(client.app, "world").store
        store.close()


def refund(client: TestClient, amount: str, *, session: str = "default",
           request_id: str | None = None) -> object:
    body: dict[str, object] = {"amount": {"amount": amount, "currency": "AUD"}}
    if request_id is not None:
        body |= {"requestId": request_id, "merchantReference": f"m-{request_id}"}
    return client.post(REFUND, json=body,
                       headers={**AFTERPAY_HEADERS, "X-Sandbox-Session": session})


def refunds_of(client: TestClient, session: str = "default") -> list[str]:
    answer = client.get(f"/v2/payments/{PAYMENT}",
                        headers={**AFTERPAY_HEADERS, "X-Sandbox-Session": session})
    assert answer.status_code == 200
    return [r["amount"]["amount"] for r in answer.json()["refunds"]]


def test_a_session_made_through_one_process_is_seen_by_the_other(process: Processes) -> None:
    one, two = process(), process()
    assert refund(one, "10.00", session="ci-42").status_code == 201
    assert refunds_of(two, "ci-42") == ["10.00"]
    assert refund(two, "5.00", session="ci-42").status_code == 201
    assert refunds_of(one, "ci-42") == ["10.00", "5.00"]
    assert refunds_of(one, "other") == []  # sessions stay apart


def test_the_startup_world_is_seeded_once(process: Processes) -> None:
    one = process()
    assert refund(one, "10.00").status_code == 201
    later = process()  # a process started after the first refund: it finds the world made
    assert refunds_of(later) == ["10.00"]


def test_an_idempotent_replay_through_the_other_process_is_byte_identical(
        process: Processes) -> None:
    one, two = process(), process()
    first = refund(one, "3.00", request_id="r-1")
    again = refund(two, "3.00", request_id="r-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert refunds_of(one) == ["3.00"]


def test_refund_ids_are_unique_across_processes(process: Processes) -> None:
    one, two = process(), process()
    ids = [json.loads(refund(client, "1.00").content)["refundId"]
           for client in (one, two, one, two)]
    assert len(set(ids)) == 4


def test_a_reset_through_one_process_is_seen_by_the_other(process: Processes) -> None:
    one, two = process(), process()
    assert refund(one, "10.00", session="s").status_code == 201
    assert refunds_of(two, "s") == ["10.00"]
    assert one.post("/__admin/reset", headers={"X-Sandbox-Session": "s"}).status_code == 200
    assert refunds_of(two, "s") == []
    assert refund(two, "120.00", session="s").status_code == 201  # all of it is back


def test_a_scenario_and_its_fault_counts_are_shared(process: Processes) -> None:
    one, two = process(), process()
    scenario = {"name": "one-failure", "faults": [{
        "name": "refund-fails-once", "match": {"provider": "afterpay", "method": "POST",
                                               "path": "/v2/payments/*/refund"},
        "times": 1, "respond": {"status": 500}}]}
    loaded = one.post("/__admin/scenarios", json=scenario,
                      headers={"X-Sandbox-Session": "f"})
    assert loaded.status_code in (200, 201), loaded.text
    assert refund(two, "1.00", session="f").status_code == 500  # the rule, through the other
    assert refund(one, "1.00", session="f").status_code == 201  # times: 1 was used up
    assert refunds_of(two, "f") == ["1.00"]


def test_the_session_clock_is_shared(process: Processes) -> None:
    one, two = process(), process()
    frozen = one.put("/__admin/clock", json={"now": "2027-01-02T03:04:05.000Z"},
                     headers={"X-Sandbox-Session": "c"})
    assert frozen.status_code == 200, frozen.text
    assert two.get("/__admin/clock", headers={"X-Sandbox-Session": "c"}).json()["now"] == \
        "2027-01-02T03:04:05.000Z"
    answer = json.loads(refund(two, "1.00", session="c").content)
    assert answer["refundedAt"] == "2027-01-02T03:04:05.000Z"


def test_optty_refund_references_are_unique_across_processes(process: Processes) -> None:
    one, two = process(), process()

    def token(client: TestClient) -> str:
        answer = client.post("/token", data={"client_id": "sandbox-client",
                                             "client_secret": "sandbox-secret",
                                             "grant_type": "client_credentials",
                                             "scope": "api-user"})
        return str(answer.json()["access_token"])

    body = {"refundReference": "ref-1", "refundAmount": {"amount": 1, "currency": "AUD"},
            "refundDescription": "x"}
    first = one.post("/orders/ORD-1001/refund", json=body,
                     headers={"Authorization": f"Bearer {token(one)}"})
    assert first.status_code == 201, first.text
    second = two.post("/orders/ORD-1001/refund", json=body,
                      headers={"Authorization": f"Bearer {token(two)}"})
    assert second.status_code == 400
    assert "already exists" in second.text


def test_a_refused_request_leaves_no_session_in_the_store(process: Processes) -> None:
    one = process()
    answer = one.post(REFUND, json={"amount": {"amount": "1.00", "currency": "AUD"}},
                      headers={"Authorization": "Basic bm9ib2R5Om5vdGhpbmc=",
                               "X-Sandbox-Session": "never"})
    assert answer.status_code == 401
    store = getattr(one.app, "world").store
    assert "never" not in store.session_names()
    assert "default" in store.session_names()


def test_a_restart_on_the_same_file_finds_everything(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'durable.db'}"

    def start() -> tuple[SandboxApp, TestClient]:
        app = create_app(Settings(seed=7), time_source=ManualTime(), store=open_store(url))
        return app, TestClient(app)

    app, before = start()
    first = refund(before, "4.00", session="d", request_id="k-1")
    before.put("/__admin/clock", json={"now": "2026-11-01T10:00:00.000Z"},
               headers={"X-Sandbox-Session": "d"})
    before.post("/__admin/scenarios", headers={"X-Sandbox-Session": "d"}, json={
        "name": "twice", "faults": [{"name": "two", "times": 2, "respond": {"status": 503},
                                     "match": {"provider": "afterpay", "method": "GET"}}]})
    assert before.get(f"/v2/payments/{PAYMENT}", headers={
        **AFTERPAY_HEADERS, "X-Sandbox-Session": "d"}).status_code == 503
    app.world.store.close()  # as good as a kill: nothing is written at shutdown

    app, after = start()
    again = refund(after, "4.00", session="d", request_id="k-1")
    assert again.content == first.content
    assert after.get("/__admin/clock", headers={"X-Sandbox-Session": "d"}).json()["now"] == \
        "2026-11-01T10:00:00.000Z"
    # the rule fired once before the restart: once more, then it is spent
    assert after.get(f"/v2/payments/{PAYMENT}", headers={
        **AFTERPAY_HEADERS, "X-Sandbox-Session": "d"}).status_code == 503
    assert refunds_of(after, "d") == ["4.00"]
    app.world.store.close()


def test_a_repeat_through_the_other_process_while_the_original_is_in_flight_is_409(
        process: Processes, waits: Any) -> None:
    import threading

    one, two = process(), process()
    slow = {"name": "slow", "faults": [{
        "name": "slow-refund", "delay": "2s",
        "match": {"provider": "afterpay", "method": "POST", "path": "/v2/payments/*/refund"}}]}
    assert one.post("/__admin/scenarios", json=slow).status_code == 201
    waits.hold()  # the original waits inside its processing time until released
    original: list[Any] = []
    sent = threading.Thread(target=lambda: original.append(
        refund(one, "9.00", request_id="in-flight")))
    sent.start()
    assert waits.waiting.wait(10)
    repeat = refund(two, "9.00", request_id="in-flight")
    assert repeat.status_code == 409, repeat.text
    waits.release()
    sent.join(10)
    assert original[0].status_code == 201
    again = refund(two, "9.00", request_id="in-flight")
    assert again.content == original[0].content
    assert refunds_of(two) == ["9.00"]


def test_the_journal_is_one_for_every_process(process: Processes) -> None:
    one, two = process(), process()
    assert refund(one, "1.00", session="j").status_code == 201
    assert refund(two, "2.00", session="j").status_code == 201
    for client in (one, two):
        listed = client.get("/__admin/requests", headers={"X-Sandbox-Session": "j"}).json()
        assert [e["status"] for e in listed["requests"]] == [201, 201]
    assert two.post("/__admin/reset", headers={"X-Sandbox-Session": "j"}).status_code == 200
    assert one.get("/__admin/requests", headers={"X-Sandbox-Session": "j"}).json()["total"] == 0


def test_a_lock_left_by_a_killed_process_of_this_machine_is_taken_over_at_once(
        process: Processes) -> None:
    import socket
    import subprocess
    import time

    from mock_server.core.sessionrecords import _started

    client = process()
    world = getattr(client.app, "world")
    store = world.store
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        holder = f"{socket.gethostname()}|{sleeper.pid}|{_started(sleeper.pid) or '-'}|old"
        records = store.records("orphan")
        assert records.acquire(holder, time.time(), 120.0) is not None
        session = world.acquire("orphan")[0]
        assert world._try_lock(session) is None  # its holder runs: the lease holds
    finally:
        sleeper.kill()
        sleeper.wait()
    # killed (as with kill -9) with the lock held: the lease is not waited out
    assert world._try_lock(session) is not None
    world._let_go(session)


def test_a_store_that_fails_is_a_503_in_the_providers_shape(process: Processes,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    client = process()
    world = getattr(client.app, "world")
    session = world.acquire("down")[0]

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("the store is gone")

    monkeypatch.setattr(session.records, "acquire", broken)
    answer = refund(client, "1.00", session="down")
    assert answer.status_code == 503
    assert answer.json()["errorCode"] == "service_unavailable"  # Afterpay's own error body
    assert answer.headers["X-Sandbox-Warning"] == "the session store is unavailable"
    monkeypatch.undo()
    # taken, but not saved: the answer does not claim a refund it cannot keep
    monkeypatch.setattr(session.records, "release", broken)
    answer = refund(client, "2.00", session="down")
    assert answer.status_code == 503
    monkeypatch.undo()
    assert refund(client, "3.00", session="down").status_code == 201
