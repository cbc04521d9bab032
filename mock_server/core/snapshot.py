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
_COUNT = re.compile(r"count\((-?\d+)\)")


def _count(value: int) -> itertools.count[int]:
    return itertools.count(value)


def _reduce_count(counter: itertools.count[int]) -> tuple[Any, tuple[int]]:
    # the next value without taking it: count's repr is "count(N)"
    found = _COUNT.fullmatch(repr(counter))
    assert found is not None
    return _count, (int(found.group(1)),)


class Unbound:
    """Where a fault rule's counters were: the reader binds the session's (`bind_counters`)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _unbound, ()


UNBOUND = Unbound()


def _unbound() -> Unbound:
    return UNBOUND


_DISPATCH: dict[type, Any] = {
    _LOCK: lambda _: (threading.Lock, ()),
    _RLOCK: lambda _: (threading.RLock, ()),
    # a waiter belongs to a request of this process: another process gets a fresh one
    asyncio.Event: lambda _: (asyncio.Event, ()),
    itertools.count: _reduce_count,
}


def counters_type(kind: type) -> None:
    """Makes objects of `kind` (a store's fault counters) written as UNBOUND."""
    _DISPATCH[kind] = lambda _: (_unbound, ())


class _Pickler(pickle.Pickler):
    dispatch_table = _DISPATCH


def _pickle(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def dumps(part: str, value: Any) -> bytes:
    """One part of a session's snapshot (core.sessionrecords.PARTS) as bytes."""
    return _pickle({"format": FORMAT_VERSION, "part": part, "value": value})


def loads(data: bytes, part: str, *, where: str = "the store") -> Any:
    """The value `dumps` wrote; StoreFormatError (one line) when another version wrote it."""
    try:
        found = pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - any failure means another version wrote it
        raise StoreFormatError(f"{where} holds a session snapshot this sandbox cannot read "
                               f"({type(exc).__name__}); wipe it with `mock-server store "
                               "wipe`") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT_VERSION \
            or found.get("part") != part:
        version = found.get("format") if isinstance(found, dict) else None
        raise StoreFormatError(f"{where} holds a session snapshot of format {version}; this "
                               f"sandbox reads format {FORMAT_VERSION} (wipe it with "
                               "`mock-server store wipe`)")
    return found["value"]
