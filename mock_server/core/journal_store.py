"""A session's journal in the store that holds its ledger (`sqlite:`, `redis://`): every process
serving the session reads one journal, and a restart finds it again.

An entry is recorded in its own process as `core.journal.Journal` records it (secrets out, cut to
the entry's budget, at write time), under an id drawn from the session's counter in the store:
unique across the processes sharing the store, and increasing. It is written to the store when it
is finished (`core.journal.finish` hands it to the journal's `_grown`, which `StoredJournal`
overrides), in one transaction or one script that also drops the oldest entries past the bounds
(`max_entries`, `max_bytes`; the newest always stays). While an event loop runs in the thread
that finishes it (a serving process), the entry is queued and the entries finished in one turn
of the loop are written together, in one step, at the start of the next turn: before the loop
reads another request. Any read of the journal writes what is queued first, and so does the
store's close (`core.stores.Store.flush_journals`). Until it is written an entry is seen by its
own process only. Watchers (the live stream, admin/stream.py) stay in-process: an entry another
process finishes is read, not pushed.

The codec (`encode_entry`, `decode_entry`) turns an entry into JSON bytes and back exactly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from mock_server.core.journal import (
    MAX_ENTRY_BYTES,
    MAX_JOURNAL_BYTES,
    HeaderItems,
    Journal,
    JournalEntry,
)
from mock_server.core.ledger_codec import StoreFormatError
from mock_server.core.ledger_sqlite import immediate
from mock_server.core.redact import Redactor, redactor

__all__ = ["PAGE_BYTES", "EntryRow", "JournalBackend", "RedisJournal", "SqliteJournal",
           "StoredJournal", "decode_entry", "encode_entry", "prepare"]

log = logging.getLogger("mock_server.journal")

# A page read from the store ends after the entry that takes it past this many bytes (the
# entries' `size`), the cursor saying where it stopped: the admin API's own cut
# (admin/routes.py PAGE_BYTES), so its answers are those of the in-memory journal, while what one
# read takes out of the store stays bounded whatever the journal holds.
PAGE_BYTES = 8 * 1024 * 1024
# the largest id a store keeps (SQLite's INTEGER); a larger one names no entry
_MAX_ID = 2**63 - 1
# what one script call to Redis carries at most of a batch of entries (more: one call each
# further part): a script blocks the server for every other client while it runs
_SCRIPT_ENTRIES = 512
_SCRIPT_BYTES = 8 * 1024 * 1024


# -- the codec ---------------------------------------------------------------------------------

def _header_list(headers: tuple[tuple[str | bytes, str | bytes], ...]) -> list[list[Any]]:
    # bytes travel as their latin-1 text (one character per byte: exact), with a flag saying
    # which of name (1) and value (2) were bytes
    return [[n.decode("latin-1") if isinstance(n, bytes) else n,
             v.decode("latin-1") if isinstance(v, bytes) else v,
             (type(n) is bytes) | (type(v) is bytes) << 1]
            for n, v in headers]


def _headers(items: list[list[Any]]) -> tuple[tuple[str | bytes, str | bytes], ...]:
    return tuple((n.encode("latin-1") if flags & 1 else n, v.encode("latin-1") if flags & 2 else v)
                 for n, v, flags in items)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def encode_entry(entry: JournalEntry) -> bytes:
    """The entry as JSON bytes: every field but the journal holding it. Bodies in base64 (any
    bytes), header names and values as their exact text or bytes, the instant with its offset;
    `fault` is JSON as the fault rules make it (text and numbers)."""
    return json.dumps({
        "id": entry.id, "at": entry.at.isoformat(), "kind": entry.kind,
        "provider": entry.provider, "operation": entry.operation, "method": entry.method,
        "path": entry.path, "query": entry.query, "headers": _header_list(entry.raw_headers),
        "body": _b64(entry.raw_body), "bodySize": entry.body_size,
        "requestCut": entry.request_cut, "secretsSent": entry.secrets_sent,
        "status": entry.status, "responseHeaders": _header_list(entry.raw_response_headers),
        "responseBody": _b64(entry.raw_response_body),
        "responseBodySize": entry.response_body_size, "responseCut": entry.response_cut,
        "durationMs": entry.duration_ms, "warnings": list(entry.warnings), "fault": entry.fault,
        "size": entry.size,
    }, separators=(",", ":")).encode("ascii")


def decode_entry(raw: bytes | str) -> JournalEntry:
    """The entry `encode_entry` wrote (held by no journal); StoreFormatError for anything else."""
    try:
        data = json.loads(raw)
        return JournalEntry(
            int(data["id"]), datetime.fromisoformat(data["at"]), data["provider"],
            data["operation"], data["method"], data["path"], data["query"],
            _headers(data["headers"]), base64.b64decode(data["body"], validate=True),
            status=int(data["status"]), raw_response_headers=_headers(data["responseHeaders"]),
            raw_response_body=base64.b64decode(data["responseBody"], validate=True),
            duration_ms=float(data["durationMs"]), warnings=tuple(data["warnings"]),
            fault=data["fault"], kind=data["kind"], body_size=int(data["bodySize"]),
            response_body_size=int(data["responseBodySize"]),
            request_cut=bool(data["requestCut"]), response_cut=bool(data["responseCut"]),
            size=int(data["size"]), secrets_sent=bool(data["secretsSent"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreFormatError(f"a journal entry the store holds is not one this sandbox "
                               f"wrote ({type(exc).__name__})") from None


# -- where the entries live --------------------------------------------------------------------

class Filters(NamedTuple):
    provider: str | None = None
    status: int | None = None
    operation: str | None = None

    @property
    def none(self) -> bool:
        return self.provider is None and self.status is None and self.operation is None


class StoredPage(NamedTuple):
    total: int  # the store's entries that match
    entries: list[bytes]  # the first of those below `before`, newest first
    complete: bool  # no more match below `before` than these


class EntryRow(NamedTuple):
    """A finished entry as a store keeps it."""

    id: int
    raw: bytes  # encode_entry's
    filters: Filters
    finished: bool
    size: int


class JournalBackend(Protocol):
    """One session's journal entries in a store. Each call is one atomic step."""

    namespace: str

    def next_id(self) -> int:
        """The next id of the session: one more than any the store gave out before."""

    def append(self, entry_id: int, raw: bytes, filters: Filters, finished: bool, size: int,
               max_entries: int, max_bytes: int) -> None:
        """Keeps an entry, then drops the oldest while more than `max_entries` or `max_bytes`
        are kept (the newest always stays)."""

    def append_many(self, rows: Sequence[EntryRow], max_entries: int, max_bytes: int) -> None:
        """`append` of each, in order, in one atomic step: the bounds are applied after each
        entry, so what is kept is what appending them one at a time keeps. An id the store
        holds already names that entry: it is kept as it is."""

    def get(self, entry_id: int) -> bytes | None: ...

    def page(self, filters: Filters, limit: int, before: int | None,
             page_bytes: int | None) -> StoredPage:
        """Matching entries newest first: at most `limit` with an id below `before`, ending
        after the one that takes their sizes past `page_bytes`."""

    def since(self, after: int) -> list[bytes]:
        """The finished entries with an id above `after`, oldest first."""

    def clear(self) -> int:
        """Forgets the entries (not the id counter); how many there were."""

    def count(self) -> int: ...

    def kept_bytes(self) -> int: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    ns TEXT NOT NULL, id INTEGER NOT NULL, provider TEXT, operation TEXT,
    status INTEGER NOT NULL, finished INTEGER NOT NULL, size INTEGER NOT NULL,
    entry BLOB NOT NULL, PRIMARY KEY (ns, id));
