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


def dumps(generation: str, seeds: bytes, parts: dict[str, Any]) -> bytes:
    """The snapshot: the generation's name, a NUL, the length of the seeds' pickle (what
    changes only when scenarios are loaded: `seeds_blob`), a NUL, that pickle, then the pickle
    of the rest."""
    return b"".join((generation.encode("utf-8"), b"\0", str(len(seeds)).encode(), b"\0",
                     seeds, _pickle({"format": FORMAT_VERSION, **parts})))


def seeds_blob(scenarios: Any) -> bytes:
    return _pickle({"format": FORMAT_VERSION, "scenarios": scenarios})


def peek_generation(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def loads(data: bytes, *, where: str = "the store") -> dict[str, Any]:
    """The snapshot's parts (`scenarios` among them) and `seeds`, the seeds' pickle as read."""
    try:
        _, size, rest = data.split(b"\0", 2)
        seeds, state = rest[:int(size)], rest[int(size):]
        parts = pickle.loads(state)
        scenarios = pickle.loads(seeds)
    except Exception as exc:  # noqa: BLE001 - any failure means another version wrote it
        raise StoreFormatError(f"{where} holds a session snapshot this sandbox cannot read "
                               f"({type(exc).__name__}); wipe it with `mock-server store "
                               "wipe`") from None
    formats = {p.get("format") if isinstance(p, dict) else None for p in (parts, scenarios)}
    if formats != {FORMAT_VERSION}:
        found = ", ".join(sorted(str(f) for f in formats))
        raise StoreFormatError(f"{where} holds a session snapshot of format {found}; this "
                               f"sandbox reads format {FORMAT_VERSION} (wipe it with "
                               "`mock-server store wipe`)")
    parts["scenarios"] = scenarios["scenarios"]
    parts["seeds"] = bytes(seeds)
    return parts
