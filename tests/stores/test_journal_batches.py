"""A journal in a store (SQLite file, real Redis server) while an event loop serves: the entries
finished in one turn of the loop are written together, in one call of the store, at the start
of the next turn; every read writes them first; the bounds hold across a batch exactly as one
entry at a time; a failed write keeps them (bounded) and says so; nothing queued is lost when
the store closes or the app stops. The backend is the real one, its calls counted by a spy."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mock_server.core.journal import Journal, JournalEntry
from mock_server.core.journal_store import EntryRow, Filters, StoredJournal
from mock_server.core.stores import Store, open_store
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS
from tests.stores.test_journal_contract import _request, _shown

PAYMENT = "/v2/payments/100101785223"


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("redis_server").url)


class Spy:
    """The real backend, each write it is asked for recorded (the ids, per call); `down`: the
    writes fail with that error, as a store that cannot be reached."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.writes: list[list[int]] = []
        self.events: list[tuple[str, Any]] = []
        self.down: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def next_id(self) -> int:
        entry_id = int(self.real.next_id())
        self.events.append(("id", entry_id))
        return entry_id

    def append_many(self, rows: Sequence[EntryRow], max_entries: int, max_bytes: int) -> None:
        if self.down is not None:
            raise self.down
        self.writes.append([row.id for row in rows])
        self.events.append(("write", [row.id for row in rows]))
        self.real.append_many(rows, max_entries, max_bytes)


def _settings(**changes: Any) -> Settings:
    return dataclasses.replace(Settings(), **changes)


Opened = tuple[Store, StoredJournal, Spy]


@pytest.fixture
def opened(shared_url: str, namespace: str) -> Iterator[Callable[..., Opened]]:
    """A store and a spied journal on it (one process), closed after the test."""
    stores: list[Store] = []

    def make(**changes: Any) -> Opened:
        store = open_store(shared_url)
        stores.append(store)
        journal = store.journal(namespace, _settings(**changes))
        assert isinstance(journal, StoredJournal)
        spy = Spy(journal.backend)
        journal.backend = spy
        return store, journal, spy

    yield make
    for store in stores:
        store.close()


def _other(shared_url: str, namespace: str, **changes: Any) -> Journal:
    """The session's journal as another process reads it (nothing of its own queued)."""
    return open_store(shared_url).journal(namespace, _settings(**changes))


def _ids(entries: Sequence[JournalEntry]) -> list[int]:
    return [e.id for e in entries]


# -- one write per turn of the loop ----------------------------------------------------------

