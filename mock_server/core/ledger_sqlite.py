"""The ledger in an SQLite file (`--store sqlite:PATH`): every atomic step is one transaction
begun IMMEDIATE, so it holds the database's write lock from its check to its commit, across
threads and processes alike; with WAL and synchronous=FULL a step is on disk when it returns.

One file holds every session's ledger: each SqliteLedger is one session's namespace in it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.core.ledger import (
    STALE_CLAIM_SECONDS,
    IN_FLIGHT,
    AccountKey,
    AccountView,
    CaptureExceeded,
    IdempotencyKey,
    InFlight,
    Ledger,
    ReferenceTaken,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
    UnknownAccount,
    opening,
)
from mock_server.core.ledger_codec import (
    FORMAT_VERSION,
    StoreFormatError,
    answer_json,
    entry_json,
    instant_text,
    key_text,
    parse_answer,
    parse_entry,
    parse_instant_text,
)

# A claim whose request never answered (its process was killed) is given up after this long.

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    ns TEXT NOT NULL, account TEXT NOT NULL, currency TEXT NOT NULL,
    authorised TEXT NOT NULL, captured TEXT NOT NULL, refunded TEXT NOT NULL,
    voided TEXT NOT NULL, PRIMARY KEY (ns, account));
CREATE TABLE IF NOT EXISTS refunds (
    ns TEXT NOT NULL, account TEXT NOT NULL, seq INTEGER NOT NULL, refund_id TEXT NOT NULL,
    entry TEXT NOT NULL, PRIMARY KEY (ns, account, seq));
CREATE INDEX IF NOT EXISTS refunds_by_id ON refunds (ns, account, refund_id);
CREATE TABLE IF NOT EXISTS answers (
    ns TEXT NOT NULL, ikey TEXT NOT NULL, account TEXT, state TEXT NOT NULL,
    claimed_at REAL, answer TEXT, expires_at TEXT, PRIMARY KEY (ns, ikey));
CREATE INDEX IF NOT EXISTS answers_by_account ON answers (ns, account);
CREATE TABLE IF NOT EXISTS refs (
    ns TEXT NOT NULL, ref TEXT NOT NULL, account TEXT NOT NULL, PRIMARY KEY (ns, ref));
CREATE INDEX IF NOT EXISTS refs_by_account ON refs (ns, account);
"""


