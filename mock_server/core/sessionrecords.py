"""A session's record in a store shared by processes: its snapshot (everything of the session
that is not money: provider models, loaded scenarios, clock, id-generator state, token) with a
version, the lock a process holds while it changes the session, and the numbers (id sequences,
generations) that must never be handed out twice.

The ledger, fault counters, journal and pending callbacks keep their own stores
(core/ledger*.py, core/sessionstore*.py); the snapshot names the generation whose ledger and
journal belong to it, so a reset is one new snapshot, never half of one."""

from __future__ import annotations

import threading
from typing import Protocol


class LockLost(Exception):
    """A process saved a snapshot under a lock that was no longer its own (its lease ran out
    and another process took the session)."""


class SessionRecords(Protocol):
    """One session's record. Every method is one atomic step in the store."""

    def version(self) -> int:
        """The snapshot's version: 0 when none was ever saved, increasing with every save and
        delete, never reused (a process compares it with the version it holds)."""

    def load(self) -> tuple[int, bytes] | None:
        """The snapshot and its version; None when there is none (never made, or deleted)."""

    def acquire(self, owner: str, now: float, lease: float) -> int | None:
        """Takes the session's lock for `owner` until `now + lease` (wall-clock seconds) when it
        is free, expired or already `owner`'s, and returns the snapshot's version; None when
        another holder's lease runs."""

    def save(self, owner: str, data: bytes) -> int:
        """Stores `data` as the snapshot, keeping the lock; only the lock's holder may
        (LockLost otherwise). Returns the new version."""

    def release(self, owner: str, data: bytes | None) -> int:
        """Stores `data` as the snapshot (None: leaves it as it is) and gives the lock back, in
        one step; only the lock's holder may store (LockLost otherwise). Returns the version."""

    def delete(self, owner: str) -> int:
        """Forgets the snapshot (the session is made again on its next use) and gives the lock
        back; only the lock's holder may. Returns the new version."""

    def sequence(self, name: str, start: int) -> int:
        """The next number of the sequence `name`: `start + 1` the first time, then one more at
        each call, across processes (generations of a session)."""


class MemorySessionRecords:
    """The same record in this process only: for tests of the code that uses the interface."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._data: bytes | None = None
        self._holder: str | None = None
        self._until = 0.0
        self._sequences: dict[str, int] = {}

    def version(self) -> int:
        return self._version

    def load(self) -> tuple[int, bytes] | None:
        with self._lock:
            return None if self._data is None else (self._version, self._data)

    def acquire(self, owner: str, now: float, lease: float) -> int | None:
        with self._lock:
            if self._holder not in (None, owner) and self._until > now:
                return None
            self._holder, self._until = owner, now + lease
            return self._version

    def save(self, owner: str, data: bytes) -> int:
        with self._lock:
            if self._holder != owner:
                raise LockLost(owner)
            self._version += 1
            self._data = data
            return self._version

    def release(self, owner: str, data: bytes | None) -> int:
        with self._lock:
            if data is not None:
                if self._holder != owner:
                    raise LockLost(owner)
                self._version += 1
                self._data = data
            if self._holder == owner:
                self._holder = None
            return self._version

    def delete(self, owner: str) -> int:
        with self._lock:
            if self._holder != owner:
                raise LockLost(owner)
            self._version += 1
            self._data = None
            self._holder = None
            return self._version

    def sequence(self, name: str, start: int) -> int:
        with self._lock:
            value = self._sequences.get(name, start) + 1
            self._sequences[name] = value
            return value
