"""The bounded request journal of a session, newest first on read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mock_server.core.clock import iso_millis

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# bodies are kept for reading back, but a journal of 10,000 entries must stay small
MAX_BODY_CHARS = 64 * 1024


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        kept[lower] = REDACTED if lower in _SECRET_HEADERS else value
    return kept


def body_text(raw: bytes) -> str:
    text = raw[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    return text + "…[truncated]" if len(raw) > MAX_BODY_CHARS else text


@dataclass(slots=True)
class JournalEntry:
    id: int
    at: datetime
    provider: str | None
    operation: str | None
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    duration_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)
    fault: dict[str, Any] | None = None
    kind: str = "request"  # "request", or "callback" for an outgoing webhook attempt

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
            "warnings": self.warnings,
            "fault": self.fault,
        }


class Journal:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._next_id = 1
        self._lock = threading.Lock()

    def record(self, *, at: datetime, provider: str | None, operation: str | None, method: str,
               path: str, query: str, headers: Iterable[tuple[str, str]], body: bytes,
               kind: str = "request") -> JournalEntry:
        with self._lock:
            entry = JournalEntry(self._next_id, at, provider, operation, method, path, query,
                                 redact_headers(headers), body_text(body), kind=kind)
            self._next_id += 1
            self._entries.append(entry)
            return entry

    def query(self, *, provider: str | None = None, status: int | None = None,
              operation: str | None = None, limit: int = 100) -> tuple[int, list[JournalEntry]]:
        with self._lock:
            matching = [
                e for e in reversed(self._entries)
                if (provider is None or e.provider == provider)
                and (status is None or e.status == status)
                and (operation is None or e.operation == operation)
            ]
        return len(matching), matching[:limit]

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count

    def __len__(self) -> int:
        return len(self._entries)


def finish(entry: JournalEntry, *, status: int, headers: Mapping[str, str], body: bytes,
           duration_ms: float) -> None:
    entry.status = status
    entry.response_headers = redact_headers(headers.items())
    entry.response_body = body_text(body)
    entry.duration_ms = duration_ms