CREATE TABLE IF NOT EXISTS journal_totals (
    ns TEXT PRIMARY KEY, last_id INTEGER NOT NULL, entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
"""
TABLES = ("journal", "journal_totals")


def prepare(db: sqlite3.Connection) -> None:
    """Makes the journal's tables. A store file of the same format written before they existed
    held no journal, which is what it gets (empty tables): nothing is misread."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, SCHEMA.split(";")):
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in zip(("provider", "status", "operation"), filters, strict=True):
        if value is not None:
            clauses.append(f" AND {column} = ?")
            args.append(value)
    return "".join(clauses), args


# the next id of a session's journal in SQLite (also taken in a session's commit step,
# core/sessionrecords_sqlite.py)
NEXT_ID_SQL = ("INSERT INTO journal_totals VALUES (?, 1, 0, 0) ON CONFLICT (ns) DO UPDATE SET "
               "last_id = last_id + 1 RETURNING last_id")


class SqliteJournal:
    """The journal in the SQLite file of the ledger. A change is one IMMEDIATE transaction,
    on disk when it returns (WAL, synchronous=FULL); a read is one read transaction."""

    def __init__(self, db: sqlite3.Connection, namespace: str, lock: threading.Lock) -> None:
        self._db = db
        self._ns = self.namespace = namespace
        self._lock = lock  # the lock of the process's one connection (core.stores.Store)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # one snapshot for the reads of one call (a count and its page agree)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def next_id(self) -> int:
        # Taken at every request, so without the fsync of synchronous=FULL (a tenth of the
        # cost): a process killed keeps it all the same (the OS has it), and an entry written
        # with this id syncs it with its own commit (WAL frames reach the disk in order), so a
        # crash of the machine never gives out again an id that is in the file.
        with self._lock:
            db = self._db
            db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    (entry_id,) = db.execute(NEXT_ID_SQL, (self._ns,)).fetchone()
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.execute("PRAGMA synchronous=FULL")
        return int(entry_id)

    def append(self, entry_id: int, raw: bytes, filters: Filters, finished: bool, size: int,
               max_entries: int, max_bytes: int) -> None:
        self.append_many([EntryRow(entry_id, raw, filters, finished, size)], max_entries,
                         max_bytes)

    def append_many(self, rows: Sequence[EntryRow], max_entries: int, max_bytes: int) -> None:
        # one transaction, so one sync of the WAL, for all of them
        if not rows:
            return
        with immediate(self._db, self._lock) as db:
            for row in rows:
                if not db.execute("INSERT OR IGNORE INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  (self._ns, row.id, row.filters.provider, row.filters.operation,
                                   row.filters.status or 0, int(row.finished), row.size,
                                   row.raw)).rowcount:
                    continue  # kept already
                self._bounded(db, row.id, row.size, max_entries, max_bytes)

    def _bounded(self, db: sqlite3.Connection, entry_id: int, size: int, max_entries: int,
                 max_bytes: int) -> None:
        # the totals with the entry just written, and the oldest dropped past the bounds;
        # a wipe between the id and the entry leaves no totals: they start again here
        entries, used = db.execute(
            "INSERT INTO journal_totals VALUES (?, ?, 1, ?) ON CONFLICT (ns) DO UPDATE SET "
            "entries = entries + 1, bytes = bytes + excluded.bytes, "
            "last_id = MAX(last_id, excluded.last_id) RETURNING entries, bytes",
            (self._ns, entry_id, size)).fetchone()
        if entries > 1 and (entries > max_entries or used > max_bytes):
            while entries > 1 and (entries > max_entries or used > max_bytes):
                # the oldest first, a few at a time (never the newest: at most all but one)
                for gone_id, gone_size in db.execute(
                        "SELECT id, size FROM journal WHERE ns = ? ORDER BY id LIMIT ?",
                        (self._ns, min(entries - 1, 64))).fetchall():
                    if not (entries > max_entries or used > max_bytes):
                        break
                    db.execute("DELETE FROM journal WHERE ns = ? AND id = ?",
                               (self._ns, gone_id))
                    entries -= 1
                    used -= gone_size
            db.execute("UPDATE journal_totals SET entries = ?, bytes = ? WHERE ns = ?",
                       (entries, used, self._ns))

    def get(self, entry_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT entry FROM journal WHERE ns = ? AND id = ?",
                                   (self._ns, entry_id)).fetchone()
        return None if row is None else bytes(row[0])

    def page(self, filters: Filters, limit: int, before: int | None,
             page_bytes: int | None) -> StoredPage:
        where, args = _where(filters)
        found: list[bytes] = []
        used = 0
        complete = True
        with self._read() as db:
            if filters.none:
                row = db.execute("SELECT entries FROM journal_totals WHERE ns = ?",
                                 (self._ns,)).fetchone()
                total = 0 if row is None else int(row[0])
            else:
                (total,) = db.execute(f"SELECT COUNT(*) FROM journal WHERE ns = ?{where}",  # noqa: S608
                                      (self._ns, *args)).fetchone()
            below = "" if before is None else " AND id < ?"
            rows = db.execute(
                f"SELECT size, entry FROM journal WHERE ns = ?{where}{below} "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (self._ns, *args, *(() if before is None else (before,)), limit + 1))
            for size, raw in rows:
                if len(found) >= limit or (page_bytes is not None and used > page_bytes):
                    complete = False
                    break
                found.append(bytes(raw))
                used += size
        return StoredPage(int(total), found, complete)

    def since(self, after: int) -> list[bytes]:
        with self._lock:
            return [bytes(raw) for (raw,) in self._db.execute(
                "SELECT entry FROM journal WHERE ns = ? AND id > ? AND finished = 1 "
                "ORDER BY id", (self._ns, after))]

    def clear(self) -> int:
        with immediate(self._db, self._lock) as db:
            gone = db.execute("DELETE FROM journal WHERE ns = ?", (self._ns,)).rowcount
            db.execute("UPDATE journal_totals SET entries = 0, bytes = 0 WHERE ns = ?",
                       (self._ns,))
        return int(gone)

    def count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT entries FROM journal_totals WHERE ns = ?",
                                   (self._ns,)).fetchone()
        return 0 if row is None else int(row[0])

    def kept_bytes(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT bytes FROM journal_totals WHERE ns = ?",
                                   (self._ns,)).fetchone()
        return 0 if row is None else int(row[0])