def connect(path: str) -> sqlite3.Connection:
    """A connection to the store at `path`, its schema made or its format checked."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        elif row[0] != str(FORMAT_VERSION):
            raise StoreFormatError(
                f"{path} holds a store of format {row[0]}; this sandbox reads format "
                f"{FORMAT_VERSION} (wipe it with `mock-server store wipe`, or use another file)")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        db.close()
        raise
    return db



@contextmanager
def immediate(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One write transaction on the process's shared connection: `lock` keeps its threads'
    transactions apart, BEGIN IMMEDIATE (SQLite's write lock) the processes'."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

class SqliteLedger(Ledger):
    def __init__(self, db: sqlite3.Connection, namespace: str,
                 lock: threading.Lock | None = None) -> None:
        self._db = db
        self._ns = namespace
        # one connection per process is shared by its threads (and by every session's ledger
        # on it: core.stores.Store passes the connection's one lock); the lock keeps their
        # transactions apart, SQLite's write lock keeps the processes' apart
        self._lock = lock or threading.Lock()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)

    # -- accounts ------------------------------------------------------------------------------

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = (), *, authorised: Decimal | None = None,
             voided: Decimal = Decimal(0), references: Iterable[str] = ()) -> None:
        entries, refunded, authorised = opening(captured, refunds, authorised, voided)
        account = key_text(key)
        taken = list(dict.fromkeys(references))
        with self._transaction() as db:
            for reference in taken:
                row = db.execute("SELECT account FROM refs WHERE ns = ? AND ref = ?",
                                 (self._ns, reference)).fetchone()
                if row is not None and row[0] != account:
                    raise ReferenceTaken(reference)
            db.execute("DELETE FROM refs WHERE ns = ? AND account = ?", (self._ns, account))
            db.executemany("INSERT INTO refs VALUES (?, ?, ?)",
                           [(self._ns, reference, account) for reference in taken])
            db.execute("DELETE FROM answers WHERE ns = ? AND account = ?", (self._ns, account))
            db.execute("DELETE FROM refunds WHERE ns = ? AND account = ?", (self._ns, account))
            db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (self._ns, account, currency, str(authorised), str(captured),
                        str(refunded), str(voided)))
            db.executemany("INSERT INTO refunds VALUES (?, ?, ?, ?, ?)",
                           [(self._ns, account, seq, e.refund_id, entry_json(e))
                            for seq, e in enumerate(entries)])

    def view(self, key: AccountKey) -> AccountView | None:
        with self._lock:
            return self._view(self._db, key_text(key))

    def _view(self, db: sqlite3.Connection, account: str) -> AccountView | None:
        row = db.execute("SELECT currency, authorised, captured, refunded, voided FROM accounts "
                         "WHERE ns = ? AND account = ?", (self._ns, account)).fetchone()
        if row is None:
            return None
        entries = tuple(parse_entry(text) for (text,) in db.execute(
            "SELECT entry FROM refunds WHERE ns = ? AND account = ? ORDER BY seq",
            (self._ns, account)))
        currency, authorised, captured, refunded, voided = row
        return AccountView(currency, Decimal(captured), Decimal(refunded), entries,
                           Decimal(authorised), Decimal(voided))

    def _totals(self, db: sqlite3.Connection, key: AccountKey) -> tuple[str, list[Decimal]]:
        account = key_text(key)
        row = db.execute("SELECT authorised, captured, refunded, voided FROM accounts "
                         "WHERE ns = ? AND account = ?", (self._ns, account)).fetchone()
        if row is None:
            raise UnknownAccount(key)
        return account, [Decimal(v) for v in row]

    # -- the atomic steps ----------------------------------------------------------------------

    def refund(self, key: AccountKey, entry: RefundEntry,
               idempotency_key: IdempotencyKey | None = None,
               answer: StoredAnswer | None = None, reference: str | None = None) -> RefundEntry:
        with self._transaction() as db:
            account, (_authorised, captured, refunded, _voided) = self._totals(db, key)
            if reference is not None and db.execute(
                    "SELECT 1 FROM refs WHERE ns = ? AND ref = ?",
                    (self._ns, reference)).fetchone() is not None:
                raise ReferenceTaken(reference)
            if entry.amount > captured - refunded:
                raise RefundExceeded(captured - refunded)
            if reference is not None:
                db.execute("INSERT INTO refs VALUES (?, ?, ?)", (self._ns, reference, account))
            (seq,) = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM refunds "
                                "WHERE ns = ? AND account = ?", (self._ns, account)).fetchone()
            db.execute("INSERT INTO refunds VALUES (?, ?, ?, ?, ?)",
                       (self._ns, account, seq, entry.refund_id, entry_json(entry)))
            db.execute("UPDATE accounts SET refunded = ? WHERE ns = ? AND account = ?",
                       (str(refunded + entry.amount), self._ns, account))
            self._keep(db, account, idempotency_key, answer)
        return entry

    def capture(self, key: AccountKey, amount: Decimal,
                idempotency_key: IdempotencyKey | None = None,
                answer: StoredAnswer | None = None) -> AccountView:
        with self._transaction() as db:
            account, (authorised, captured, _refunded, voided) = self._totals(db, key)
            if amount > authorised - captured - voided:
                raise CaptureExceeded(authorised - captured - voided)
            db.execute("UPDATE accounts SET captured = ? WHERE ns = ? AND account = ?",
                       (str(captured + amount), self._ns, account))
            self._keep(db, account, idempotency_key, answer)
            view = self._view(db, account)
        assert view is not None
        return view

    def void(self, key: AccountKey, amount: Decimal | None = None,
             idempotency_key: IdempotencyKey | None = None,
             answer: StoredAnswer | None = None) -> AccountView:
        with self._transaction() as db:
            account, (authorised, captured, _refunded, voided) = self._totals(db, key)
            open_to_capture = authorised - captured - voided
            amount = open_to_capture if amount is None else amount
            if amount > open_to_capture:
                raise CaptureExceeded(open_to_capture)
            db.execute("UPDATE accounts SET voided = ? WHERE ns = ? AND account = ?",
                       (str(voided + amount), self._ns, account))
            self._keep(db, account, idempotency_key, answer)
            view = self._view(db, account)
        assert view is not None
        return view

    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        with self._transaction() as db:
            account, (_a, _c, refunded, _v) = self._totals(db, key)
            row = db.execute("SELECT seq, entry FROM refunds WHERE ns = ? AND account = ? AND "
                             "refund_id = ?", (self._ns, account, refund_id)).fetchone()
            if row is None:
                raise UnknownAccount(refund_id)
            seq, text = row
            entry = parse_entry(text)
            updated = entry._replace(details={**entry.details, **details},
                                     reversed=entry.reversed or reverse)
            if reverse and not entry.reversed:
                db.execute("UPDATE accounts SET refunded = ? WHERE ns = ? AND account = ?",
                           (str(refunded - entry.amount), self._ns, account))
            db.execute("UPDATE refunds SET entry = ? WHERE ns = ? AND account = ? AND seq = ?",
                       (entry_json(updated), self._ns, account, seq))
        return updated

    def _keep(self, db: sqlite3.Connection, account: str,
              idempotency_key: IdempotencyKey | None, answer: StoredAnswer | None) -> None:
        if idempotency_key is None or answer is None:
            return
        db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, 'stored', NULL, ?, ?)",
                   (self._ns, key_text(idempotency_key), account, answer_json(answer),
                    instant_text(answer.expires_at)))

    # -- idempotency claims --------------------------------------------------------------------

    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        ikey = key_text(key)
        with self._transaction() as db:
            row = db.execute("SELECT state, claimed_at, answer, expires_at FROM answers "
                             "WHERE ns = ? AND ikey = ?", (self._ns, ikey)).fetchone()
            if row is not None:
                state, claimed_at, text, expires_text = row
                if state == "inflight" and time.time() - claimed_at < STALE_CLAIM_SECONDS:
                    return IN_FLIGHT
                if state == "stored":
                    expires_at = parse_instant_text(expires_text)
                    if expires_at is None or expires_at > now:
                        return parse_answer(text, expires_at)
            db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, NULL, 'inflight', ?, NULL, "
                       "NULL)", (self._ns, ikey, time.time()))
        return None

    def release(self, key: IdempotencyKey) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM answers WHERE ns = ? AND ikey = ? AND state = 'inflight'",
                       (self._ns, key_text(key)))

    def stats(self) -> Mapping[str, int]:
        with self._lock:
            counts = [self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE ns = ?",  # noqa: S608
                                       (self._ns,)).fetchone()[0]
                      for table in ("accounts", "refunds", "answers")]
        return {"accounts": counts[0], "refunds": counts[1], "idempotencyRecords": counts[2]}
