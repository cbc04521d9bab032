"""The bounded request journal of a session, newest first on read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_server.core.clock import iso_millis
from mock_server.core.redact import REDACTED, Redactor, redactor

__all__ = ["REDACTED", "Journal", "JournalEntry", "finish", "redact_headers", "body_text"]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                             "x-api-key", "x-sandbox-session-token"})
# What one entry keeps of the request (headers and body together), and again of the answer,
# unless the journal is given another figure (--journal-entry-bytes).
MAX_ENTRY_BYTES = 64 * 1024
# kept for callers that knew the old per-body figure
MAX_BODY_CHARS = MAX_ENTRY_BYTES
# what a list of entries shows of each body; GET /__admin/requests/{id} shows all that was kept
LIST_BODY_BYTES = 4 * 1024
# a session's journal in all (--journal-bytes); never less than a few whole entries
MAX_JOURNAL_BYTES = 64 * 1024 * 1024
_REDACT_SLACK = 16 * 1024  # longer than any credential a client sends
_ENTRY_OVERHEAD = 256  # the fields besides headers and bodies, roughly, per entry


HeaderItems = Iterable[tuple[str | bytes, str | bytes]]


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def redact_headers(headers: HeaderItems) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = _text(name).lower()
        kept[lower] = REDACTED if lower in _SECRET_HEADERS else _text(value)
    return kept


def body_text(raw: bytes, limit: int | None = None) -> str:
    return (raw if limit is None else raw[:limit]).decode("utf-8", errors="replace")


def _kept(headers: tuple[tuple[str | bytes, str | bytes], ...], body: bytes, budget: int,
          clean: Redactor, own_answer: bool = False
          ) -> tuple[tuple[tuple[bytes, bytes], ...], bytes, bool, int, bool]:
    """Headers (secrets out) and body (secrets out) within `budget` bytes together: the headers
    first, in order, as many as fit; the body gets what is left. Also whether anything was cut,
    the bytes kept, and whether the body had secrets. With own_answer (the sandbox's answer to
    a request that brought no secret in query or body), only JWTs are looked for."""
    # the sandbox's own answer headers carry nothing a client sent (no cookie, no credential)
    kept = headers if own_answer else clean.headers(headers)  # type: ignore[assignment]
    used = sum(map(len, chain.from_iterable(kept)))  # in C: this runs at every request
    cut = redacted = False
    if used > budget:
        fitting: list[tuple[bytes, bytes]] = []
        used = 0
        for name, value in kept:
            size = len(name) + len(value)
            if used + size > budget:
                break
            fitting.append((name, value))
            used += size
        kept, cut = tuple(fitting), True
    # redacted, then cut: a secret cut in two would no longer be recognised. What lies well
    # beyond the cut is not kept at all, so it need not be looked at.
    room = budget - used
    if own_answer:
        # the sandbox's own answer holds no secret a client sent, only the tokens it issues
        if b"eyJ" in body:
            body = clean.jwts(body)
    elif body:
        looked_at = body[:room + _REDACT_SLACK] if len(body) > room else body
        body = clean.body(looked_at, kept)
        redacted = body is not looked_at
    if len(body) > room:
        body, cut = body[:room], True
    return kept, body, cut, used + len(body), redacted


@dataclass(slots=True)
class JournalEntry:
    """One request (or callback attempt) and its answer, secrets already taken out and cut to
    the entry's budget when written; turned into text only when read: every request is
    journaled, few entries are ever read."""

    id: int
    at: datetime
    provider: str | None
    operation: str | None
    method: str
    path: str
    query: str
    raw_headers: tuple[tuple[str | bytes, str | bytes], ...]
    raw_body: bytes
    status: int = 0
    raw_response_headers: tuple[tuple[str | bytes, str | bytes], ...] = ()
    raw_response_body: bytes = b""
    duration_ms: float = 0.0
    warnings: tuple[str, ...] = ()
    fault: dict[str, Any] | None = None
    kind: str = "request"  # "request", or "callback" for an outgoing webhook attempt
    body_size: int = 0  # the body as it came, before the journal cut it
    response_body_size: int = 0
    request_cut: bool = False  # headers or body cut to the entry's budget
    response_cut: bool = False
    size: int = 0  # what the journal counts against its byte budget
    secrets_sent: bool = False  # the query or body held a secret (taken out)
    journal: Journal | None = None

    @property
    def headers(self) -> dict[str, str]:
        return redact_headers(self.raw_headers)

    @property
    def body(self) -> str:
        return body_text(self.raw_body)

    @property
    def response_headers(self) -> dict[str, str]:
        return redact_headers(self.raw_response_headers)

    @property
    def response_body(self) -> str:
        return body_text(self.raw_response_body)

    def to_json(self, body_limit: int | None = None) -> dict[str, Any]:
        """The entry as the admin API shows it; with body_limit, each body cut to that many
        bytes (a list of entries), `bodyTruncated` saying whether what is shown is all."""
        body = self.raw_body if body_limit is None else self.raw_body[:body_limit]
        answer = (self.raw_response_body if body_limit is None
                  else self.raw_response_body[:body_limit])
        return {
            "id": self.id,
            "at": iso_millis(self.at),
            "kind": self.kind,
            "provider": self.provider,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": body_text(body),
            "bodyBytes": self.body_size,
            "bodyTruncated": len(body) < self.body_size,
            "status": self.status,
            "responseHeaders": self.response_headers,
            "responseBody": body_text(answer),
            "responseBodyBytes": self.response_body_size,
            "responseBodyTruncated": len(answer) < self.response_body_size,
            "durationMs": round(self.duration_ms, 3),
            "warnings": list(self.warnings),
            "fault": self.fault,
        }


class Journal:
    """At most `max_entries` entries and `max_bytes` bytes in all, each entry at most
    `entry_bytes` of its request and again of its answer; the oldest go first."""

    def __init__(self, max_entries: int = 10_000, *, entry_bytes: int = MAX_ENTRY_BYTES,
                 max_bytes: int = MAX_JOURNAL_BYTES, redact: Redactor | None = None) -> None:
        self._entries: deque[JournalEntry] = deque()
        self.max_entries = max_entries
        self.entry_bytes = entry_bytes
        # never so small that one whole entry would not fit
        self.max_bytes = max(max_bytes, 2 * (entry_bytes + _ENTRY_OVERHEAD))
        self.redact = redact or redactor()
        self.bytes = 0
        self._next_id = 1
        self._lock = threading.Lock()
        # called with each entry once its answer is recorded (the dashboard's live stream,
        # admin/stream.py); empty while nobody watches, so a request pays one truth test
        self.watchers: list[Callable[[JournalEntry], None]] = []

    # a journal in a store shared by processes takes ids from the store: the session's commit
    # can take the next request's id in its own step (core.world.World.commit; `reserve`)
    in_store = False

    def reserve(self, entry_id: int | None) -> None:
        """The id the next `record` takes (None: none reserved); a journal in this process
        numbers its entries itself."""

    @classmethod
    def for_settings(cls, settings: Any) -> Journal:
        return cls(settings.journal_size, entry_bytes=settings.journal_entry_bytes,
                   max_bytes=settings.journal_bytes, redact=redactor(tuple(settings.redact)))

    def record(self, *, at: datetime, provider: str | None, operation: str | None, method: str,
               path: str, query: str, headers: HeaderItems, body: bytes,
               kind: str = "request") -> JournalEntry:
        made = self._made(at=at, provider=provider, operation=operation, method=method,
                          path=path, query=query, headers=headers, body=body, kind=kind)
        with self._lock:
            entry = made(self._next_id)
            self._next_id += 1
            self._entries.append(entry)
            self.bytes += entry.size
            self._shrink()
            return entry

    def _made(self, *, at: datetime, provider: str | None, operation: str | None, method: str,
              path: str, query: str, headers: HeaderItems, body: bytes,
              kind: str) -> Callable[[int], JournalEntry]:
        """The entry as it is kept (redacted, cut to its budget), given its id; the redaction
        runs before the id is taken."""
        clean = self.redact
        kept_headers, kept_body, cut, kept, redacted = _kept(tuple(headers), body,
                                                             self.entry_bytes, clean)
        kept_query = clean.query(query)
        size = _ENTRY_OVERHEAD + len(path) + len(query) + kept
        kept_path = clean.path(path)
        secrets_sent = redacted or kept_query is not query

        def made(entry_id: int) -> JournalEntry:
            return JournalEntry(entry_id, at, provider, operation, method, kept_path,
                                kept_query, kept_headers, kept_body, kind=kind,
                                body_size=len(body), request_cut=cut, size=size, journal=self,
                                secrets_sent=secrets_sent)

        return made

    def _grown(self, entry: JournalEntry, added: int) -> None:
        """finish() recorded `entry`'s answer (`added` bytes more). Also the hook of a journal
        kept in a store (core/journal_store.py), which writes the entry from here (with the
        others of the event loop's turn): the in-memory journal's finish pays no call more."""
        with self._lock:
            if entry.journal is self:  # still kept
                entry.size += added
                self.bytes += added
                self._shrink()

    def _shrink(self) -> None:
        # the lock is held; the newest entry always stays
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries
                                          or self.bytes > self.max_bytes):
            gone = self._entries.popleft()
            gone.journal = None
            self.bytes -= gone.size

    def get(self, entry_id: int) -> JournalEntry | None:
        with self._lock:
            if not self._entries or not self._entries[0].id <= entry_id <= self._entries[-1].id:
                return None
            # ids grow by one per entry; eviction only ever removes the oldest, so an entry's
            # place is its distance from the first one kept
            found = self._entries[entry_id - self._entries[0].id]
            return found if found.id == entry_id else None

    def query(self, *, provider: str | None = None, status: int | None = None,
              operation: str | None = None, limit: int = 100) -> tuple[int, list[JournalEntry]]:
        total, entries, _next = self.page(provider=provider, status=status,
                                          operation=operation, limit=limit)
        return total, entries

    def page(self, *, provider: str | None = None, status: int | None = None,
             operation: str | None = None, limit: int = 100, before: int | None = None
             ) -> tuple[int, list[JournalEntry], int | None]:
        """Matching entries newest first: how many match in all, the first `limit` of those
        with an id below `before`, and the cursor for the page after (None: no more)."""
        page: list[JournalEntry] = []
        total = 0
        more = False
        with self._lock:
            for e in reversed(self._entries):
                if ((provider is None or e.provider == provider)
                        and (status is None or e.status == status)
                        and (operation is None or e.operation == operation)):
                    total += 1
                    if before is None or e.id < before:
                        if len(page) < limit:
                            page.append(e)
                        else:
                            more = True
        return total, page, page[-1].id if more and page else None

    def announce(self, entry: JournalEntry) -> None:
        """Tells the watchers that `entry` is finished (its answer recorded)."""
        for watcher in tuple(self.watchers):
            watcher(entry)

    def since(self, after: int) -> list[JournalEntry]:
        """The finished entries with an id above `after`, oldest first."""
        with self._lock:
            # an entry is finished once finish() has measured its duration (never 0.0)
            return [e for e in self._entries if e.id > after and e.duration_ms > 0.0]

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            for entry in self._entries:
                entry.journal = None
            self._entries.clear()
            self.bytes = 0
            return count

    def __len__(self) -> int:
        return len(self._entries)


def finish(entry: JournalEntry, *, status: int, headers: HeaderItems, body: bytes,
           duration_ms: float) -> None:
    """The answer as it went out: headers as (name, value) pairs of text or bytes (a Response's
    raw_headers, an httpx response's headers.raw), secrets out, cut to the entry's budget.
    Set the entry's warnings and fault before: a journal in a store takes it now, once."""
    journal = entry.journal
    if journal is None:  # gone already (cleared, or pushed out by newer entries)
        clean, budget = redactor(), MAX_ENTRY_BYTES
    else:
        clean, budget = journal.redact, journal.entry_bytes
    # an answer may echo what the request sent (an Express-style "Cannot GET /x?client_secret=..."):
    # looked at in full when the request brought a secret, else only for the JWTs it issues
    kept_headers, kept_body, cut, kept, _redacted = _kept(
        tuple(headers), body, budget, clean,
        own_answer=entry.kind == "request" and not entry.secrets_sent)
    entry.status = status
    entry.raw_response_headers = kept_headers
    entry.raw_response_body = kept_body
    entry.response_body_size = len(body)
    entry.response_cut = cut
    entry.duration_ms = duration_ms
    if journal is not None:
        journal._grown(entry, kept)
