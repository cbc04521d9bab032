"""Fault-rule counters and pending callbacks in the SQLite file that holds the ledger: each
operation is one transaction begun IMMEDIATE (the file's write lock from check to commit, across
processes), on disk when it returns (WAL, synchronous=FULL: see core/ledger_sqlite.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager

from mock_server.core.ledger_sqlite import immediate
from mock_server.core.sessionstore import Claimed, Pending

SCHEMA = """
CREATE TABLE IF NOT EXISTS fault_counters (
    ns TEXT NOT NULL, rule TEXT NOT NULL, seen INTEGER NOT NULL, matched INTEGER NOT NULL,
    PRIMARY KEY (ns, rule));
CREATE TABLE IF NOT EXISTS callbacks (
    ns TEXT NOT NULL, item TEXT NOT NULL, payload BLOB NOT NULL, due REAL NOT NULL,
    owner TEXT, lease_until REAL NOT NULL, attempts INTEGER NOT NULL, PRIMARY KEY (ns, item));
CREATE INDEX IF NOT EXISTS callbacks_by_due ON callbacks (ns, due);
"""
TABLES = ("fault_counters", "callbacks")


def prepare(db: sqlite3.Connection) -> None:
    """Makes the tables (a store file of the same format written before they existed gets them;
    they start empty, which is what such a file held)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, SCHEMA.split(";")):
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class _Namespaced:
    def __init__(self, db: sqlite3.Connection, namespace: str, lock: threading.Lock) -> None:
        self._db = db
        self._ns = namespace
        # the lock of the process's one connection: its threads' transactions stay apart
        self._lock = lock

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)


class SqliteFaultCounters(_Namespaced):
    def _row(self, db: sqlite3.Connection, rule: str) -> tuple[int, int]:
        row = db.execute("SELECT seen, matched FROM fault_counters WHERE ns = ? AND rule = ?",
                         (self._ns, rule)).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def _write(self, db: sqlite3.Connection, rule: str, seen: int, matched: int) -> None:
        db.execute("INSERT OR REPLACE INTO fault_counters VALUES (?, ?, ?, ?)",
                   (self._ns, rule, seen, matched))

    def see(self, rule: str, times: int | None) -> int | None:
        with self._transaction() as db:
            seen, matched = self._row(db, rule)
            if times is not None and matched >= times:
                return None
            self._write(db, rule, seen + 1, matched)
            return seen + 1

    def fire(self, rule: str, times: int | None) -> bool:
        with self._transaction() as db:
            seen, matched = self._row(db, rule)
            if times is not None and matched >= times:
                return False
            self._write(db, rule, seen, matched + 1)
            return True

    def counts(self, rule: str) -> tuple[int, int]:
        with self._lock:
            return self._row(self._db, rule)

    def forget(self, rules: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM fault_counters WHERE ns = ? AND rule = ?",
                           [(self._ns, rule) for rule in rules])


class SqliteCallbackQueue(_Namespaced):
    def push(self, item: str, payload: bytes, due: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO callbacks VALUES (?, ?, ?, ?, NULL, 0, 0)",
                       (self._ns, item, payload, due))

    def claim(self, owner: str, now: float, lease: float) -> Claimed | None:
        with self._transaction() as db:
            row = db.execute(
                "SELECT item, payload, attempts FROM callbacks WHERE ns = ? AND due <= ? AND "
                "(owner IS NULL OR lease_until <= ?) ORDER BY due, item LIMIT 1",
                (self._ns, now, now)).fetchone()
            if row is None:
                return None
            item, payload, attempts = row
            db.execute("UPDATE callbacks SET owner = ?, lease_until = ?, attempts = ? "
                       "WHERE ns = ? AND item = ?",
                       (owner, now + lease, attempts + 1, self._ns, item))
        return Claimed(item, bytes(payload), attempts + 1)

    def done(self, item: str, owner: str) -> bool:
        with self._transaction() as db:
            gone = db.execute("DELETE FROM callbacks WHERE ns = ? AND item = ? AND owner = ?",
                              (self._ns, item, owner)).rowcount
        return gone == 1

    def later(self, item: str, owner: str, due: float) -> bool:
        with self._transaction() as db:
            moved = db.execute("UPDATE callbacks SET due = ?, owner = NULL, lease_until = 0 "
                               "WHERE ns = ? AND item = ? AND owner = ?",
                               (due, self._ns, item, owner)).rowcount
        return moved == 1

    def pending(self) -> list[Pending]:
        with self._lock:
            rows = self._db.execute("SELECT item, due, owner FROM callbacks WHERE ns = ? "
                                    "ORDER BY due, item", (self._ns,)).fetchall()
        return [Pending(item, due, owner) for item, due, owner in rows]

    def clear(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM callbacks WHERE ns = ?", (self._ns,))
