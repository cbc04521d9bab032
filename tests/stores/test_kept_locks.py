"""A session's lock kept for this process's next request (core.world.World.commit): the next
requests need no step to take it; another process that asks for it gets it at the holder's
next commit; at most KEEP_MAX in a row; given back at shutdown. Two apps on one SQLite file or
one Redis server stand for two serving processes, as in test_shared_sessions.py; the keeping
app runs its loop (a TestClient context), as a server does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.stores import open_store
from mock_server.core.world import KEEP_MAX, Session
from mock_server.settings import Settings
from tests.conftest import ManualTime
from tests.stores.test_shared_sessions import refund, refunds_of, shared_url  # noqa: F401


class Counted:
    """Counts the calls of a session record's steps (the real record does the work)."""

    def __init__(self, session: Session, *names: str) -> None:
        self.calls = dict.fromkeys(names, 0)
        records = session.records
        for name in names:
            if name == "keep":  # counted where a request's commit awaits it (`akeep`), below
                continue
            real = getattr(records, name)

            def counted(*args: Any, _real: Callable[..., Any] = real, _name: str = name,
                        **kwargs: Any) -> Any:
                self.calls[_name] += 1
                return _real(*args, **kwargs)

            setattr(records, name, counted)
        if "keep" in names:
            real_async = records.akeep

            async def acounted(*args: Any, _real: Callable[..., Any] = real_async,
                               **kwargs: Any) -> Any:
                self.calls["keep"] += 1
                return await _real(*args, **kwargs)

            records.akeep = acounted


@pytest.fixture
def apps(shared_url: str) -> Iterator[Callable[[], Any]]:  # noqa: F811
    made: list[Any] = []

    def start() -> Any:
        app = create_app(Settings(seed=7), time_source=ManualTime(),
                         store=open_store(shared_url))
        made.append(app)
        return app

    yield start
    for app in made:
        app.world.store.close()


def _session(app: Any) -> Session:
    return app.world.acquire("default")[0]


def test_the_next_requests_of_a_session_in_one_process_take_no_lock(apps: Any) -> None:
    app = apps()
    app.world.keep_seconds = 60.0  # no timer gives it back during the test
    with TestClient(app) as client:
        assert refund(client, "1.00").status_code == 201
        session = _session(app)
        assert session.kept
        counted = Counted(session, "acquire", "keep", "release")
        backend = session.journal.backend
        real_next = backend.next_id
        taken: list[int] = []
        backend.next_id = lambda: taken.append(1) or real_next()  # type: ignore[method-assign]
        for _ in range(3):
            assert refund(client, "1.00").status_code == 201
        assert counted.calls == {"acquire": 0, "keep": 3, "release": 0}
        # each request's journal id was taken in the commit before it
        assert taken == []
        assert refunds_of(client) == ["1.00"] * 4
        listed = client.get("/__admin/requests").json()
        ids = [entry["id"] for entry in listed["requests"]]
        assert len(ids) == 5 and ids == sorted(set(ids), reverse=True)
    # the shutdown gave the lock back; the money and the snapshot were saved at each commit
    assert session.records.holder(time.time()) is None
    assert not session.kept
    assert refunds_of(TestClient(apps())) == ["1.00"] * 4


def test_another_process_asking_for_the_lock_gets_it_at_the_next_commit(apps: Any) -> None:
    keeper = apps()
    keeper.world.keep_seconds = 60.0
    asker = apps()
    with TestClient(keeper) as one, TestClient(asker) as two:
        assert refund(one, "1.00").status_code == 201
        held = _session(keeper)
        assert held.kept
        asking = _session(asker)
        refused = threading.Event()
        real = asking.records.acquire

        def acquire(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            if found is None:
                refused.set()
            return found

        asking.records.acquire = acquire  # type: ignore[method-assign]
        answers: list[int] = []
        waiter = threading.Thread(target=lambda: answers.append(
            refund(two, "2.00").status_code))
        waiter.start()
        assert refused.wait(30)  # it asked for the lock and was refused: the keeper has it
        assert refund(one, "3.00").status_code == 201  # this commit gives the lock back
        assert not held.kept
        waiter.join(30)
        assert answers == [201]
        # (the asker first: the keeper's read keeps the lock again, for a minute here)
        assert refunds_of(two) == ["1.00", "3.00", "2.00"]
        assert refunds_of(one) == ["1.00", "3.00", "2.00"]


def test_the_lock_is_kept_at_most_keep_max_requests_in_a_row(apps: Any) -> None:
    app = apps()
    app.world.keep_seconds = 60.0
    with TestClient(app) as client:
        assert refund(client, "0.01").status_code == 201
        session = _session(app)
        counted = Counted(session, "acquire", "keep", "release")
        for _ in range(KEEP_MAX + 1):
            assert refund(client, "0.01").status_code == 201
        # the first one kept it; KEEP_MAX - 1 more kept it; the next gave it back; the last
        # took it again and kept it
        assert counted.calls == {"acquire": 1, "keep": KEEP_MAX, "release": 1}


def test_without_a_running_server_nothing_is_kept(apps: Any) -> None:
    app = apps()  # keep_seconds is 0 unless `serve` sets it
    client = TestClient(app)
    assert refund(client, "1.00").status_code == 201
    session = _session(app)
    assert not session.kept and session.records.holder(time.time()) is None
