"""Per-session clocks that can be frozen and advanced; the base time source is injected."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

TimeSource = Callable[[], datetime]


def real_time() -> datetime:
    return datetime.now(UTC)


async def wait(seconds: float) -> None:
    """Real time the sandbox spends on purpose (a scripted delay, a slow body's pauses). Every
    such wait goes through here, so tests record these waits instead of taking them."""
    await _sleep(seconds)


_sleep = asyncio.sleep


# the "YYYY-MM-DDTHH:MM:SS." of the last second formatted: refunds come in bursts
_last_second: tuple[int, str] = (-1, "")


def iso_millis(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z, as both providers write timestamps (the date part
    formatted once per second)."""
    global _last_second
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = math.floor(moment.timestamp())
    cached, prefix = _last_second
    if second != cached:
        # "2026-11-01T09:00:00+00:00" -> "2026-11-01T09:00:00."
        prefix = moment.replace(microsecond=0).isoformat()[:-6] + "."
        _last_second = (second, prefix)
    return f"{prefix}{moment.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; a value without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SessionClock:
    """Real time plus an offset, or a frozen instant; listeners hear about every move."""

    def __init__(self, source: TimeSource = real_time) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        frozen = self._frozen
        if frozen is not None:
            return frozen
        offset = self._offset
        return self._source() + offset if offset else self._source()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    @property
    def offset(self) -> timedelta:
        if self._frozen is not None:
            return self._frozen - self._source()
        return self._offset

    def freeze(self, at: datetime) -> None:
        with self._lock:
            self._frozen = at.astimezone(UTC)
        self._moved()

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta
        self._moved()

    def reset(self) -> None:
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)
        self._moved()

    def state(self) -> tuple[timedelta, datetime | None]:
        """The offset and the frozen instant (a session's snapshot keeps them)."""
        return self._offset, self._frozen

    def restore(self, state: tuple[timedelta, datetime | None]) -> None:
        """Takes the offset and frozen instant another process left (listeners are not told:
        nothing moved here)."""
        with self._lock:
            self._offset, self._frozen = state

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Called after every move: a scheduler delivers what became due at once."""
        self._listeners.append(listener)

    def _moved(self) -> None:
        for listener in list(self._listeners):
            listener()
