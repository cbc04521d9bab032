"""Store URLs, and what a store says about itself: its format, its sessions, a wipe."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mock_server.core.journal import finish
from mock_server.core.ledger_codec import FORMAT_VERSION, StoreFormatError
from mock_server.core.stores import StoreError, open_store, parse_store_url
from mock_server.settings import Settings
from tests.stores.conftest import RedisServer

KEY = ("afterpay", "m", "p")


@pytest.mark.parametrize(("text", "kind", "target"), [
    ("memory", "memory", ""),
    ("", "memory", ""),
    ("sqlite:/tmp/x.db", "sqlite", "/tmp/x.db"),
    ("sqlite:///tmp/x.db", "sqlite", "/tmp/x.db"),
    ("sqlite:relative.db", "sqlite", "relative.db"),
    ("redis://127.0.0.1:6379/0", "redis", "redis://127.0.0.1:6379/0"),
])
def test_store_urls(text: str, kind: str, target: str) -> None:
    url = parse_store_url(text)
    assert (url.kind, url.target) == (kind, target)
    assert url.shared == (kind != "memory")


@pytest.mark.parametrize(("text", "line"), [
    ("postgres://x", "'postgres://x' is not a store: use memory, sqlite:PATH or "
                     "redis://HOST:PORT/DB"),
    ("sqlite:", "sqlite: needs a file, e.g. sqlite:/var/lib/sandbox.db"),
])
def test_a_bad_store_url_is_one_line(text: str, line: str) -> None:
    with pytest.raises(StoreError) as caught:
        parse_store_url(text)
    assert str(caught.value) == line


def test_a_sqlite_store_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:{tmp_path / 'nope' / 'x.db'}")


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just words " * 100)
    with pytest.raises(StoreError, match="not a store"):
        open_store(f"sqlite:{path}")


def test_a_sqlite_store_of_another_format_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    open_store(f"sqlite:{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE name = 'format'")
    with pytest.raises(StoreFormatError) as caught:
        open_store(f"sqlite:{path}")
    assert str(caught.value) == (
        f"{path} holds a store of format 999; this sandbox reads format {FORMAT_VERSION} "
        "(wipe it with `mock-server store wipe`, or use another file)")


def test_a_redis_store_of_another_format_is_refused(redis_server: RedisServer) -> None:
    redis_server.client.set("rms:format", "999")
    try:
        with pytest.raises(StoreFormatError, match="holds format 999"):
            open_store(redis_server.url)
    finally:
        redis_server.client.set("rms:format", str(FORMAT_VERSION))


def test_an_unreachable_redis_is_one_line() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("redis://127.0.0.1:1/0")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("redis://127.0.0.1:1/0")


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'store.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client.flushdb()
    return server.url


def test_info_counts_each_session_and_wipe_forgets_them(shared_url: str) -> None:
    store = open_store(shared_url)
    for session, refunds in (("a", 2), ("b", 1)):
        ledger = store.ledger(session)
        ledger.open(KEY, "AUD", Decimal("10"))
        for n in range(refunds):

            from mock_server.core.ledger import RefundEntry
            ledger.refund(KEY, RefundEntry(f"r{n}", Decimal("1"), datetime.now(UTC)))
    store.fault_counters("a").fire("s/r", 1)
    store.callbacks("b").push("cb-1", b"{}", 0.0)
    journal = store.journal("b", Settings())
    for _ in range(3):
        entry = journal.record(at=datetime.now(UTC), provider="afterpay", operation="op",
                               method="GET", path="/", query="", headers=[], body=b"")
        finish(entry, status=200, headers=[], body=b"", duration_ms=1.0)
    info = store.info()
    assert info["format"] == FORMAT_VERSION
    assert info["sessions"] == {
        "a": {"accounts": 1, "refunds": 2, "idempotencyRecords": 0, "faultCounters": 1,
              "pendingCallbacks": 0, "journalEntries": 0},
        "b": {"accounts": 1, "refunds": 1, "idempotencyRecords": 0, "faultCounters": 0,
              "pendingCallbacks": 1, "journalEntries": 3}}
    assert store.wipe() == 2
    assert open_store(shared_url).info()["sessions"] == {}
    assert store.ledger("a").view(KEY) is None
    assert store.fault_counters("a").counts("s/r") == (0, 0)
    assert store.callbacks("b").pending() == []
    assert len(store.journal("b", Settings())) == 0
