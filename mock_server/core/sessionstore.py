"""Session state besides the ledger, behind interfaces a store implements: fault-rule counters
and the queue of pending callbacks. Each atomic operation takes plain data (a rule's name and
its `times`, an item and the deliverer claiming it), so one SQL transaction or one Redis script
carries it, as the ledger's steps are carried (core/ledger.py).

The in-memory implementations are the default (one process); core/sessionstore_sqlite.py and
core/sessionstore_redis.py keep the same state in the file or server that holds the ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["CallbackQueue", "Claimed", "FaultCounters", "MemoryCallbackQueue",
           "MemoryFaultCounters", "Pending"]


class FaultCounters(Protocol):
    """One session's fault-rule counters: `seen` (requests a live rule was asked about) and
    `matched` (requests it acted on), per rule name ("<scenario>/<rule>")."""

    def see(self, rule: str, times: int | None) -> int | None:
        """Counts one request the rule is asked about and returns its `seen` count; None (and
        nothing counted) when the rule is spent (`matched` has reached `times`)."""

    def fire(self, rule: str, times: int | None) -> bool:
        """The atomic "fire if count < times": adds one to `matched` and returns True while it
        is below `times` (always, when `times` is None); False, nothing counted, once spent."""

    def counts(self, rule: str) -> tuple[int, int]:
        """(seen, matched); (0, 0) for a rule never counted."""

    def forget(self, rules: Iterable[str]) -> None:
        """Drops these rules' counters (their scenario was unloaded or loaded again)."""


class MemoryFaultCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    def see(self, rule: str, times: int | None) -> int | None:
        with self._lock:
            counts = self._counts.setdefault(rule, [0, 0])
            if times is not None and counts[1] >= times:
                return None
            counts[0] += 1
            return counts[0]

    def fire(self, rule: str, times: int | None) -> bool:
        with self._lock:
            counts = self._counts.setdefault(rule, [0, 0])
            if times is not None and counts[1] >= times:
                return False
            counts[1] += 1
            return True

    def counts(self, rule: str) -> tuple[int, int]:
        with self._lock:
            seen, matched = self._counts.get(rule, (0, 0))
            return seen, matched

    def forget(self, rules: Iterable[str]) -> None:
        with self._lock:
            for rule in rules:
                self._counts.pop(rule, None)


class Claimed(NamedTuple):
    item: str
    payload: bytes
    attempt: int  # 1 for the first claim of the item, 2 after one lease ran out or a retry


class Pending(NamedTuple):
    item: str
    due: float
    owner: str | None  # the deliverer holding it now, if any


class CallbackQueue(Protocol):
    """One session's pending callbacks. A delivery is claimed by one deliverer for a lease; a
    deliverer that dies (kill -9) leaves its lease to run out, and the item goes to the next.
    Times are seconds since the epoch, given by the caller (plain data, testable)."""

    def push(self, item: str, payload: bytes, due: float) -> None:
        """Queues (or replaces) `item`, deliverable from `due`."""

    def claim(self, owner: str, now: float, lease: float) -> Claimed | None:
        """The earliest due item no one holds (or whose holder's lease ran out), now held by
        `owner` until `now + lease`; None when nothing is due."""

    def done(self, item: str, owner: str) -> bool:
        """Removes a delivered item, if `owner` still holds it (False: it was lost to another
        deliverer after the lease ran out, who delivers it)."""

    def later(self, item: str, owner: str, due: float) -> bool:
        """Gives a held item back, deliverable again from `due` (a retry)."""

    def pending(self) -> list[Pending]:
        """Every queued item, earliest due first."""

    def clear(self) -> None: ...


@dataclass(slots=True)
class _Item:
    payload: bytes
    due: float
    owner: str | None = None
    until: float = 0.0
    attempts: int = 0


class MemoryCallbackQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, _Item] = {}

    def push(self, item: str, payload: bytes, due: float) -> None:
        with self._lock:
            self._items[item] = _Item(payload, due)

    def claim(self, owner: str, now: float, lease: float) -> Claimed | None:
        with self._lock:
            free = [(record.due, item) for item, record in self._items.items()
                    if record.due <= now and (record.owner is None or record.until <= now)]
            if not free:
                return None
            item = min(free)[1]
            record = self._items[item]
            record.owner, record.until = owner, now + lease
            record.attempts += 1
            return Claimed(item, record.payload, record.attempts)

    def done(self, item: str, owner: str) -> bool:
        with self._lock:
            record = self._items.get(item)
            if record is None or record.owner != owner:
                return False
            del self._items[item]
            return True

    def later(self, item: str, owner: str, due: float) -> bool:
        with self._lock:
            record = self._items.get(item)
            if record is None or record.owner != owner:
                return False
            record.due, record.owner, record.until = due, None, 0.0
            return True

    def pending(self) -> list[Pending]:
        with self._lock:
            rows = [Pending(item, r.due, r.owner) for item, r in self._items.items()]
        return sorted(rows, key=lambda p: (p.due, p.item))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
