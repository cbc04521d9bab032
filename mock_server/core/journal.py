"""The bounded request journal of a session, newest first on read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_server.core.clock import iso_millis

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# bodies are kept for reading back, but a journal of 10,000 entries must stay small
MAX_BODY_CHARS = 64 * 1024


HeaderItems = Iterable[tuple[str | bytes, str | bytes]]


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def redact_headers(headers: HeaderItems) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = _text(name).lower()
        kept[lower] = REDACTED if lower in _SECRET_HEADERS else _text(value)
    return kept


def body_text(raw: bytes) -> str:
    text = raw[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    return text + "…[truncated]" if len(raw) > MAX_BODY_CHARS else text


def _kept_body(raw: bytes) -> bytes:
    # one byte past the limit is enough for body_text to say it was truncated
    return raw if len(raw) <= MAX_BODY_CHARS else raw[:MAX_BODY_CHARS + 1]


@dataclass(slots=True)
class JournalEntry:
    """One request (or callback attempt) and its answer. Headers and bodies are kept as they
    came, in tuples and bytes, and turned into text (secrets redacted) only when read: every
    request is journaled, few entries are ever read."""

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

    def to_json(self) -> dict[str, Any]:
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
            "body": self.body,
            "status": self.status,
            "responseHeaders": self.response_headers,
            "responseBody": self.response_body,
            "durationMs": round(self.duration_ms, 3),
            "warnings": list(self.warnings),
            "fault": self.fault,
        }


class Journal:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._next_id = 1
        self._lock = threading.Lock()

    def record(self, *, at: datetime, provider: str | None, operation: str | None, method: str,
               path: str, query: str, headers: HeaderItems, body: bytes,
               kind: str = "request") -> JournalEntry:
        with self._lock:
            entry = JournalEntry(self._next_id, at, provider, operation, method, path, query,
                                 tuple(headers), _kept_body(body), kind=kind)
            self._next_id += 1
            self._entries.append(entry)
            return entry

    def query(self, *, provider: str | None = None, status: int | None = None,
              operation: str | None = None, limit: int = 100) -> tuple[int, list[JournalEntry]]:
        total, page, _cursor = self.page(provider=provider, status=status,
                                          operation=operation, limit=limit)
        return total, page

    def page(self, *, provider: str | None = None, status: int | None = None,
             operation: str | None = None, limit: int = 100, before: int | None = None
             ) -> tuple[int, list[JournalEntry], int | None]:
        """(how many entries match the filters, the page of them newest first whose ids are
        below `before`, the cursor for the next page or None)."""
        with self._lock:
            matching = [
                e for e in reversed(self._entries)
                if (provider is None or e.provider == provider)
                and (status is None or e.status == status)
                and (operation is None or e.operation == operation)
            ]
        start = 0
        if before is not None:
            while start < len(matching) and matching[start].id >= before:
                start += 1
        page = matching[start:start + limit]
        more = start + limit < len(matching)
        return len(matching), page, page[-1].id if more and page else None

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count

    def __len__(self) -> int:
        return len(self._entries)


def finish(entry: JournalEntry, *, status: int, headers: HeaderItems, body: bytes,
           duration_ms: float) -> None:
    """The answer as it went out: headers as (name, value) pairs of text or bytes (a Response's
    raw_headers, an httpx response's headers.raw)."""
    entry.status = status
    entry.raw_response_headers = tuple(headers)
    entry.raw_response_body = _kept_body(body)
    entry.duration_ms = duration_ms
