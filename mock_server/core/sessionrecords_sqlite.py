"""Session records in the SQLite file that holds the ledger: each step one IMMEDIATE
transaction (core/ledger_sqlite.py), on disk when it returns."""

from __future__ import annotations

import sqlite3
import threading

from mock_server.core.ledger_sqlite import immediate
from mock_server.core.sessionrecords import LockLost

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    ns TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB,
    holder TEXT, lease_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sequences (
    ns TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (ns, name));
"""
TABLES = ("sessions", "sequences")


def prepare(db: sqlite3.Connection) -> None:
    with immediate(db, threading.Lock()) as tx:
        for statement in filter(str.strip, SCHEMA.split(";")):
            tx.execute(statement)


def session_names(db: sqlite3.Connection, lock: threading.Lock) -> list[str]:
    with lock:
        return [name for (name,) in db.execute(
            "SELECT ns FROM sessions WHERE data IS NOT NULL ORDER BY ns")]


class SqliteSessionRecords:
    def __init__(self, db: sqlite3.Connection, namespace: str, lock: threading.Lock,
                 locks: tuple[sqlite3.Connection, threading.Lock] | None = None) -> None:
        self._db = db
        self._ns = namespace
        self._lock = lock
        # the session's lock and snapshot go through a connection that does not sync each
        # commit (synchronous=NORMAL, when the store has one): what it writes is in the file
        # when the call returns (a kill -9 loses none of it) and reaches the disk with the
        # ledger's next step, which syncs (an OS crash may lose the last snapshots, never the
        # ledger's money, answers or references; docs/fidelity.md)
        self._locks_db, self._locks_lock = locks or (db, lock)

    def version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT version FROM sessions WHERE ns = ?",
                                   (self._ns,)).fetchone()
        return 0 if row is None else int(row[0])

    def load(self) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._db.execute("SELECT version, data FROM sessions WHERE ns = ?",
                                   (self._ns,)).fetchone()
        if row is None or row[1] is None:
            return None
        return int(row[0]), bytes(row[1])

    def acquire(self, owner: str, now: float, lease: float) -> int | None:
        with immediate(self._locks_db, self._locks_lock) as db:
            db.execute("INSERT OR IGNORE INTO sessions (ns, version) VALUES (?, 0)", (self._ns,))
            taken = db.execute(
                "UPDATE sessions SET holder = ?, lease_until = ? WHERE ns = ? AND "
                "(holder IS NULL OR holder = ? OR lease_until <= ?) RETURNING version",
                (owner, now + lease, self._ns, owner, now)).fetchone()
        return None if taken is None else int(taken[0])

    def save(self, owner: str, data: bytes) -> int:
        with immediate(self._locks_db, self._locks_lock) as db:
            row = db.execute("UPDATE sessions SET version = version + 1, data = ? WHERE ns = ? "
                             "AND holder = ? RETURNING version",
                             (data, self._ns, owner)).fetchone()
        if row is None:
            raise LockLost(owner)
        return int(row[0])

    def _finish(self, owner: str, data: bytes | None, delete: bool) -> int:
        with immediate(self._locks_db, self._locks_lock) as db:
            row = db.execute("SELECT version, holder FROM sessions WHERE ns = ?",
                             (self._ns,)).fetchone()
            held = row is not None and row[1] == owner
            if (data is not None or delete) and not held:
                raise LockLost(owner)
            if row is None:
                return 0
            version = int(row[0])
            if data is not None or delete:
                version += 1
                db.execute("UPDATE sessions SET version = ?, data = ? WHERE ns = ?",
                           (version, data, self._ns))
            if held:
                db.execute("UPDATE sessions SET holder = NULL, lease_until = 0 WHERE ns = ?",
                           (self._ns,))
        return version

    def release(self, owner: str, data: bytes | None) -> int:
        if data is None:
            with immediate(self._locks_db, self._locks_lock) as db:
                row = db.execute("UPDATE sessions SET holder = NULL, lease_until = 0 WHERE "
                                 "ns = ? AND holder = ? RETURNING version",
                                 (self._ns, owner)).fetchone()
                if row is None:
                    row = db.execute("SELECT version FROM sessions WHERE ns = ?",
                                     (self._ns,)).fetchone()
            return 0 if row is None else int(row[0])
        return self._finish(owner, data, delete=False)

    def delete(self, owner: str) -> int:
        return self._finish(owner, None, delete=True)

    def sequence(self, name: str, start: int) -> int:
        with immediate(self._db, self._lock) as db:
            row = db.execute("SELECT value FROM sequences WHERE ns = ? AND name = ?",
                             (self._ns, name)).fetchone()
            value = (start if row is None else int(row[0])) + 1
            db.execute("INSERT OR REPLACE INTO sequences VALUES (?, ?, ?)",
                       (self._ns, name, value))
        return value
