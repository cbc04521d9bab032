"""Asynchronous refunds: settled on the session clock, then POSTed as REFUND_CALLBACK, retried."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mock_server import __version__
from mock_server.core.clock import iso_millis
from mock_server.core.journal import finish
from mock_server.core.ledger import AccountKey
from mock_server.core.targets import target_problem
from mock_server.optty.jsonparse import stringify

if TYPE_CHECKING:
    import httpx

    from mock_server.core.world import Session, World

log = logging.getLogger("mock_server.optty.webhooks")

PROVIDER = "optty"
EVENT = "REFUND_CALLBACK"
STATUS_FAILED = "FAILED"

# Decision: Optty documents that it retries failed deliveries, not how. The sandbox makes six
# attempts: at once, then 1, 2, 4, 8 and 16 seconds of session time after each failure (so a
# test advances the clock instead of waiting). A 2xx answer is a delivery; anything else, a
# redirect included (never followed), a timeout or a refused connection is a failure.
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=1)
MAX_RETRY_DELAY = timedelta(minutes=5)
ATTEMPT_TIMEOUT_SECONDS = 5.0
# a store shared by processes: a delivery claimed by one is another's after this long (its
# process was killed mid-attempt), and every so often each process looks for sessions only
# others have used (their callbacks fall due here too when those processes are gone)
CLAIM_LEASE_SECONDS = 4 * ATTEMPT_TIMEOUT_SECONDS
ADOPT_EVERY_SECONDS = 5.0
# what is read and kept of the receiver's answer for the journal: enough to see why a delivery
# failed, too little to make the sandbox a way to read pages on the network it sits in
MAX_RESPONSE_BYTES = 1024
USER_AGENT = f"refund-mock-server/{__version__} (Optty REFUND_CALLBACK)"
SESSION_HEADER = "X-Sandbox-Session"
ATTEMPT_HEADER = "X-Sandbox-Attempt"

NOTE_NO_WEBHOOK = "REFUND_CALLBACK not delivered: merchant {merchant} has no webhookUrl"
NOTE_FAILED = "REFUND_CALLBACK attempt {attempt} of {max} failed: {why}; next attempt at {at}"
NOTE_GAVE_UP = "REFUND_CALLBACK attempt {attempt} of {max} failed: {why}; giving up"
NOTE_DELIVERED_LATE = "REFUND_CALLBACK delivered on attempt {attempt} of {max}"
NOTE_CANCELLED = "REFUND_CALLBACK attempt {attempt} of {max} cancelled: the sandbox stopped"
NOTE_ANSWER_CUT = "the receiver's answer is cut to its first {limit} bytes"


def retry_delay(failed_attempts: int) -> timedelta:
    """Session time between the n-th failed attempt and the next one: 1s, 2s, 4s, ..."""
    delay: timedelta = FIRST_RETRY * (2 ** (failed_attempts - 1))
    return min(delay, MAX_RETRY_DELAY)


@dataclass(slots=True)
class PendingRefund:
    """A PENDING refund waiting for its provider's final answer (at `due`, session time)."""

    due: datetime
    account: AccountKey
    refund_id: str
    merchant_id: str
    order_reference: str
    refund_reference: str
    amount: Decimal
    currency: str
    transaction_id: str
    final_status: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    """An order's ORDER_STATUS_UPDATE or ORDER_ASYNC_CALLBACK (reference/optty-lifecycle.md,
    Notifications), delivered by the same outbox, attempts and journal as REFUND_CALLBACK."""

    event: str
    account: AccountKey
    merchant_id: str
    order_reference: str
    status: str
    url: str


@dataclass(slots=True, eq=False)  # each delivery is itself, however alike two may look
class Delivery:
    refund: PendingRefund | Notification
    body: bytes
    next_at: datetime
    attempts: int = 0
    in_flight: bool = False
    last_status: int | None = None
    last_error: str | None = None
    # the delivery's number in its queue (a process reading the queue from a store finds it)
    key: int = 0
    # the process delivering it (None: the only one) and, when a store is shared, until when
    # (wall-clock seconds) its claim holds: a process killed mid-attempt leaves it to another
    owner: str | None = None
    lease_until: float = 0.0

    @property
    def event(self) -> str:
        return self.refund.event if isinstance(self.refund, Notification) else EVENT

    @property
    def url(self) -> str | None:
        return self.refund.url

    @property
    def label(self) -> str:
        """What the delivery is about, for the log: a refund or an order."""
        if isinstance(self.refund, Notification):
            return f"order {self.refund.order_reference}"
        return f"refund {self.refund.refund_reference}"


