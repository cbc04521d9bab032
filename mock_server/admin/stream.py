"""GET /__admin/requests/stream: journal entries as Server-Sent Events, as they are finished."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from mock_server.core.journal import JournalEntry
from mock_server.core.world import Session, World

if TYPE_CHECKING:
    from mock_server.core.host import Host

# what may wait for one slow reader; past it, entries are counted as dropped and said so
MAX_PENDING = 1000
MAX_STREAMS_PER_SESSION = 100
KEEP_ALIVE_SECONDS = 15.0
# how often an idle stream looks up whether the server is stopping
_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Filters:
    provider: str | None = None
    status: int | None = None
    operation: str | None = None

    def admit(self, entry: JournalEntry) -> bool:
        return ((self.provider is None or entry.provider == self.provider)
                and (self.status is None or entry.status == self.status)
                and (self.operation is None or entry.operation == self.operation))


@dataclass(eq=False)
class Subscriber:
    """One open stream: what waits to be sent, bounded, and how to wake its writer."""

    filters: Filters
    loop: asyncio.AbstractEventLoop
    loop_thread: int
    pending: deque[JournalEntry | str] = field(default_factory=deque)
    dropped: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: JournalEntry | str) -> None:
        if isinstance(item, JournalEntry) and not self.filters.admit(item):
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
        else:
            self.pending.append(item)
        self._wake()

    def _wake(self) -> None:
        # journal entries are finished on the event loop; a callback attempt finished on
        # another thread hands the wake-up to the loop
        if threading.get_ident() == self.loop_thread:
            self.wake.set()
        else:
            self.loop.call_soon_threadsafe(self.wake.set)


class StreamHub:
    """The open streams of every session. A session's journal gets one watcher while at least
    one stream of it is open, and none otherwise: a request nobody watches costs nothing."""

    def __init__(self, world: World) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        # session name -> the session whose journal is watched, and its watcher
        self._watched: dict[str, tuple[Session, Callable[[JournalEntry], None]]] = {}
        self._lock = threading.Lock()
        world.on_session_created.append(self._session_created)

    def count(self, name: str) -> int:
        return len(self._subscribers.get(name, ()))

    def subscribe(self, session: Session, filters: Filters) -> Subscriber:
        subscriber = Subscriber(filters, asyncio.get_running_loop(), threading.get_ident())
        with self._lock:
            self._subscribers.setdefault(session.name, set()).add(subscriber)
            self._watch(session)
        return subscriber

    def unsubscribe(self, name: str, subscriber: Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(name)
            if subscribers is None:
                return
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[name]
                self._unwatch(name)

    def _watch(self, session: Session) -> None:
        current = self._watched.get(session.name)
        if current is not None and current[0] is session:
            return
        self._unwatch(session.name)
        name = session.name

        def announce(entry: JournalEntry) -> None:
            for subscriber in list(self._subscribers.get(name, ())):
                subscriber.offer(entry)

        session.journal.watchers.append(announce)
        self._watched[name] = (session, announce)

    def _unwatch(self, name: str) -> None:
        watched = self._watched.pop(name, None)
        if watched is not None:
            session, announce = watched
            try:
                session.journal.watchers.remove(announce)
            except ValueError:
                pass

    def _session_created(self, session: Session) -> None:
        # a reset builds a new session (and journal) under the same name: follow it
        with self._lock:
            subscribers = self._subscribers.get(session.name)
            if not subscribers:
                return
            self._watch(session)
            for subscriber in list(subscribers):
                subscriber.offer("reset")


def _event(name: str, data: Any, event_id: int | None = None) -> bytes:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {text}\n\n".encode()


def stream_response(app: Host, hub: StreamHub, session: Session, filters: Filters,
                    after: int | None, limit: int | None) -> StreamingResponse:
    name = session.name

    async def events() -> AsyncIterator[bytes]:
        # subscribed before the replay, so that nothing finished in between is missed
        subscriber = hub.subscribe(session, filters)
        sent = 0
        try:
            yield f": journal of session {name}\n\n".encode()
            replayed: set[int] = set()
            if after is not None:
                for entry in session.journal.since(after):
                    if filters.admit(entry):
                        replayed.add(entry.id)
                        yield _event("request", entry.to_json(), entry.id)
                        sent += 1
                        if limit is not None and sent >= limit:
                            return
            idle = 0.0
            while app.shutdown_deadline is None:
                while subscriber.pending:
                    item = subscriber.pending.popleft()
                    if isinstance(item, str):
                        replayed.clear()
                        yield _event("reset", {"session": name})
                        continue
                    if item.id in replayed:
                        continue
                    yield _event("request", item.to_json(), item.id)
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                if subscriber.dropped:
                    dropped, subscriber.dropped = subscriber.dropped, 0
                    yield _event("dropped", {"dropped": dropped})
                subscriber.wake.clear()
                if subscriber.pending:
                    continue
                try:
                    await asyncio.wait_for(subscriber.wake.wait(), _POLL_SECONDS)
                    idle = 0.0
                except TimeoutError:
                    idle += _POLL_SECONDS
                    if idle >= KEEP_ALIVE_SECONDS:
                        idle = 0.0
                        yield b": keep-alive\n\n"
        finally:
            hub.unsubscribe(name, subscriber)

    return StreamingResponse(events(), media_type="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