# Redis: KEYS are always ids (zset id -> id), entries (hash id -> entry), meta (hash id -> JSON
# [size, finished, status, provider, operation]), bytes (string); ARGV as each script says.

# ARGV: max entries, max bytes, then id, entry, meta, size of each entry, in order; after each
# the oldest are dropped past the bounds (as one script call per entry would). An id kept
# already names that entry (ZADD NX): it stays as it is.
_APPEND = """
local max_entries, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
for i = 3, #ARGV, 4 do
  if redis.call('ZADD', KEYS[1], 'NX', ARGV[i], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
    local used = redis.call('INCRBY', KEYS[4], ARGV[i + 3])
    count = count + 1
    while count > 1 and (count > max_entries or used > max_bytes) do
      local oldest = redis.call('ZPOPMIN', KEYS[1])[1]
      local meta = cjson.decode(redis.call('HGET', KEYS[3], oldest))
      redis.call('HDEL', KEYS[2], oldest)
      redis.call('HDEL', KEYS[3], oldest)
      used = redis.call('DECRBY', KEYS[4], meta[1])
      count = count - 1
    end
  end
end
return count
"""

# ARGV: filtered ('1' or '0'), provider, status, operation ('' = any, each), limit, before
# ('' = none), page bytes ('' = none). Returns {total, complete, entry, entry, ...}.
_PAGE = """
local filtered = ARGV[1] == '1'
local provider, status, operation = ARGV[2], ARGV[3], ARGV[4]
local limit = tonumber(ARGV[5])
local before = ARGV[6] ~= '' and tonumber(ARGV[6]) or nil
local page_bytes = ARGV[7] ~= '' and tonumber(ARGV[7]) or nil
local total, complete, used, found = 0, 1, 0, {}
local ids
if filtered then
  ids = redis.call('ZREVRANGE', KEYS[1], 0, -1)
else
  total = redis.call('ZCARD', KEYS[1])
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], before and ('(' .. ARGV[6]) or '+inf', '-inf',
                   'LIMIT', 0, limit + 1)
end
for _, id in ipairs(ids) do
  local meta = cjson.decode(redis.call('HGET', KEYS[3], id))
  local matches = true
  if filtered then
    matches = (provider == '' or meta[4] == provider)
      and (status == '' or meta[3] == tonumber(status))
      and (operation == '' or meta[5] == operation)
    if matches then total = total + 1 end
  end
  if matches and (before == nil or tonumber(id) < before) and complete == 1 then
    if #found >= limit or (page_bytes and used > page_bytes) then
      complete = 0
      if not filtered then break end
    else
      found[#found + 1] = redis.call('HGET', KEYS[2], id)
      used = used + meta[1]
    end
  end
end
local answer = {total, complete}
for _, raw in ipairs(found) do answer[#answer + 1] = raw end
return answer
"""

