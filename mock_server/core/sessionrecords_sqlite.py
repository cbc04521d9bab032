"""Session records in the SQLite file that holds the ledger: each step one IMMEDIATE
transaction (core/ledger_sqlite.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping

from mock_server.core.journal_store import NEXT_ID_SQL
from mock_server.core.ledger_sqlite import immediate
from mock_server.core.sessionrecords import Loaded, LockLost, Parts

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    ns TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB,
    holder TEXT, lease_until REAL NOT NULL DEFAULT 0,
    wanter TEXT, wanted_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS session_parts (
    ns TEXT NOT NULL, part TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (ns, part));
CREATE TABLE IF NOT EXISTS sequences (
    ns TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (ns, name));
CREATE TABLE IF NOT EXISTS session_ops (
    ns TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (ns, version));
"""
TABLES = ("sessions", "session_parts", "sequences", "session_ops")
# `sessions.data` is this marker while the session has a snapshot, NULL when it has none
_PRESENT = b"1"


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
        with self._locks_lock:
            row = self._locks_db.execute("SELECT version FROM sessions WHERE ns = ?",
                                         (self._ns,)).fetchone()
        return 0 if row is None else int(row[0])

    def load(self, have: Mapping[str, int], since: int = -1) -> Loaded | None:
        with self._locks_lock:
            db = self._locks_db
            db.execute("BEGIN")  # one snapshot of the file for all of it
            try:
                row = db.execute("SELECT version, data FROM sessions WHERE ns = ?",
                                 (self._ns,)).fetchone()
                if row is None or row[1] is None:
                    return None
                versions = db.execute("SELECT part, version FROM session_parts WHERE ns = ?",
                                      (self._ns,)).fetchall()
                parts = {}
                after = since
                for part, version in versions:
                    if part == "ledger":
                        after = max(after, int(version))
                    if have.get(part) != version:
                        (data,) = db.execute("SELECT data FROM session_parts WHERE ns = ? AND "
                                             "part = ?", (self._ns, part)).fetchone()
                        parts[part] = (int(version), bytes(data))
                ops = [bytes(data) for (data,) in db.execute(
                    "SELECT data FROM session_ops WHERE ns = ? AND version > ? ORDER BY "
                    "version", (self._ns, after))]
            finally:
                db.execute("COMMIT")
        return int(row[0]), parts, ops

    def acquire(self, owner: str, now: float, lease: float, *,
                steal: str | None = None, want: float = 0.0) -> int | None:
        with immediate(self._locks_db, self._locks_lock) as db:
            db.execute("INSERT OR IGNORE INTO sessions (ns, version) VALUES (?, 0)", (self._ns,))
            # free (or expired, or a dead holder's), and nobody else asked first; or ours
            taken = db.execute(
                "UPDATE sessions SET holder = ?, lease_until = ?, wanter = CASE WHEN wanter = ? "
                "THEN NULL ELSE wanter END WHERE ns = ? AND ((holder = ? AND lease_until > ?) "
                "OR ((holder IS NULL OR holder = ? OR holder = ? OR lease_until <= ?) AND "
                "(wanter IS NULL OR wanter = ? OR wanted_until <= ?))) RETURNING version",
                (owner, now + lease, owner, self._ns, owner, now, owner, steal, now, owner,
                 now)).fetchone()
            if taken is None and want > 0:
                db.execute("UPDATE sessions SET wanter = ?, wanted_until = ? WHERE ns = ? AND "
                           "(wanter IS NULL OR wanter = ? OR wanted_until <= ?)",
                           (owner, now + want, self._ns, owner, now))
        return None if taken is None else int(taken[0])

    def holder(self, now: float) -> str | None:
        with self._locks_lock:
            row = self._locks_db.execute("SELECT holder, lease_until FROM sessions WHERE ns = ?",
                                         (self._ns,)).fetchone()
        if row is None or row[0] is None or row[1] <= now:
            return None
        return str(row[0])

    def _finish(self, owner: str, parts: Parts | None, ops: bytes | None = None, *,
                delete: bool = False, unlock: bool = True,
                keep_until: tuple[float, float] | None = None,
                reserve: str | None = None) -> tuple[int, bool, int | None]:
        """The version, whether `owner` still holds the lock, and the journal id reserved."""
        # money (the ledger's ops or part) goes through the connection that syncs each commit
        # (synchronous=FULL): on disk before the answer that reports it is sent
        money = bool(ops) or (parts is not None and "ledger" in parts)
        reserved: int | None = None
        db_of, lock_of = (self._db, self._lock) if money else (self._locks_db, self._locks_lock)
        with immediate(db_of, lock_of) as db:
            row = db.execute("SELECT version, holder FROM sessions WHERE ns = ?",
                             (self._ns,)).fetchone()
            held = row is not None and row[1] == owner
            if (parts or ops or delete or keep_until) and not held:
                raise LockLost(owner)
            if row is None:
                return 0, False, None
            version = int(row[0])
            if parts or ops or delete:
                version += 1
                db.execute("UPDATE sessions SET version = ?, data = ? WHERE ns = ?",
                           (version, None if delete else _PRESENT, self._ns))
                if delete or (parts and "ledger" in parts):
                    db.execute("DELETE FROM session_ops WHERE ns = ?", (self._ns,))
                if delete:
                    db.execute("DELETE FROM session_parts WHERE ns = ?", (self._ns,))
                else:
                    db.executemany("INSERT OR REPLACE INTO session_parts VALUES (?, ?, ?, ?)",
                                   [(self._ns, name, version, data)
                                    for name, data in (parts or {}).items()])
                    if ops:
                        db.execute("INSERT INTO session_ops VALUES (?, ?, ?)",
                                   (self._ns, version, ops))
            if keep_until is not None:
                # kept for the owner's next request, unless another owner asks for it
                now, until = keep_until
                unlock = db.execute(
                    "SELECT 1 FROM sessions WHERE ns = ? AND wanter IS NOT NULL AND "
                    "wanter != ? AND wanted_until > ?", (self._ns, owner, now)).fetchone() \
                    is not None
                if not unlock:
                    db.execute("UPDATE sessions SET lease_until = ? WHERE ns = ?",
                               (until, self._ns))
                    if reserve:
                        (reserved,) = db.execute(NEXT_ID_SQL, (reserve,)).fetchone()
            if held and unlock:
                db.execute("UPDATE sessions SET holder = NULL, lease_until = 0 WHERE ns = ?",
                           (self._ns,))
        return version, held and not unlock, reserved

    def save(self, owner: str, parts: Parts, ops: bytes | None = None) -> int:
        return self._finish(owner, parts, ops, unlock=False)[0]

    def release(self, owner: str, parts: Parts | None, ops: bytes | None = None) -> int:
        return self._finish(owner, parts, ops)[0]

    def keep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
             lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        return self._finish(owner, parts, ops, keep_until=(now, now + lease), reserve=reserve)

    async def akeep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
                    lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        # a file in this process: its step (and its sync) runs here either way
        return self.keep(owner, parts, ops, now, lease, reserve)

    def delete(self, owner: str) -> int:
        return self._finish(owner, None, delete=True)[0]

    def sequence(self, name: str, start: int) -> int:
        with immediate(self._db, self._lock) as db:
            row = db.execute("SELECT value FROM sequences WHERE ns = ? AND name = ?",
                             (self._ns, name)).fetchone()
            value = (start if row is None else int(row[0])) + 1
            db.execute("INSERT OR REPLACE INTO sequences VALUES (?, ?, ?)",
                       (self._ns, name, value))
        return value
