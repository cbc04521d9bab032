"""Where session state lives, named by a URL (`--store`): `memory` (this process only),
`sqlite:PATH` (a file, durable), `redis://HOST:PORT/DB` (shared by processes and machines).

A Store makes each session's ledger and journal, and can describe and wipe itself
(`mock-server store`)."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_server.core import snapshot
from mock_server.core.journal import Journal
from mock_server.core.ledger import InMemoryLedger, Ledger
from mock_server.core.ledger_codec import FORMAT_VERSION, StoreFormatError
from mock_server.core.sessionrecords import (
    MemorySessionRecords,
    SessionRecords,
    process_owner,
)
from mock_server.core.sessionstore import (
    CallbackQueue,
    FaultCounters,
    MemoryCallbackQueue,
    MemoryFaultCounters,
)

__all__ = ["Store", "StoreError", "StoreFormatError", "open_store", "parse_store_url"]


class StoreError(Exception):
    """A store URL that names no usable store (one line, for the command line)."""


def refuse_serving(url: StoreUrl) -> None:
    """Raises StoreError (one line) unless the sandbox can serve with all its state in `url`
    (every store it opens can: the refusal is kept for stores named but not usable)."""
    if url.kind not in ("memory", "sqlite", "redis"):
        raise StoreError(f"a {url.kind} store cannot hold a serving sandbox's state")


@dataclass(frozen=True)
class StoreUrl:
    kind: str  # "memory", "sqlite" or "redis"
    target: str  # the file, or the Redis URL; "" for memory

    @property
    def shared(self) -> bool:
        """Whether several processes can serve from it (--workers)."""
        return self.kind != "memory"


def parse_store_url(text: str) -> StoreUrl:
    value = text.strip()
    if value in ("", "memory", "memory:"):
        return StoreUrl("memory", "")
    if value.startswith("sqlite:"):
        path = value[len("sqlite:"):]
        if path.startswith("//"):  # sqlite:///abs/path, the SQLAlchemy spelling
            path = path[2:]
        if not path:
            raise StoreError("sqlite: needs a file, e.g. sqlite:/var/lib/sandbox.db")
        return StoreUrl("sqlite", path)
    if value.startswith(("redis://", "rediss://", "unix://")):
        return StoreUrl("redis", value)
    raise StoreError(f"{text!r} is not a store: use memory, sqlite:PATH or redis://HOST:PORT/DB")


@dataclass
class Store:
    url: StoreUrl
    _handle: Any = field(default=None, repr=False)
    # an SQLite connection is shared by the process's threads: one lock keeps their
    # transactions apart (SQLite's own write lock keeps the processes' apart)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # SQLite: the connection (and its lock) that takes and gives back sessions' locks
    _locks: tuple[sqlite3.Connection, threading.Lock] | None = field(default=None, repr=False)
    # who holds a session's lock in the store: this process, unique among all that share it
    owner: str = field(default_factory=lambda: process_owner(uuid.uuid4().hex[:12]))
    # the journals made on it (StoredJournal): what they queue is written by flush_journals
    _journals: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet, repr=False,
                                            compare=False)
    # redis: the asyncio client's connections (sessionrecords_redis.AsyncLink)
    _link: Any = field(default=None, repr=False, compare=False)

    @property
    def shared(self) -> bool:
        """Whether the sessions' state lives outside this process (World's shared mode)."""
        return self.url.kind != "memory"

    def records(self, name: str) -> SessionRecords:
        """The record (snapshot, lock, sequences) of the session `name`."""
        if self.url.kind == "memory":
            return MemorySessionRecords()
        if self.url.kind == "sqlite":
            from mock_server.core.sessionrecords_sqlite import SqliteSessionRecords

            return SqliteSessionRecords(self._handle, name, self._lock, self._lock_connection())
        from mock_server.core.sessionrecords_redis import AsyncLink, RedisSessionRecords

        if self._link is None:
            self._link = AsyncLink(self.url.target, self._handle)
        return RedisSessionRecords(self._handle, name, self._link)

    def _lock_connection(self) -> tuple[sqlite3.Connection, threading.Lock]:
        if self._locks is None:
            from mock_server.core.ledger_sqlite import connect

            db = connect(self.url.target)
            db.execute("PRAGMA synchronous=NORMAL")
            self._locks = (db, threading.Lock())
        return self._locks

    def session_names(self) -> list[str]:
        """The sessions the store holds a snapshot of."""
        if self.url.kind == "sqlite":
            from mock_server.core.sessionrecords_sqlite import session_names

            return session_names(self._handle, self._lock)
        if self.url.kind == "redis":
            from mock_server.core.sessionrecords_redis import session_names as redis_names

            return redis_names(self._handle)
        return []

    def forget(self, namespace: str) -> None:
        """Drops what one generation of a session left: its accounts, refunds, idempotency
        records, fault counters, callbacks and journal (its snapshot is the records')."""
        for journal in list(self._journals):
            if journal.namespace == namespace:
                journal.discard()  # finished entries not written yet: none is, now
        if self.url.kind == "sqlite":
            from mock_server.core.journal_store import TABLES as JOURNAL_TABLES
            from mock_server.core.ledger_sqlite import immediate
            from mock_server.core.sessionstore_sqlite import TABLES

            with immediate(self._handle, self._lock) as db:
                for table in ("accounts", "refunds", "answers", "refs", *TABLES,
                              *JOURNAL_TABLES):
                    db.execute(f"DELETE FROM {table} WHERE ns = ?", (namespace,))  # noqa: S608
        elif self.url.kind == "redis":
            keys = list(self._handle.scan_iter(match=f"rms:{{{namespace}}}:*", count=1000))
            for start in range(0, len(keys), 500):
                self._handle.delete(*keys[start:start + 500])

    def fault_counters(self, namespace: str) -> FaultCounters:
        """The fault-rule counters of one session."""
        if self.url.kind == "memory":
            return MemoryFaultCounters()
        if self.url.kind == "sqlite":
            from mock_server.core.sessionstore_sqlite import SqliteFaultCounters

            snapshot.counters_type(SqliteFaultCounters)
            return SqliteFaultCounters(self._handle, namespace, self._lock)
        from mock_server.core.sessionstore_redis import RedisFaultCounters

        snapshot.counters_type(RedisFaultCounters)
        return RedisFaultCounters(self._handle, namespace)

    def callbacks(self, namespace: str) -> CallbackQueue:
        """The queue of one session's pending callbacks."""
        if self.url.kind == "memory":
            return MemoryCallbackQueue()
        if self.url.kind == "sqlite":
            from mock_server.core.sessionstore_sqlite import SqliteCallbackQueue

            return SqliteCallbackQueue(self._handle, namespace, self._lock)
        from mock_server.core.sessionstore_redis import RedisCallbackQueue

        return RedisCallbackQueue(self._handle, namespace)

    def ledger(self, namespace: str) -> Ledger:
        """The ledger of one session."""
        if self.url.kind == "memory":
            return InMemoryLedger()
        if self.url.kind == "sqlite":
            from mock_server.core.ledger_sqlite import SqliteLedger

            return SqliteLedger(self._handle, namespace, self._lock)
        from mock_server.core.ledger_redis import RedisLedger

        return RedisLedger(self._handle, namespace)

    def journal(self, namespace: str, settings: Any) -> Journal:
        """The request journal of one session, bounded and redacted as `settings` say."""
        if self.url.kind == "memory":
            return Journal.for_settings(settings)
        from mock_server.core.journal_store import RedisJournal, SqliteJournal, StoredJournal

        if self.url.kind == "sqlite":
            journal = StoredJournal.over(SqliteJournal(self._handle, namespace, self._lock),
                                         settings)
        else:
            journal = StoredJournal.over(RedisJournal(self._handle, namespace), settings)
        self._journals.add(journal)
        return journal

    def flush_journals(self) -> int:
        """Writes what the journals made on this store have queued (the process is stopping:
        each one that cannot says so in one log line); how many entries were written."""
        return sum(journal.flush(last=True) for journal in list(self._journals))

    def info(self) -> Mapping[str, Any]:
        """What the store holds: its kind, format, and counts per session."""
        described: dict[str, Any] = {"store": self.url.kind, "format": FORMAT_VERSION}
        if self.url.kind == "memory":
            described["sessions"] = {}
            return described
        if self.url.kind == "sqlite":
            described["path"] = self.url.target
            sessions: dict[str, dict[str, int]] = {}
            for table, name in (("accounts", "accounts"), ("refunds", "refunds"),
                                ("answers", "idempotencyRecords"),
                                ("fault_counters", "faultCounters"),
                                ("callbacks", "pendingCallbacks"),
                                ("journal", "journalEntries")):
                for ns, count in self._handle.execute(
                        f"SELECT ns, COUNT(*) FROM {table} GROUP BY ns"):  # noqa: S608
                    sessions.setdefault(ns, {"accounts": 0, "refunds": 0,
                                             "idempotencyRecords": 0, "faultCounters": 0,
                                             "pendingCallbacks": 0,
                                             "journalEntries": 0})[name] = count
            described["sessions"] = self._with_snapshots(sessions)
            return described
        names = sorted({key.decode().split("}", 1)[0][len("rms:{"):]
                        for key in self._handle.scan_iter(match="rms:{*", count=1000)})
        described["url"] = self.url.target
        described["sessions"] = self._with_snapshots(
            {name: self._redis_counts(name) for name in names})
        return described

    def _with_snapshots(self, counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """`counts` (per namespace) per session: a generation's (`<session>#<n>`) counted as
        its session's, and the money of each session served from the store read from its
        snapshot (its ledger's checkpoint and the ops after it)."""
        sessions: dict[str, dict[str, int]] = {}
        for namespace, found in sorted(counts.items()):
            into = sessions.setdefault(namespace.split("#", 1)[0], dict.fromkeys(found, 0))
            for name, count in found.items():
                into[name] = into.get(name, 0) + count
        for name in self.session_names():
            loaded = self.records(name).load({})
            if loaded is None or "ledger" not in loaded[1]:
                continue
            from mock_server.core.ledger_log import decode_ops

            ledger = snapshot.loads(loaded[1]["ledger"][1], "ledger", where=f"session {name!r}")
            for ops in loaded[2]:
                ledger.replay(decode_ops(ops))
            into = sessions.setdefault(name, {"accounts": 0, "refunds": 0,
                                              "idempotencyRecords": 0, "faultCounters": 0,
                                              "pendingCallbacks": 0, "journalEntries": 0})
            for key, count in ledger.stats().items():
                into[key] = into.get(key, 0) + count
        return sessions

    def _redis_counts(self, name: str) -> dict[str, int]:
        counts = dict(self.ledger(name).stats())
        rules = {field.rsplit(b"|", 1)[0] for field in
                 self._handle.hkeys(f"rms:{{{name}}}:faults")}
        counts["faultCounters"] = len(rules)
        counts["pendingCallbacks"] = int(self._handle.zcard(f"rms:{{{name}}}:cb:due"))
        counts["journalEntries"] = int(self._handle.zcard(f"rms:{{{name}}}:journal:ids"))
        return counts

    def wipe(self) -> int:
        """Forgets everything the store holds; returns how many sessions it held."""
        sessions = len(self.info()["sessions"])
        if self.url.kind == "sqlite":
            from mock_server.core.journal_store import TABLES as JOURNAL_TABLES
            from mock_server.core.sessionrecords_sqlite import TABLES as RECORDS
            from mock_server.core.sessionstore_sqlite import TABLES

            for table in ("accounts", "refunds", "answers", "refs", *TABLES, *RECORDS,
                          *JOURNAL_TABLES):
                self._handle.execute(f"DELETE FROM {table}")  # noqa: S608
        elif self.url.kind == "redis":
            keys = list(self._handle.scan_iter(match="rms:{*", count=1000))
            for start in range(0, len(keys), 500):
                self._handle.delete(*keys[start:start + 500])
        return sessions

    def close(self) -> None:
        if self._handle is not None:
            self.flush_journals()
            self._handle.close()
        if self._locks is not None:
            self._locks[0].close()
            self._locks = None


def open_store(text: str, *, create: bool = True) -> Store:
    """Opens (and for a new SQLite file, makes) the store at `text`; StoreError or
    StoreFormatError with one line when it cannot."""
    url = parse_store_url(text)
    if url.kind == "memory":
        return Store(url)
    if url.kind == "sqlite":
        from mock_server.core.journal_store import prepare as prepare_journal
        from mock_server.core.ledger_sqlite import connect
        from mock_server.core.sessionstore_sqlite import prepare

        path = Path(url.target)
        if not create and not path.exists():
            raise StoreError(f"{url.target}: no such store file")
        if path.parent and not path.parent.is_dir():
            raise StoreError(f"{url.target}: the folder {path.parent} does not exist")
        try:
            from mock_server.core.sessionrecords_sqlite import prepare as prepare_records

            db = connect(url.target)
            prepare(db)
            prepare_records(db)
            prepare_journal(db)
            return Store(url, db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{url.target}: not a store ({exc})") from None
    try:
        import redis
    except ImportError:
        raise StoreError("redis:// stores need redis-py: pip install "
                         "'refund-mock-server[redis]'") from None
    from mock_server.core.ledger_redis import RedisLedger

    client = redis.Redis.from_url(url.target)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreError(f"{url.target}: {exc}") from None
    RedisLedger.check_format(client)
    return Store(url, client)


def wipe_store(text: str) -> str:
    """Forgets everything the store at `text` holds, also when an incompatible version of the
    sandbox wrote it; says what was wiped. StoreError (one line) when it is not a store."""
    url = parse_store_url(text)
    if url.kind == "memory":
        raise StoreError("the memory store lives in a serving process: restart it, or reset "
                         "sessions with POST /__admin/reset")
    try:
        store = open_store(text, create=False)
    except StoreFormatError:
        return _wipe_other_format(url)
    try:
        return f"{store.wipe()} session(s)"
    finally:
        store.close()


def _wipe_other_format(url: StoreUrl) -> str:
    if url.kind == "sqlite":
        db = sqlite3.connect(url.target, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            tables = [name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                db.execute(f'DROP TABLE "{table}"')
            db.execute("COMMIT")
        finally:
            db.close()
        return "a store of another format"
    import redis

    client = redis.Redis.from_url(url.target)
    try:
        keys = list(client.scan_iter(match="rms:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    finally:
        client.close()
    return "a store of another format"