# ARGV: after
_SINCE = """
local found = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  if cjson.decode(redis.call('HGET', KEYS[3], id))[2] == 1 then
    found[#found + 1] = redis.call('HGET', KEYS[2], id)
  end
end
return found
"""

_CLEAR = """
local count = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return count
"""


def redis_sequence_key(namespace: str) -> str:
    """The Redis key of a session journal's id counter (INCR gives the next id)."""
    return f"rms:{{{namespace}}}:journal:seq"


class RedisJournal:
    """The journal in the Redis server of the ledger: a change, and a page, is one script; the
    session's keys carry its hash tag (`rms:{<session>}:journal...`)."""

    def __init__(self, client: Any, namespace: str) -> None:
        self._redis = client
        self.namespace = namespace
        prefix = f"rms:{{{namespace}}}:journal"
        self._seq = redis_sequence_key(namespace)
        self._keys = [f"{prefix}:{part}" for part in ("ids", "entries", "meta", "bytes")]
        self._append = client.register_script(_APPEND)
        self._page = client.register_script(_PAGE)
        self._since = client.register_script(_SINCE)
        self._clear = client.register_script(_CLEAR)

    def next_id(self) -> int:
        return int(self._redis.incr(self._seq))

    def append(self, entry_id: int, raw: bytes, filters: Filters, finished: bool, size: int,
               max_entries: int, max_bytes: int) -> None:
        self.append_many([EntryRow(entry_id, raw, filters, finished, size)], max_entries,
                         max_bytes)

    def append_many(self, rows: Sequence[EntryRow], max_entries: int, max_bytes: int) -> None:
        # one script call, one round trip (a larger batch: one call per _SCRIPT_ENTRIES or
        # _SCRIPT_BYTES of it, in order)
        args: list[Any] = [max_entries, max_bytes]
        carried = 0
        for row in rows:
            provider, status, operation = row.filters
            args += [row.id, row.raw, json.dumps([row.size, int(row.finished), status or 0,
                                                  provider, operation], separators=(",", ":")),
                     row.size]
            carried += len(row.raw)
            if len(args) >= 2 + 4 * _SCRIPT_ENTRIES or carried >= _SCRIPT_BYTES:
                self._append(keys=self._keys, args=args)
                args, carried = [max_entries, max_bytes], 0
        if len(args) > 2:
            self._append(keys=self._keys, args=args)

    def get(self, entry_id: int) -> bytes | None:
        raw = self._redis.hget(self._keys[1], str(entry_id))
        return None if raw is None else bytes(raw)

    def page(self, filters: Filters, limit: int, before: int | None,
             page_bytes: int | None) -> StoredPage:
        provider, status, operation = filters
        answer = self._page(keys=self._keys, args=[
            "0" if filters.none else "1", provider or "", "" if status is None else status,
            operation or "", limit, "" if before is None else before,
            "" if page_bytes is None else page_bytes])
        return StoredPage(int(answer[0]), [bytes(raw) for raw in answer[2:]], answer[1] == 1)

    def since(self, after: int) -> list[bytes]:
        return [bytes(raw) for raw in self._since(keys=self._keys, args=[after])]

    def clear(self) -> int:
        return int(self._clear(keys=self._keys))

    def count(self) -> int:
        return int(self._redis.zcard(self._keys[0]))

    def kept_bytes(self) -> int:
        return int(self._redis.get(self._keys[3]) or 0)