def test_the_entries_finished_in_one_turn_are_written_in_one_call(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    _store, journal, spy = opened()
    other = _other(shared_url, namespace)

    async def serving() -> None:
        first = _ids([_request(journal, n) for n in range(1, 6)])
        assert spy.writes == []  # queued: this turn of the loop goes on
        assert len(other) == 0
        await asyncio.sleep(0)  # the loop's next turn
        assert spy.writes == [first]
        assert _ids(other.since(0)) == first
        second = _ids([_request(journal, n) for n in range(6, 8)])
        await asyncio.sleep(0)
        assert spy.writes == [first, second]

    asyncio.run(serving())
    assert _ids(other.since(0)) == list(range(1, 8))


def test_without_an_event_loop_each_entry_is_written_at_once(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    _store, journal, spy = opened()
    ids = [_request(journal, n).id for n in range(3)]
    assert spy.writes == [[ids[0]], [ids[1]], [ids[2]]]
    assert _ids(_other(shared_url, namespace).since(0)) == ids


def test_entries_finished_on_other_threads_are_written_at_once(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    _store, journal, spy = opened()

    async def serving() -> None:
        served = _request(journal, 1)
        # a thread with no loop of its own (a delivery thread) writes its entry itself
        thread = threading.Thread(target=_request, args=(journal, 2))
        thread.start()
        thread.join()
        assert spy.writes == [[served.id + 1]]
        await asyncio.sleep(0)
        assert spy.writes == [[served.id + 1], [served.id]]

    asyncio.run(serving())


READS: dict[str, Callable[[Journal, list[int]], Any]] = {
    "get": lambda journal, ids: journal.get(ids[0]) is not None,
    "query": lambda journal, ids: _ids(journal.query()[1]) == ids[::-1],
    "page": lambda journal, ids: _ids(journal.page(limit=2)[1]) == ids[:0:-1],
    "since": lambda journal, ids: _ids(journal.since(0)) == ids,
    "len": lambda journal, ids: len(journal) == 3,
    "bytes": lambda journal, ids: journal.bytes > 0,
    "clear": lambda journal, ids: journal.clear() == 3,
}


@pytest.mark.parametrize("read", READS)
def test_every_read_writes_what_is_queued_first(
        opened: Callable[..., Opened], shared_url: str, namespace: str, read: str) -> None:
    _store, journal, spy = opened()
    other = _other(shared_url, namespace)

    async def serving() -> None:
        ids = _ids([_request(journal, n) for n in range(3)])
        assert spy.writes == []
        assert READS[read](journal, ids)  # this process reads its own writes
        assert spy.writes == [ids]  # in one call, before the read
        assert _ids(other.since(0)) == ([] if read == "clear" else ids)
        await asyncio.sleep(0)
        assert spy.writes == [ids]  # nothing left for the turn's own write

    asyncio.run(serving())


def test_the_bytes_count_what_was_queued(opened: Callable[..., Opened], shared_url: str,
                                         namespace: str) -> None:
    _store, journal, _spy = opened()
    reference = Journal()

    async def serving() -> None:
        for n in range(3):
            _request(journal, n)
            _request(reference, n)
        assert journal.bytes == reference.bytes

    asyncio.run(serving())
    assert _other(shared_url, namespace).bytes == reference.bytes


# -- the bounds across a batch ---------------------------------------------------------------

def test_a_batch_bigger_than_the_entry_bound_keeps_the_newest(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    _store, journal, spy = opened(journal_size=3)
    reference = Journal(3)

    async def serving() -> None:
        for n in range(1, 8):
            _request(journal, n)
            _request(reference, n)
        await asyncio.sleep(0)

    asyncio.run(serving())
    # queued as the store keeps them: the oldest were dropped before the write
    assert spy.writes == [[5, 6, 7]]
    other = _other(shared_url, namespace, journal_size=3)
    assert len(other) == 3
    assert _shown(other.query(limit=10)[1]) == _shown(reference.query(limit=10)[1])


def test_a_batch_past_the_byte_bound_keeps_what_the_in_memory_journal_keeps(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    limits = {"journal_entry_bytes": 1024, "journal_bytes": 1}
    _store, journal, spy = opened(**limits)
    reference = Journal(entry_bytes=1024, max_bytes=1)
    inputs: list[dict[str, Any]] = [{"body": b"b" * (100 * n), "answer": b"a" * (60 * n)}
                                    for n in range(1, 12)]

    async def serving() -> None:
        for n, spec in enumerate(inputs, start=1):
            _request(journal, n, **spec)
            _request(reference, n, **spec)
        await asyncio.sleep(0)

    asyncio.run(serving())
    expected = _shown(reference.query(limit=100)[1])
    assert 1 <= len(expected) < len(inputs)
    assert len(spy.writes) == 1 and len(spy.writes[0]) < len(inputs)
    other = _other(shared_url, namespace, **limits)
    assert _shown(other.query(limit=100)[1]) == expected
    assert other.bytes == reference.bytes <= reference.max_bytes


# ids out of order (processes finish theirs in any order), sizes uneven: applying the bounds
# once at the end of a batch would keep [8, 9]; one entry at a time keeps [4, 6, 8, 9]
UNEVEN = [(5, 300), (2, 900), (9, 200), (1, 100), (7, 500), (3, 50), (8, 350), (4, 60), (6, 120),
          (9, 999)]


def _rows(pairs: list[tuple[int, int]]) -> list[EntryRow]:
    return [EntryRow(entry_id, b"entry %d of %d bytes" % (entry_id, size),
                     Filters("afterpay", 201, "op"), True, size) for entry_id, size in pairs]


def test_a_batch_keeps_exactly_what_one_entry_at_a_time_keeps(
        shared_url: str, namespace: str) -> None:
    store = open_store(shared_url)
    try:
        batched = store.journal(f"{namespace}-batch", Settings())
        single = store.journal(f"{namespace}-one", Settings())
        assert isinstance(batched, StoredJournal) and isinstance(single, StoredJournal)
        batched.backend.append_many(_rows(UNEVEN), 4, 1000)
        for row in _rows(UNEVEN):
            single.backend.append(*row, 4, 1000)
        kept = []
        for journal in (batched, single):
            page = journal.backend.page(Filters(), 100, None, None)
            kept.append((page.total, page.entries, journal.backend.count(),
                         journal.backend.kept_bytes()))
        assert kept[0] == kept[1]
        # the second 9 named an entry kept already: it stayed as it was
        assert kept[0] == (4, [b"entry %d of %d bytes" % pair
                               for pair in [(9, 200), (8, 350), (6, 120), (4, 60)]],
                           4, 730)
    finally:
        store.close()


# -- a write that fails ----------------------------------------------------------------------

def test_a_write_that_fails_keeps_the_entries_and_says_so_once(
        opened: Callable[..., Opened], shared_url: str, namespace: str,
        caplog: pytest.LogCaptureFixture) -> None:
    _store, journal, spy = opened(journal_size=2)
    other = _other(shared_url, namespace, journal_size=2)

    async def serving() -> None:
        spy.down = ConnectionError("the store cannot be reached")
        ids = _ids([_request(journal, n) for n in range(1, 4)])
        with caplog.at_level(logging.INFO, logger="mock_server.journal"):
            await asyncio.sleep(0)
            warned = [r.getMessage() for r in caplog.records]
            assert len(warned) == 1
            assert warned[0] == (
                f"journal of session {namespace}: 2 finished entries not written to the store "
                "(ConnectionError: the store cannot be reached); 2 kept in this process for "
                "the next write (at most 2 entries, "
                f"{journal.max_bytes} bytes, the oldest dropped first)")
            with pytest.raises(ConnectionError):
                journal.query()  # a read cannot be answered without them
            assert len(caplog.records) == 2
            spy.down = None
            newest = _request(journal, 4).id
            await asyncio.sleep(0)
            assert spy.writes == [[ids[2], newest]]  # kept within the bounds, then written
            assert caplog.records[-1].getMessage() == (
                f"journal of session {namespace}: written to the store again, after 2 failed "
                "write(s)")
        assert _ids(other.query()[1]) == [newest, ids[2]]

    asyncio.run(serving())


def test_the_last_write_that_fails_drops_the_entries_with_one_line(
        opened: Callable[..., Opened], namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    store, journal, spy = opened()

    async def serving() -> None:
        _request(journal, 1)
        _request(journal, 2)
        spy.down = ConnectionError("gone")
        with caplog.at_level(logging.INFO, logger="mock_server.journal"):
            assert store.flush_journals() == 0  # the process is stopping: nothing raised
        assert [r.getMessage() for r in caplog.records] == [
            f"journal of session {namespace}: 2 finished entries not written to the store "
            "(ConnectionError: gone); lost: the process is stopping"]
        spy.down = None
        await asyncio.sleep(0)
        assert spy.writes == []  # dropped, as the line said

    asyncio.run(serving())


# -- nothing queued is lost when the process stops -------------------------------------------

def test_closing_the_store_writes_what_is_queued(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    store, journal, spy = opened()
    other = _other(shared_url, namespace)

    async def serving() -> None:
        ids = _ids([_request(journal, n) for n in range(3)])
        store.close()  # before the loop's next turn
        assert spy.writes == [ids]
        assert _ids(other.since(0)) == ids

    asyncio.run(serving())
    assert len(spy.writes) == 1


def test_the_apps_shutdown_writes_what_every_session_journal_queued(shared_url: str) -> None:
    from httpx import ASGITransport, AsyncClient

    from mock_server.app import create_app

    app = create_app(Settings(seed=7), store=open_store(shared_url))
    # no hook to wait for: the shutdown takes no turn of the loop, so only its own write of
    # the journals can put the entries below in the store
    app.shutdown_hooks.clear()
    queued: list[tuple[str, list[int]]] = []

    async def serving() -> None:
        async with app.lifespan():
            async with AsyncClient(transport=ASGITransport(app=app),
                                   base_url="http://sandbox") as client:
                for name in ("one", "two"):
                    answer = await client.get(PAYMENT, headers={
                        **AFTERPAY_HEADERS, "x-sandbox-session": name})
                    assert answer.status_code == 200
            for session in app.world.sessions():
                if session.name in ("one", "two"):
                    ids = _ids([_request(session.journal, n) for n in range(2)])
                    queued.append((session.generation, ids))
        # the lifespan is over, the loop had no turn since the entries were finished
        for generation, ids in queued:
            assert _ids(_other(shared_url, generation).since(0))[-2:] == ids

    try:
        asyncio.run(serving())
    finally:
        app.world.store.close()  # type: ignore[union-attr]
    assert len(queued) == 2


def test_a_generation_forgotten_takes_its_queued_entries_with_it(
        opened: Callable[..., Opened], shared_url: str, namespace: str) -> None:
    store, journal, spy = opened()

    async def serving() -> None:
        _request(journal, 1)
        store.forget(namespace)  # a reset, in the same turn
        await asyncio.sleep(0)

    asyncio.run(serving())
    assert spy.writes == []
    assert len(_other(shared_url, namespace)) == 0


# -- through a real server -------------------------------------------------------------------

def test_an_answered_requests_entry_is_written_before_the_next_request_is_served(
        shared_url: str) -> None:
    """uvicorn as `mock-server serve` runs it (its own loop: uvloop when installed), one
    keep-alive connection: each request's entry is in the store before the next one is read."""
    import uvicorn

    from mock_server.app import create_app
    from mock_server.core.protocol import uvicorn_options

    app = create_app(Settings(seed=7), store=open_store(shared_url))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # the client's connection waits in the backlog until the server accepts
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                           lifespan="on", log_level=None,
                                           **uvicorn_options(app)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30)
    try:
        spy = None
        for _ in range(8):
            connection.request("GET", PAYMENT, headers={**AFTERPAY_HEADERS,
                                                         "x-sandbox-session": "seq"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            if spy is None:  # from the second request on, the session's journal is spied
                session = next(s for s in app.world.sessions() if s.name == "seq")
                assert isinstance(session.journal, StoredJournal)
                spy = Spy(session.journal.backend)
                session.journal.backend = spy
        assert spy is not None
        ids = [entry_id for kind, entry_id in spy.events if kind == "id"]
        assert len(ids) == 7
        # each request's entry written before the next request took its id. (A request's
        # write may come after its answer reached the client: the first one's may come after
        # the spy was put in, the last one's after the loop above ended; neither is looked at.)
        first, last = spy.events.index(("id", ids[0])), spy.events.index(("id", ids[-1]))
        assert spy.events[first:last + 1] == [
            *(event for entry_id in ids[:-1]
              for event in (("id", entry_id), ("write", [entry_id]))), ("id", ids[-1])]
    finally:
        connection.close()
        server.should_exit = True
        thread.join(30)
        sock.close()
        app.world.store.close()  # type: ignore[union-attr]


def test_entries_queued_while_redis_is_down_are_written_once_it_is_back(
        tmp_path: Path, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    """A real outage: the Redis server stopped and started again on its port."""
    import shutil
    import subprocess

    import redis

    from tests.stores.conftest import _free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=port)
        for _ in range(500):
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.01)  # until it answers (a few ms)
        probe.close()
        return process

    server = start()
    url = f"redis://127.0.0.1:{port}/0"
    store = open_store(url)
    try:
        journal = store.journal(namespace, Settings())
        assert isinstance(journal, StoredJournal)

        async def serving() -> list[int]:
            ids = _ids([_request(journal, n) for n in range(1, 4)])
            server.terminate()
            server.wait(10)
            with caplog.at_level(logging.INFO, logger="mock_server.journal"):
                await asyncio.sleep(0)  # the turn's write: the server is gone
            assert [r.levelname for r in caplog.records] == ["WARNING"]
            assert caplog.records[0].getMessage().startswith(
                f"journal of session {namespace}: 3 finished entries not written to the store "
                "(ConnectionError")
            return ids

        ids = asyncio.run(serving())
        server = start()  # back, empty (no persistence): the entries kept are written to it
        with caplog.at_level(logging.INFO, logger="mock_server.journal"):
            assert _ids(journal.since(0)) == ids
        assert caplog.records[-1].getMessage().endswith("after 1 failed write(s)")
        assert _ids(_other(url, namespace).since(0)) == ids
    finally:
        store.close()
        server.terminate()
        server.wait(10)