def callback_payload(refund: PendingRefund) -> dict[str, Any]:
    # Decision (reference/optty.md): the documented envelope and fields, amounts as strings like
    # the RefundResponse, transactionId = the order's transactionReference, updatedAt = when the
    # refund became final
    return {
        "event": EVENT,
        "data": {
            "refundReference": refund.refund_reference,
            "orderReference": refund.order_reference,
            "status": refund.final_status,
            "refundedAmount": f"{refund.amount:.2f}",
            "currency": refund.currency,
            "bnplRefundId": refund.refund_id,
            "transactionId": refund.transaction_id,
            "updatedAt": iso_millis(refund.due),
        },
    }


def _journal_callback(session: Session, url: str, headers: Iterable[tuple[str, str]],
                      body: bytes, event: str = EVENT) -> Any:
    return session.journal.record(
        at=session.clock.now(), provider=PROVIDER, operation=event, method="POST", path=url,
        query="", headers=headers, body=body, kind="callback")


class CallbackQueue:
    """One session's asynchronous refunds: those not yet final, and callbacks not yet delivered.

    Thread-safe: the clock's listeners, request handlers and the dispatcher all reach it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._pending: list[tuple[datetime, int, PendingRefund]] = []
        self._outbox: list[Delivery] = []
        # orders that time will move (orderTtl, a PENDING order's final status): (due, n, key)
        self._timers: list[tuple[datetime, int, Hashable]] = []

    def idle(self) -> bool:
        # timers do not count: an order's timed move is applied on its next read as well, and
        # only a notification would be lost with a session nobody uses any more
        return not self._pending and not self._outbox

    def busy(self) -> bool:
        return not self.idle() or bool(self._timers)

    def add_timer(self, due: datetime, key: Hashable) -> None:
        with self._lock:
            heapq.heappush(self._timers, (due, next(self._order), key))

    def due_timers(self, now: datetime) -> list[Hashable]:
        if not self._timers:
            return []
        with self._lock:
            due: list[Hashable] = []
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        return due

    def schedule(self, refund: PendingRefund) -> None:
        with self._lock:
            heapq.heappush(self._pending, (refund.due, next(self._order), refund))

    def notify(self, notification: Notification, body: bytes, now: datetime) -> None:
        """Queues an order notification for delivery now (its first attempt)."""
        with self._lock:
            self._outbox.append(Delivery(notification, body, next_at=now,
                                         key=next(self._order)))

    def forget_order(self, account: AccountKey) -> None:
        """The order was seeded again: its old refunds, and their callbacks, are gone."""
        with self._lock:
            self._pending = [p for p in self._pending if p[2].account != account]
            heapq.heapify(self._pending)
            self._outbox = [d for d in self._outbox
                            if d.refund.account != account or d.in_flight]

    def settle_due(self, session: Session, now: datetime) -> int:
        """Makes every refund due by `now` final in the ledger (a FAILED one gives its money
        back) and queues its callback; returns how many were settled."""
        if not self._pending:
            return 0
        with self._lock:
            due: list[PendingRefund] = []
            while self._pending and self._pending[0][0] <= now:
                due.append(heapq.heappop(self._pending)[2])
        for refund in due:
            try:
                session.ledger.settle(
                    refund.account, refund.refund_id,
                    {"status": refund.final_status, "settledAt": iso_millis(refund.due)},
                    reverse=refund.final_status == STATUS_FAILED)
            except KeyError:
                log.info("refund %s of order %s no longer exists; no callback",
                         refund.refund_reference, refund.order_reference)
                continue
            body = stringify(callback_payload(refund))
            if refund.url is None:
                # the refund is final all the same; the journal says nobody was told
                entry = _journal_callback(session, "", _headers(session, 0), body)
                entry.warnings = (NOTE_NO_WEBHOOK.format(merchant=refund.merchant_id),)
                finish(entry, status=0, headers=(), body=b"", duration_ms=0.0)  # kept as is
                continue
            with self._lock:
                self._outbox.append(Delivery(refund, body, next_at=now, key=next(self._order)))
        return len(due)

    def take_due(self, now: datetime, *, owner: str | None = None, wall: float = 0.0,
                 lease: float = 0.0) -> list[Delivery]:
        """The deliveries due by `now`, claimed for `owner` until `wall + lease`: one in flight
        is another's until its claim runs out (its process was killed mid-attempt)."""
        with self._lock:
            ready = [d for d in self._outbox if d.next_at <= now and (
                not d.in_flight or (d.owner != owner and d.lease_until <= wall))]
            for delivery in ready:
                delivery.in_flight = True
                delivery.owner, delivery.lease_until = owner, wall + lease
            return ready

    def find(self, key: int) -> Delivery | None:
        with self._lock:
            return next((d for d in self._outbox if d.key == key), None)

    def attempted(self, delivery: Delivery, *, ok: bool, now: datetime, status: int | None,
                  error: str | None) -> datetime | None:
        """Records an attempt's outcome; the session time of the next attempt, or None when
        the delivery is over (delivered, or given up)."""
        with self._lock:
            delivery.in_flight = False
            delivery.attempts += 1
            delivery.last_status = status
            delivery.last_error = error
            if ok or delivery.attempts >= MAX_ATTEMPTS:
                if delivery in self._outbox:
                    self._outbox.remove(delivery)
                return None
            delivery.next_at = now + retry_delay(delivery.attempts)
            return delivery.next_at

    def next_wake(self) -> datetime | None:
        with self._lock:
            times = [p[0] for p in self._pending[:1]]
            times.extend(t[0] for t in self._timers[:1])
            times.extend(d.next_at for d in self._outbox if not d.in_flight)
        return min(times) if times else None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            pending = [p[2] for p in sorted(self._pending)]
            outbox = list(self._outbox)
        rows = [{"refundReference": p.refund_reference, "orderReference": p.order_reference,
                 "merchantId": p.merchant_id, "state": "scheduled", "dueAt": iso_millis(p.due),
                 "finalStatus": p.final_status, "url": p.url, "attempts": 0}
                for p in pending]
        for d in outbox:
            row: dict[str, Any] = (
                {"event": d.event, "orderReference": d.refund.order_reference,
                 "merchantId": d.refund.merchant_id, "status": d.refund.status}
                if isinstance(d.refund, Notification) else
                {"refundReference": d.refund.refund_reference,
                 "orderReference": d.refund.order_reference,
                 "merchantId": d.refund.merchant_id, "finalStatus": d.refund.final_status})
            row.update({"state": "delivering" if d.in_flight else "retrying" if d.attempts
                        else "due",
                        "nextAttemptAt": iso_millis(d.next_at), "url": d.url,
                        "attempts": d.attempts, "lastStatus": d.last_status,
                        "lastError": d.last_error})
            rows.append(row)
        return rows