# -- the journal -------------------------------------------------------------------------------

class StoredJournal(Journal):
    """`Journal`'s behaviour (bounds, paging, filters, redaction, watchers) over entries kept in
    a store, shared with every process that serves the session from it."""

    def __init__(self, backend: JournalBackend, max_entries: int = 10_000, *,
                 entry_bytes: int = MAX_ENTRY_BYTES, max_bytes: int = MAX_JOURNAL_BYTES,
                 redact: Redactor | None = None) -> None:
        super().__init__(max_entries, entry_bytes=entry_bytes, max_bytes=max_bytes,
                         redact=redact)
        self.backend = backend
        self.namespace: str = getattr(backend, "namespace", "")
        # entries recorded here and not finished yet, oldest first: seen by this process only
        self._pending: dict[int, JournalEntry] = {}
        self._pending_bytes = 0
        # entries finished and not written yet, by id: written together once per turn of the
        # event loop that finished them, and before any read
        self._queued: dict[int, EntryRow] = {}
        self._queued_bytes = 0
        # the loop a write of the queue is scheduled on (None: none is)
        self._soon: asyncio.AbstractEventLoop | None = None
        # one write of the queue at a time: a read waits for the one under way
        self._writing = threading.Lock()
        self._failed_writes = 0

    in_store = True
    # an id the store gave out for this journal's next entry (taken in the session's commit)
    _reserved: int | None = None

    def reserve(self, entry_id: int | None) -> None:
        self._reserved = entry_id

    @classmethod
    def over(cls, backend: JournalBackend, settings: Any) -> StoredJournal:
        return cls(backend, settings.journal_size, entry_bytes=settings.journal_entry_bytes,
                   max_bytes=settings.journal_bytes, redact=redactor(tuple(settings.redact)))

    def record(self, *, at: datetime, provider: str | None, operation: str | None, method: str,
               path: str, query: str, headers: HeaderItems, body: bytes,
               kind: str = "request") -> JournalEntry:
        made = self._made(at=at, provider=provider, operation=operation, method=method,
                          path=path, query=query, headers=headers, body=body, kind=kind)
        entry_id, self._reserved = self._reserved, None
        entry = made(entry_id if entry_id is not None else self.backend.next_id())
        with self._lock:
            self._pending[entry.id] = entry
            self._pending_bytes += entry.size
            # entries never finished are bounded as the journal is (the newest stays)
            while len(self._pending) > 1 and (len(self._pending) > self.max_entries
                                              or self._pending_bytes > self.max_bytes):
                gone = self._pending.pop(next(iter(self._pending)))
                gone.journal = None
                self._pending_bytes -= gone.size
        return entry

    def _grown(self, entry: JournalEntry, added: int) -> None:
        # finish(): the entry's answer is recorded; it goes to the store, for every process
        with self._lock:
            if self._pending.pop(entry.id, None) is None:
                return  # cleared, or pushed out, before it was finished
            self._pending_bytes -= entry.size
        entry.size += added
        row = EntryRow(entry.id, encode_entry(entry),
                       Filters(entry.provider, entry.status, entry.operation),
                       entry.duration_ms > 0.0, entry.size)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop here (a command, a thread): written now
            self.backend.append_many([row], self.max_entries, self.max_bytes)
            return
        # Served: written with the others this turn of the loop finishes, in one step of the
        # store, by a callback that runs before the loop reads any more from its sockets (so
        # before the next request of this connection, or of any other, is processed).
        with self._lock:
            self._queue(row)
            if self._soon is loop:
                return
            self._soon = loop
        loop.call_soon(self._write_soon)

    def _queue(self, row: EntryRow) -> None:
        # the lock is held; bounded as the store bounds them (the oldest go, the newest stays)
        queued = self._queued
        if row.id in queued:
            return
        queued[row.id] = row
        self._queued_bytes += row.size
        while len(queued) > 1 and (len(queued) > self.max_entries
                                   or self._queued_bytes > self.max_bytes):
            self._queued_bytes -= queued.pop(min(queued)).size

    def _write_soon(self) -> None:
        with self._lock:
            self._soon = None
        with contextlib.suppress(Exception):  # logged, and the entries kept to write next
            self.flush()

    def flush(self, *, last: bool = False) -> int:
        """Writes the entries finished and not written yet, in one step of the store; how many.
        When the store fails, says so in one log line and raises its error, the entries kept
        (within the journal's bounds) for the next write; `last` (the process is stopping):
        they are dropped with that line instead, and nothing is raised."""
        with self._writing:
            with self._lock:
                if not self._queued:
                    return 0
                rows = [self._queued[entry_id] for entry_id in sorted(self._queued)]
                self._queued = {}
                self._queued_bytes = 0
            try:
                self.backend.append_many(rows, self.max_entries, self.max_bytes)
            except BaseException as exc:
                self._not_written(rows, exc, last)
                if last and isinstance(exc, Exception):
                    return 0
                raise
            if self._failed_writes:
                log.info("journal of session %s: written to the store again, after %d failed "
                         "write(s)", self.namespace, self._failed_writes)
                self._failed_writes = 0
        return len(rows)

    def _not_written(self, rows: list[EntryRow], exc: BaseException, last: bool) -> None:
        self._failed_writes += 1
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ").replace("\n", " ")
        if last:
            log.error("journal of session %s: %d finished entr%s not written to the store "
                      "(%s); lost: the process is stopping", self.namespace, len(rows),
                      "y" if len(rows) == 1 else "ies", reason)
            return
        with self._lock:
            for row in rows:
                self._queue(row)
            kept = len(self._queued)
        log.warning("journal of session %s: %d finished entr%s not written to the store (%s); "
                    "%d kept in this process for the next write (at most %d entries, %d bytes, "
                    "the oldest dropped first)", self.namespace, len(rows),
                    "y" if len(rows) == 1 else "ies", reason, kept, self.max_entries,
                    self.max_bytes)

    def discard(self) -> int:
        """Forgets the entries finished and not written yet (their session's generation is
        gone from the store); how many."""
        with self._lock:
            gone = len(self._queued)
            self._queued = {}
            self._queued_bytes = 0
        return gone

    def _local(self, filters: Filters) -> list[JournalEntry]:
        provider, status, operation = filters
        with self._lock:
            return [e for e in reversed(self._pending.values())
                    if (provider is None or e.provider == provider)
                    and (status is None or e.status == status)
                    and (operation is None or e.operation == operation)]

    def get(self, entry_id: int) -> JournalEntry | None:
        with self._lock:
            found = self._pending.get(entry_id)
        if found is not None:
            return found
        if not 0 < entry_id <= _MAX_ID:
            return None
        self.flush()
        raw = self.backend.get(entry_id)
        return None if raw is None else decode_entry(raw)

    def query(self, *, provider: str | None = None, status: int | None = None,
              operation: str | None = None, limit: int = 100) -> tuple[int, list[JournalEntry]]:
        total, entries, _next = self._read_page(Filters(provider, status, operation), limit,
                                                None, None)
        return total, entries

    def page(self, *, provider: str | None = None, status: int | None = None,
             operation: str | None = None, limit: int = 100, before: int | None = None
             ) -> tuple[int, list[JournalEntry], int | None]:
        return self._read_page(Filters(provider, status, operation), limit, before, PAGE_BYTES)

    def _read_page(self, filters: Filters, limit: int, before: int | None,
                   page_bytes: int | None) -> tuple[int, list[JournalEntry], int | None]:
        self.flush()
        local = self._local(filters)
        if before is not None and before > _MAX_ID:
            before = None  # every id is below it
        stored = self.backend.page(filters, max(limit, 0), before, page_bytes)
        kept = [decode_entry(raw) for raw in stored.entries]
        merged = sorted([*kept, *(e for e in local if before is None or e.id < before)],
                        key=lambda e: e.id, reverse=True)
        more = not stored.complete
        if more and kept:
            # what the store did not give lies below its last entry
            floor = kept[-1].id
            merged = [e for e in merged if e.id >= floor]
        page = merged[:max(limit, 0)]
        more = more or len(merged) > len(page)
        return stored.total + len(local), page, page[-1].id if more and page else None

    def since(self, after: int) -> list[JournalEntry]:
        # entries not finished are not listed (as Journal.since): only the store's
        self.flush()
        if after >= _MAX_ID:
            return []
        return [decode_entry(raw) for raw in self.backend.since(max(after, 0))]

    def clear(self) -> int:
        # what is queued is written first, so that the count is the journal's (its bounds)
        self.flush()
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            self._pending_bytes = 0
        for entry in pending:
            entry.journal = None
        return self.backend.clear() + len(pending)

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            local = len(self._pending)
        return self.backend.count() + local

    # last in the class: its name is the builtin type above
    @property
    def bytes(self) -> int:
        """The bytes kept in the store, and those of the entries not finished yet."""
        self.flush()
        return self.backend.kept_bytes() + self._pending_bytes

    @bytes.setter
    def bytes(self, _value: int) -> None:
        pass  # Journal.__init__ starts its own count; the store keeps this one
