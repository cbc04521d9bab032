"""The ledger's records as text, for the stores that keep them outside the process (SQLite,
Redis): exact (Decimal amounts as their digits, instants with their offset), and versioned."""

from __future__ import annotations

import base64
import json
from collections.abc import Hashable
from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.core.ledger import RefundEntry, StoredAnswer

# What a durable store records as its format; a store written in another format is refused,
# never misread (StoreFormatError).
FORMAT_VERSION = 2


class StoreFormatError(Exception):
    """The store was written by an incompatible version of the sandbox."""


def key_text(key: tuple[Hashable, ...]) -> str:
    """An account or idempotency key as one string (its parts are strings, numbers or None)."""
    return json.dumps(list(key), separators=(",", ":"), ensure_ascii=False)


def instant_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def parse_instant_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def entry_json(entry: RefundEntry) -> str:
    return json.dumps({"id": entry.refund_id, "amount": str(entry.amount),
                       "at": instant_text(entry.at), "details": dict(entry.details),
                       "reversed": entry.reversed}, separators=(",", ":"), ensure_ascii=False)


def parse_entry(text: str | bytes) -> RefundEntry:
    data = json.loads(text)
    at = parse_instant_text(data["at"])
    assert at is not None
    return RefundEntry(data["id"], Decimal(data["amount"]), at, data["details"],
                       bool(data["reversed"]))


def _plain(value: Any) -> Any:
    # a fingerprint is a string or a tuple of strings and None: tuples travel as lists
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def answer_json(answer: StoredAnswer) -> str:
    """Everything of a stored answer but its expiry (kept beside it, for the store to compare)."""
    return json.dumps({"status": answer.status, "headers": [list(h) for h in answer.headers],
                       "body": base64.b64encode(answer.body).decode("ascii"),
                       "fingerprint": _plain(answer.fingerprint)},
                      separators=(",", ":"), ensure_ascii=False)


def parse_answer(text: str | bytes, expires_at: datetime | None) -> StoredAnswer:
    data = json.loads(text)
    return StoredAnswer(int(data["status"]), tuple((str(n), str(v)) for n, v in data["headers"]),
                        base64.b64decode(data["body"]), _tuples(data["fingerprint"]), expires_at)
