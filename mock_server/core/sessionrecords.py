"""A session's record in a store shared by processes: its snapshot (everything of the session
that is not money: provider models, loaded scenarios, clock, id-generator state, token) with a
version, the lock a process holds while it changes the session, and the numbers (generations)
that must never be handed out twice.

The snapshot is kept in parts (core/snapshot.py: the loaded scenarios, the provider models, the
small rest), each with the version it was last written at, so a request that changed only the
ids writes only that part, and a process reads only the parts another one changed.

The session's ledger is a part too (a checkpoint: core/ledger_log.py) followed by an op log:
each release that changed money stores the request's ops (one blob) at the version it makes, in
the same atomic step as the parts and the lock, and a reader replays the ops newer than what it
holds; a new checkpoint drops the ops before it. The fault counters, journal and pending
callbacks keep their own stores (core/sessionstore*.py, core/journal_store.py); the snapshot
names the generation whose counters and journal belong to it, so a reset is one new snapshot,
never half of one."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from typing import Protocol

# the snapshot's parts (core/snapshot.py), each written only when it changed
PARTS = ("seeds", "states", "small", "ledger")
Parts = Mapping[str, bytes]
# what load returns: the snapshot's version, the parts newer than the reader's, and the ledger
# ops (one blob per release, oldest first) newer than both the reader's version and the
# ledger part's
Loaded = tuple[int, dict[str, tuple[int, bytes]], list[bytes]]


class LockLost(Exception):
    """A process saved a snapshot under a lock that was no longer its own (its lease ran out
    and another process took the session)."""


class SessionRecords(Protocol):
    """One session's record. Every method is one atomic step in the store."""

    def version(self) -> int:
        """The snapshot's version: 0 when none was ever saved, increasing with every save and
        delete, never reused (a process compares it with the version it holds)."""

    def load(self, have: Mapping[str, int], since: int = -1) -> Loaded | None:
        """The snapshot's version, each part whose version is not `have`'s (the versions of
        the parts the reader holds), and the ledger ops stored at versions above `since` (the
        version the reader holds) and above the ledger part's; None when there is no snapshot
        (never made, or deleted). Read under the session's lock: nothing changes meanwhile."""

    def acquire(self, owner: str, now: float, lease: float, *,
                steal: str | None = None, want: float = 0.0) -> int | None:
        """Takes the session's lock for `owner` until `now + lease` (wall-clock seconds) when it
        is free, expired, already `owner`'s or `steal`'s (a holder known to be dead), and
        returns the snapshot's version; None when another holder's lease runs, or when the
        lock is free but another owner asked for it first (its wish is served first).
        `want` > 0: when refused, `owner` asks for the lock for that many seconds (unless
        another owner already asks): the holder gives it back at its next `keep`, and nobody
        else takes it meanwhile. A refused owner asks again at each try."""

    def holder(self, now: float) -> str | None:
        """Who holds the lock now (None: nobody, or a lease that ran out)."""

    def save(self, owner: str, parts: Parts, ops: bytes | None = None) -> int:
        """Stores `parts` (each at the new version) and `ops` (the ledger's, at the same
        version; a `ledger` part drops the ops stored before it), keeping the lock; only the
        lock's holder may (LockLost otherwise). Returns the new version."""

    def release(self, owner: str, parts: Parts | None, ops: bytes | None = None) -> int:
        """`save` (nothing when there are no parts and no ops) and the lock given back, in one
        step; only the lock's holder may store (LockLost otherwise). Returns the version."""

    def keep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
             lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        """`save` (nothing when there are no parts and no ops), then the lock kept for
        `owner`'s next request, its lease renewed to `now + lease`, unless another owner asks
        for it (then given back, as `release`); in one step. Returns the version, whether the
        lock is still `owner`'s and, when it is and `reserve` names a journal in the store
        (core/journal_store.py), the next id of that journal, taken for the next request.
        LockLost when it was not `owner`'s."""

    async def akeep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
                    lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        """`keep` for a request on the event loop: the loop serves others while the store
        answers (where the store is another server)."""

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
        self._parts: dict[str, tuple[int, bytes]] | None = None
        self._ops: list[tuple[int, bytes]] = []
        self._holder: str | None = None
        self._until = 0.0
        self._wanter: str | None = None
        self._wanted_until = 0.0
        self._sequences: dict[str, int] = {}

    def version(self) -> int:
        return self._version

    def load(self, have: Mapping[str, int], since: int = -1) -> Loaded | None:
        with self._lock:
            if self._parts is None:
                return None
            after = max(since, self._parts.get("ledger", (0, b""))[0])
            return self._version, {name: part for name, part in self._parts.items()
                                   if have.get(name) != part[0]}, \
                [data for version, data in self._ops if version > after]

    def acquire(self, owner: str, now: float, lease: float, *,
                steal: str | None = None, want: float = 0.0) -> int | None:
        with self._lock:
            if self._holder != owner or self._until <= now:
                wanter = self._wanter if self._wanted_until > now else None
                busy = self._holder not in (None, owner, steal) and self._until > now
                if busy or wanter not in (None, owner):
                    if want > 0 and wanter in (None, owner):
                        self._wanter, self._wanted_until = owner, now + want
                    return None
                if wanter == owner:
                    self._wanter = None
            self._holder, self._until = owner, now + lease
            return self._version

    def holder(self, now: float) -> str | None:
        with self._lock:
            return self._holder if self._holder is not None and self._until > now else None

    def _store(self, owner: str, parts: Parts, ops: bytes | None) -> None:
        if self._holder != owner:
            raise LockLost(owner)
        self._version += 1
        stored = dict(self._parts or {})
        stored.update((name, (self._version, data)) for name, data in parts.items())
        self._parts = stored
        if "ledger" in parts:
            self._ops = []
        if ops:
            self._ops.append((self._version, ops))

    def save(self, owner: str, parts: Parts, ops: bytes | None = None) -> int:
        with self._lock:
            self._store(owner, parts, ops)
            return self._version

    def release(self, owner: str, parts: Parts | None, ops: bytes | None = None) -> int:
        with self._lock:
            if parts or ops:
                self._store(owner, parts or {}, ops)
            if self._holder == owner:
                self._holder = None
            return self._version

    def keep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
             lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        with self._lock:
            if self._holder != owner:
                raise LockLost(owner)
            if parts or ops:
                self._store(owner, parts or {}, ops)
            if self._wanter not in (None, owner) and self._wanted_until > now:
                self._holder = None
                return self._version, False, None
            self._until = now + lease
            return self._version, True, None  # no journal lives here

    async def akeep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
                    lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        return self.keep(owner, parts, ops, now, lease, reserve)

    def delete(self, owner: str) -> int:
        with self._lock:
            if self._holder != owner:
                raise LockLost(owner)
            self._version += 1
            self._parts = None
            self._ops = []
            self._holder = None
            return self._version

    def sequence(self, name: str, start: int) -> int:
        with self._lock:
            value = self._sequences.get(name, start) + 1
            self._sequences[name] = value
            return value


def _started(pid: int) -> str | None:
    """When process `pid` started (Linux: /proc/<pid>/stat's starttime), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # the 22nd field, counted after the command's ")"
    except (OSError, IndexError):
        return None


def process_owner(unique: str) -> str:
    """A lock holder's name: this machine, this process (its id and start), and `unique` (one
    process may hold several stores). `dead_here` reads it back."""
    return f"{socket.gethostname()}|{os.getpid()}|{_started(os.getpid()) or '-'}|{unique}"


def dead_here(owner: str) -> bool:
    """Whether `owner` names a process of this machine that no longer runs (killed with its
    lock held: its lease need not be waited out). False when that cannot be known."""
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, started = int(parts[1]), parts[2]
    if pid == os.getpid():
        return started != "-" and _started(pid) not in (None, started)
    if started != "-" and os.path.isdir("/proc"):
        return _started(pid) != started  # gone, or its id taken by a later process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