def _headers(session: Session, attempt: int, event: str = EVENT) -> list[tuple[str, str]]:
    # Decision: no signature is documented, so none is sent; the two X-Sandbox headers tell a
    # receiver shared by parallel sessions which session and which attempt this is
    agent = USER_AGENT if event == EVENT else USER_AGENT.replace(EVENT, event)
    return [("Content-Type", "application/json"), ("User-Agent", agent),
            (SESSION_HEADER, session.name), (ATTEMPT_HEADER, str(attempt))]


def _named(note: str, event: str) -> str:
    """A journal note about REFUND_CALLBACK, said of another event."""
    return note.replace(EVENT, event, 1)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# a session another request held when the dispatcher came to it is looked at again this soon
_BUSY_RETRY = 0.01
# after a round that failed (a shared store that cannot be reached), the next one comes this soon
_FAILED_ROUND = 1.0


class WebhookDispatcher:
    """Delivers every session's due callbacks: a background task on the server's event loop,
    woken when a refund is scheduled, when a session clock moves, and when real time passes.

    The HTTP client is httpx (imported on first use, so start-up stays fast): a real HTTP/1.1
    client with timeouts and TLS, run with trust_env=False so that a CI machine's proxy settings
    never capture callbacks to loopback receivers.
    """

    def __init__(self) -> None:
        self._world: World | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._adopted = 0.0
        # applies the timed moves of orders whose time has come (the lifecycle's)
        self.on_timers: Callable[[Session, list[Hashable]], None] | None = None

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, world: World) -> None:
        """Watches the clock of every session, present and future."""
        self._world = world
        for session in world.sessions():
            self._watch(session)
        world.on_session_created.append(self._watch)

    def _watch(self, session: Session) -> None:
        session.clock.subscribe(lambda: self._clock_moved(session))

    def _clock_moved(self, session: Session) -> None:
        # settled at once, on whatever thread moved the clock, so that the next read of the
        # order already shows the final status; the delivery itself goes to the event loop
        state = session.states.get(PROVIDER)
        if state is not None:
            self._fire_timers(session, state.callbacks)
            state.callbacks.settle_due(session, session.clock.now())
        self.wake()

    def _fire_timers(self, session: Session, queue: CallbackQueue) -> None:
        due = queue.due_timers(session.clock.now())
        if due and self.on_timers is not None:
            self.on_timers(session, due)

    async def start(self) -> None:
        if self._world is not None and self._world.store is not None:
            self._world.adopt()  # what this process did not make, it may still deliver
            self._adopted = time.monotonic()
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._event = asyncio.Event()
        self._deliveries = set()
        self._client = None
        self._task = loop.create_task(self._run(), name="optty-webhooks")

    def ensure_running(self) -> None:
        """Starts the dispatcher on the running loop if the lifespan did not (an ASGI server
        run without lifespan events); then wakes it."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._event = asyncio.Event()
            self._deliveries = set()
            self._client = None
            self._task = loop.create_task(self._run(), name="optty-webhooks")
        self.wake()

    def poke(self) -> None:
        """Something was queued: on the server's loop, starts the dispatcher if need be (as
        ensure_running); from any other thread, wakes it."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.wake()
            return
        self.ensure_running()

    def wake(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    async def stop(self) -> None:
        """Stops delivering. Attempts in flight are cancelled (and journaled so); callbacks
        not yet delivered are logged. Call drain() first to give them time."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        left = self.pending_callbacks()
        if left:
            log.warning("%d callback(s) not delivered at shutdown", len(left),
                        extra={"pending_callbacks": left})

    # -- reporting ---------------------------------------------------------------------------

    def pending_callbacks(self) -> list[dict[str, Any]]:
        """Every session's refunds not yet final and callbacks not yet delivered."""
        if self._world is None:
            return []
        rows: list[dict[str, Any]] = []
        world = self._world
        for session in world.sessions():
            if world.store is not None and not world.current(session) and \
                    world.try_hold(session):
                world.leave(session, local=False)  # as the store has it now
            state = session.states.get(PROVIDER)
            if state is None or state.callbacks.idle():
                continue
            rows.extend({"session": session.name, **row} for row in state.callbacks.snapshot())
        return rows

    async def drain(self, timeout: float) -> list[dict[str, Any]]:
        """Delivers what is due now and waits (at most `timeout` seconds) for attempts in
        flight; retries and refunds due later in session time are not waited for. Returns what
        is still pending. Runs on the dispatcher's loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._tick()
            in_flight = set(self._deliveries)
            remaining = deadline - loop.time()
            if not in_flight or remaining <= 0:
                break
            await asyncio.wait(in_flight, timeout=remaining)
        return self.pending_callbacks()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._event is not None
        while True:
            self._event.clear()
            try:
                delay = self._tick()
            except Exception:  # noqa: BLE001 - a failing store: the dispatcher outlives it
                log.exception("callbacks: a round failed; trying again in %gs", _FAILED_ROUND)
                delay = _FAILED_ROUND
            try:
                await asyncio.wait_for(self._event.wait(), delay)
            except TimeoutError:
                pass

    def _tick(self) -> float | None:
        """Settles and launches what is due in every session; seconds until the next due time
        by real time (None: only a clock move or a new refund can make anything due)."""
        world = self._world
        if world is None:
            return None
        store = world.store
        wait: float | None = None
        if store is not None:
            # shared: another process may have left work in a session, or be gone
            if time.monotonic() - self._adopted >= ADOPT_EVERY_SECONDS:
                world.adopt()
                self._adopted = time.monotonic()
            wait = ADOPT_EVERY_SECONDS
        for session in world.sessions():
            if store is not None:
                state = session.states.get(PROVIDER)
                if world.current(session) and (state is None or not state.callbacks.busy()):
                    continue  # nothing to do here, and nobody changed it elsewhere
                if not world.try_hold(session):
                    wait = min(wait or _BUSY_RETRY, _BUSY_RETRY)  # in use: soon again
                    continue
                try:
                    wait = self._tick_session(session, wait, store.owner)
                finally:
                    world.leave(session, local=False)
            else:
                wait = self._tick_session(session, wait, None)
        if wait is None:
            return None
        return min(max(wait, 0.005), 3600.0)

    def _tick_session(self, session: Session, wait: float | None,
                      owner: str | None) -> float | None:
        state = session.states.get(PROVIDER)
        if state is None or not state.callbacks.busy():
            return wait
        queue: CallbackQueue = state.callbacks
        self._fire_timers(session, queue)
        now = session.clock.now()
        queue.settle_due(session, now)
        for delivery in queue.take_due(now, owner=owner, wall=time.time(),
                                       lease=CLAIM_LEASE_SECONDS):
            self._launch(session, queue, delivery)
        wake_at = queue.next_wake()
        if wake_at is not None and not session.clock.frozen:
            seconds = (wake_at - session.clock.now()).total_seconds()
            wait = seconds if wait is None else min(wait, seconds)
        return wait

    def _launch(self, session: Session, queue: CallbackQueue, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(session, queue, delivery))
        self._deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("callback delivery crashed", exc_info=task.exception())
        self.wake()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=ATTEMPT_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
        return self._client

    async def _deliver(self, session: Session, queue: CallbackQueue, delivery: Delivery) -> None:
        import httpx

        attempt = delivery.attempts + 1
        url = delivery.url
        event = delivery.event
        assert url is not None
        headers = _headers(session, attempt, event)
        entry = _journal_callback(session, url, headers, delivery.body, event)
        started = time.perf_counter()
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        response_body = b""
        error: str | None = None
        cut = False
        try:
            error = await target_problem(url, session.settings.webhook_allow)
            if error is None:
                async with self._http().stream("POST", url, content=delivery.body,
                                               headers=headers) as response:
                    status = response.status_code
                    response_headers = response.headers.raw
                    async for chunk in response.aiter_raw():
                        response_body += chunk
                        if len(response_body) > MAX_RESPONSE_BYTES:
                            cut = True
                            break
        except asyncio.CancelledError:
            self._attempted_now(session, queue, delivery, error="cancelled")
            entry.warnings = (_named(NOTE_CANCELLED, event).format(attempt=attempt,
                                                                   max=MAX_ATTEMPTS),)
            finish(entry, status=0, headers={}, body=b"",
                   duration_ms=(time.perf_counter() - started) * 1000)
            if session.journal.watchers:
                session.journal.announce(entry)
            raise
        except (httpx.HTTPError, OSError, ValueError) as exc:
            error = _describe(exc)
        ok = 200 <= status < 300
        why = error or f"HTTP {status}"
        next_at = await self._attempted(session, queue, delivery, ok=ok,
                                        status=status or None, error=None if ok else why)
        if not ok:
            note = (_named(NOTE_GAVE_UP, event).format(attempt=attempt, max=MAX_ATTEMPTS, why=why)
                    if next_at is None else
                    _named(NOTE_FAILED, event).format(attempt=attempt, max=MAX_ATTEMPTS, why=why,
                                                      at=iso_millis(next_at)))
            entry.warnings = (note,)
            log.info("%s (session %s, %s)", note, session.name, delivery.label)
        elif attempt > 1:
            entry.warnings = (_named(NOTE_DELIVERED_LATE, event).format(attempt=attempt,
                                                                        max=MAX_ATTEMPTS),)
        if cut:
            entry.warnings = (*entry.warnings, NOTE_ANSWER_CUT.format(limit=MAX_RESPONSE_BYTES))
        finish(entry, status=status, headers=response_headers,
               body=response_body[:MAX_RESPONSE_BYTES],
               duration_ms=(time.perf_counter() - started) * 1000)
        if session.journal.watchers:
            session.journal.announce(entry)

    async def _attempted(self, session: Session, queue: CallbackQueue, delivery: Delivery, *,
                         ok: bool, status: int | None, error: str | None) -> datetime | None:
        """Records an attempt's outcome in the queue; with a shared store, in the session's
        queue as the store has it now (held meanwhile, saved after)."""
        world = self._world
        if world is None or world.store is None:
            return queue.attempted(delivery, ok=ok, now=session.clock.now(), status=status,
                                   error=error)
        await world.enter(session)
        try:
            state = session.states.get(PROVIDER)
            current = state.callbacks.find(delivery.key) if state is not None else None
            if current is None:
                return None  # reset, or re-seeded, meanwhile
            return state.callbacks.attempted(current, ok=ok, now=session.clock.now(),
                                             status=status, error=error)
        finally:
            world.leave(session)

    def _attempted_now(self, session: Session, queue: CallbackQueue, delivery: Delivery, *,
                       error: str) -> None:
        """An attempt cut off (shutdown): recorded at once when the session is free; with a
        shared store and the session busy, its claim runs out and another process retries."""
        world = self._world
        if world is None or world.store is None:
            queue.attempted(delivery, ok=False, now=session.clock.now(), status=None,
                            error=error)
            return
        if not world.try_hold(session):
            return
        try:
            state = session.states.get(PROVIDER)
            current = state.callbacks.find(delivery.key) if state is not None else None
            if current is not None:
                state.callbacks.attempted(current, ok=False, now=session.clock.now(),
                                          status=None, error=error)
        finally:
            world.leave(session, local=False)
