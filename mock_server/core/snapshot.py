"""A session's snapshot as bytes, for a store shared by processes (core/sessionrecords.py).

What it holds: the provider models, the loaded scenarios with their fault rules, the id
sources, the clock's offset or frozen instant, the token's digest and the generation (whose
ledger and journal in the store are the session's). What it leaves out: money (the ledger is
already in the store), the journal, and what only lives in one process — locks (made anew),
waiters of a request still in flight, clock listeners.

The bytes are a pickle: the store is the sandbox's own (a file or a Redis server the operator
runs), never a client's input. The format carries FORMAT_VERSION; a snapshot that an
incompatible version of the sandbox wrote is refused with StoreFormatError, never misread."""

from __future__ import annotations

import asyncio
import io
import itertools
import pickle
import re
import threading
from typing import Any

from mock_server.core.ledger_codec import FORMAT_VERSION, StoreFormatError

_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())
_COUNTERS = "fault-counters"
_COUNT = re.compile(r"count\((-?\d+)\)")


def _count(value: int) -> itertools.count[int]:
    return itertools.count(value)


def _reduce_count(counter: itertools.count[int]) -> tuple[Any, tuple[int]]:
    # the next value without taking it: count's repr is "count(N)"
    found = _COUNT.fullmatch(repr(counter))
    assert found is not None
    return _count, (int(found.group(1)),)


class _Pickler(pickle.Pickler):
    dispatch_table = {
        _LOCK: lambda _: (threading.Lock, ()),
        _RLOCK: lambda _: (threading.RLock, ()),
        # a waiter belongs to a request of this process: another process gets a fresh one
        asyncio.Event: lambda _: (asyncio.Event, ()),
        itertools.count: _reduce_count,
    }

    def __init__(self, file: io.BytesIO, counters: object) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._counters = counters

    def persistent_id(self, obj: Any) -> str | None:
        # the fault rules' counters are the store's, bound again where the snapshot is read
        if self._counters is not None and obj is self._counters:
            return _COUNTERS
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, counters: object) -> None:
        super().__init__(file)
        self._counters = counters

    def persistent_load(self, pid: Any) -> Any:
        if pid == _COUNTERS:
            return self._counters
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")


def dumps(generation: str, parts: dict[str, Any], *, counters: object = None) -> bytes:
    """The snapshot: the generation's name (readable without unpickling: the reader binds the
    generation's fault counters first), a NUL, then the pickle."""
    buffer = io.BytesIO()
    buffer.write(generation.encode("utf-8"))
    buffer.write(b"\0")
    _Pickler(buffer, counters).dump({"format": FORMAT_VERSION, **parts})
    return buffer.getvalue()


def peek_generation(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def loads(data: bytes, *, counters: object = None, where: str = "the store") -> dict[str, Any]:
    try:
        parts = _Unpickler(io.BytesIO(data[data.index(b"\0") + 1:]), counters).load()
    except Exception as exc:  # noqa: BLE001 - any failure means another version wrote it
        raise StoreFormatError(f"{where} holds a session snapshot this sandbox cannot read "
                               f"({type(exc).__name__}); wipe it with `mock-server store "
                               "wipe`") from None
    if not isinstance(parts, dict) or parts.get("format") != FORMAT_VERSION:
        found = parts.get("format") if isinstance(parts, dict) else None
        raise StoreFormatError(f"{where} holds a session snapshot of format {found}; this "
                               f"sandbox reads format {FORMAT_VERSION} (wipe it with "
                               "`mock-server store wipe`)")
    return parts

