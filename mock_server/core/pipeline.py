"""A request's way through the sandbox, as small stages (docs/architecture.md, "A request").

`Pipeline.__call__` is the one ordered list of the stages. Each stage is a method taking the
request's `Exchange` (what the stages found so far) and is testable on its own
(tests/unit/test_pipeline.py). The stages that only act before the handler are plain calls;
only those that must await or wrap the handler (the body read, a fault rule's delay or
scripted answer, dispatch, sending) are coroutines, and a fault rule's coroutine is made only
when a rule fired. Nothing is built per request but the `Exchange` and the handler's `Context`.

1. head_size     the head over --max-header-bytes / --max-header-field-bytes: 431 in the owning
                 surface's shape, nothing journaled, no session looked up (the rest is skipped)
2. session       the session named by X-Sandbox-Session or a /sessions/<name>/ prefix (which
                 the path then loses); made on first use, the default one when there is no room
                 (answered 503 at dispatch); the handler's Context
3. route         the surface and operation the path belongs to, or the problem to answer
                 (unknown route, wrong method, bad session name); a session still sharing the
                 startup world gets its own copy when the request may write
4. body_limit    the body read whole up to --max-body-bytes, else 413 (refused unread when the
                 declared length is over)
   enter         with a store shared by processes: the session held (here and in the store)
                 and read as the store has it (core.world.World.enter)
5. journal       the request in its session's journal (provider requests only)
6. faults        the session's first live fault rule for it; `fault_answer` takes its delay or
                 its scripted answer (a network fault is the send stage's)
7. dispatch      the operation's handler, or the surface's answer to a problem found above; an
                 exception from the handler goes to the surface's `handle_error`
8. safe_headers  warnings in one X-Sandbox-Warning line, every header value safe to send
   commit        with a shared store: what the request changed saved and the session given
                 back before the answer goes out (World.commit; World.leave at the end)
9. send          the answer on the wire, or the rule's network fault instead
10. access_line  the journal entry finished, metrics, the access-log line
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mock_server.core import faultfire, netfaults
from mock_server.core.headervalue import header_value, safe_raw_headers
from mock_server.core.http import Answer, Context, Problem, ProviderApp, RequestHeaders
from mock_server.core.journal import finish
from mock_server.core.limits import head_problem
from mock_server.core.world import (
    DEFAULT_SESSION,
    SESSION_NAME,
    Session,
    SessionLimit,
    token_digest,
)
from mock_server.core.host import Host
from mock_server.logs import log_access

if TYPE_CHECKING:
    from mock_server.core.faults import FaultRule
    from mock_server.core.openapi import RouteMatch

log = logging.getLogger("mock_server")

# the X-Sandbox-Warning of a 503 when the shared store cannot be reached or refuses a step
STORE_DOWN = "the session store is unavailable"
access_log = logging.getLogger("mock_server.access")

SESSION_HEADER = "x-sandbox-session"
# opt-in protection: a session created with this header needs it on every admin call
SESSION_TOKEN_HEADER = "x-sandbox-session-token"
WARNING_HEADER = "x-sandbox-warning"
_WARNING_HEADER_BYTES = WARNING_HEADER.encode()
_SESSION_PREFIX = "/sessions/"
BAD_SESSION_DETAIL = "session names are 1-64 of A-Z a-z 0-9 . _ -"

# admin operations that only read the session (or change only its own clock and journal): a
# session still reading the startup world answers them without a copy of its own
ADMIN_READS = frozenset({"health", "reset", "listScenarios", "listRequests", "getRequest",
                         "streamRequests", "clearRequests", "getClock", "freezeClock",
                         "advanceClock", "resetClock", "metrics"})
_READ_METHODS = frozenset({"GET", "HEAD"})


def writes(provider: str, method: str, operation: str | None) -> bool:
    """Whether a request may change its session's world (which then needs a copy of its own)."""
    if provider == "admin":
        return operation not in ADMIN_READS
    return method not in _READ_METHODS


class BodyTooLarge(Exception):
    pass


class Serving(Host, Protocol):
    """What the pipeline asks of the app it serves (mock_server.app.SandboxApp)."""

    def route(self, path: str) -> tuple[ProviderApp, Any]:
        """The surface owning `path`, and its route match (None: no operation there)."""

    def refuse_head(self, method: str, path: str, detail: str,
                    raw_path: bytes | None = None) -> Response:
        """The 431 of a head over the limits (logged, not journaled)."""

    def unavailable(self, provider: ProviderApp, ctx: Context, reason: str) -> Response:
        """A 503 in the provider's own shape, the reason in X-Sandbox-Warning."""


class Exchange:
    """One request on its way through the stages: what each stage found so far."""

    __slots__ = ("scope", "receive", "send", "started", "method", "path", "headers",
                 "provider", "found", "bad_session", "session", "created", "full", "ctx",
                 "problem", "journaled", "rule", "response", "lost", "duration_ms")

    def __init__(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.started = started
        self.method: str = scope["method"]
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path):]  # mounted: the sandbox's paths start under its mount
        self.path = path
        self.headers: RequestHeaders = None  # type: ignore[assignment]  # session
        self.provider: ProviderApp = None  # type: ignore[assignment]  # route
        self.found: RouteMatch | None = None
        self.bad_session = False
        self.session: Session = None  # type: ignore[assignment]  # session
        self.created = False
        self.full: SessionLimit | None = None
        self.ctx: Context = None  # type: ignore[assignment]  # session
        self.problem: Problem | None = None
        self.journaled = False
        self.rule: FaultRule | None = None
        self.response: Response | None = None
        # a network fault that sent nothing: raised to the server once the request is recorded
        self.lost: netfaults.FaultWithoutConnection | None = None
        self.duration_ms = 0.0

    @property
    def operation_id(self) -> str | None:
        operation = self.ctx.operation if self.ctx is not None else None
        return operation.operation_id if operation else None


class Pipeline:
    """The stages of a request, run in order by `__call__`."""

    def __init__(self, app: Serving) -> None:
        self.app = app
        self.world = app.world
        self.settings = app.settings
        self.metrics = app.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        x = Exchange(scope, receive, send, time.perf_counter())
        if self.head_size(x):                            # 1. head size (431)
            assert x.response is not None
            await x.response(scope, receive, send)
            return
        session = self.session(x)                        # 2. session, Context
        session.active += 1
        shared = self.world.store is not None
        entered = False
        try:
            self.route(x)                                # 3. route, operation, problem
            await self.body_limit(x)                     # 4. body limit (413)
            if shared:
                entered = await self.enter(x)            # 4b. the session held (shared store)
            if not shared or entered:
                self.journal(x)                          # 5. journal entry
                try:
                    if self.faults(x):                   # 6. fault rules
                        await self.fault_answer(x)
                    await self.dispatch(x)               # 7. dispatch, the provider's errors
                except asyncio.CancelledError:
                    if not self.shutdown_answer(x):
                        raise
            self.safe_headers(x)                         # 8. safe header values
            if entered:
                await self.commit(x)                     # 8b. saved, given back (shared store)
            if not await self.send_answer(x):            # 9. send (or a network fault)
                return  # cut off by the shutdown: nothing more to record; the session stays
            self.access_line(x)                          # 10. journal, metrics, access line
        finally:
            session.active -= 1
            if entered:
                self.world.leave(session, keep=not x.created or (
                    x.response is not None and self.kept(x)))
        if x.lost is not None:
            raise x.lost
        if x.created and not self.kept(x):
            # a request refused before it could use its new session (401, unknown route, ...)
            # leaves no session behind
            self.world.forget_new(session)

    # --- before the handler: plain calls ---------------------------------------------------

    def head_size(self, x: Exchange) -> bool:
        """True when the head is over the limits; `x.response` is then its 431."""
        scope = x.scope
        raw_target = scope.get("raw_path") or x.path.encode("utf-8", "replace")
        too_large = head_problem(x.method, len(raw_target) + len(scope.get("query_string", b"")),
                                 scope["headers"], max_head=self.settings.max_header_bytes,
                                 max_field=self.settings.max_header_field_bytes)
        if too_large is None:
            return False
        x.response = self.app.refuse_head(x.method, x.path, too_large, scope.get("raw_path"))
        return True

    def session(self, x: Exchange) -> Session:
        """The request's session (made on first use) and its Context."""
        scope = x.scope
        x.headers = headers = RequestHeaders(scope["headers"])
        session_name = headers.get(SESSION_HEADER)
        path = x.path
        if path.startswith(_SESSION_PREFIX):
            name, slash, tail = path[len(_SESSION_PREFIX):].partition("/")
            session_name, x.path = name, slash + tail
        x.bad_session = bad = session_name is not None and not SESSION_NAME.match(session_name)
        world = self.world
        try:
            session, x.created = world.acquire(
                DEFAULT_SESSION if bad or not session_name else session_name)
        except SessionLimit as exc:
            session, x.created = world.acquire(DEFAULT_SESSION)
            x.full = exc
        x.session = session
        if x.created:
            token = headers.get(SESSION_TOKEN_HEADER)
            if token:
                session.token = token_digest(token)
        if x.full is None:
            world.touch(session)
        x.ctx = ctx = Context(world, self.settings, session, x.method, x.path or "/", headers,
                              scope.get("query_string", b""), b"")
        # the target as sent, still percent-encoded (a surface may quote it, as sent)
        ctx.state["raw_path"] = scope.get("raw_path")
        return session

    def route(self, x: Exchange) -> None:
        """The surface and operation, or the problem the surface answers instead."""
        x.provider, found = self.app.route(x.path or "/")
        x.found = found
        ctx = x.ctx
        if x.bad_session:
            x.problem = Problem(Problem.BAD_SESSION, detail=BAD_SESSION_DETAIL)
            return
        if found is None:
            x.problem = Problem(Problem.ROUTE_NOT_FOUND)
            return
        ctx.params = found.params
        operation = ctx.operation = found.operation(x.method)
        if operation is None:
            x.problem = Problem(Problem.METHOD_NOT_ALLOWED, allow=found.allowed)
            return
        session = x.session
        if session.template is not None and writes(x.provider.name, x.method,
                                                   operation.operation_id):
            self.world.materialise(session)

    def journal(self, x: Exchange) -> None:
        """The request in its session's journal. A request that found no room for its session
        is not put in another one's journal, and one naming an invalid session belongs to no
        session's journal (it is answered 400 invalid_session; putting it in `default` would
        show it to the wrong reader); admin calls are not journaled."""
        provider = x.provider
        if provider.name == "admin" or x.full is not None or x.bad_session:
            return
        x.journaled = True
        ctx, session = x.ctx, x.session
        operation = ctx.operation
        ctx.entry = session.journal.record(
            at=session.clock.now(), provider=provider.name,
            operation=operation.operation_id if operation else None, method=x.method,
            path=x.path, query=ctx.query_string.decode("latin-1"),
            headers=x.scope["headers"], body=ctx.body)

    def faults(self, x: Exchange) -> bool:
        """The session's first live fault rule for a journaled request, counted in the
        metrics; True when it fired (its delay or answer is `fault_answer`'s)."""
        if not x.journaled:
            return False
        rule = faultfire.fire(x.ctx, x.provider.name)
        if rule is None:
            return False
        x.rule = rule
        self.metrics.fault_fired(x.provider.name, rule.name,
                                 rule.fault or ("respond" if rule.respond else "delay"))
        return True

    # --- a store shared by processes ----------------------------------------------------------

    async def enter(self, x: Exchange) -> bool:
        """Holds the session (this process's other requests of it wait, and other processes',
        through the store's lock) and reads it as the store has it; `x.created`: whether the
        store had no such session (this request made it). False when the store failed: the
        answer is then a 503 in the surface's shape."""
        session = x.session
        try:
            x.created = await self.world.enter(session)
        except Exception:  # noqa: BLE001 - whatever the store raised, the client gets a 503
            log.exception("session %s: the store failed", session.name)
            x.created = False
            x.response = self.app.unavailable(x.provider, x.ctx, STORE_DOWN)
            return False
        if x.operation_id in getattr(x.provider, "keeps_models", ()):
            session.models_dirty = False  # nothing but the stores change: models not rewritten
        if x.created:
            token = x.headers.get(SESSION_TOKEN_HEADER)
            if token:
                session.token = token_digest(token)
        return True

    async def commit(self, x: Exchange) -> None:
        """What the request changed saved, and the session given back, before the answer goes
        out; a session the request made and did not use is not (`leave` forgets it)."""
        if not x.created or self.kept(x):
            try:
                await self.world.commit(x.session)
            except Exception:  # noqa: BLE001 - not saved: the answer must not claim it was
                log.exception("session %s: the store failed", x.session.name)
                # what the store holds now is unknown: read all of it again next time
                session = x.session
                session.held, session.version, session.part_versions = False, -1, {}
                session.kept, session.handovers = False, 0
                x.response = self.app.unavailable(x.provider, x.ctx, STORE_DOWN)
                self.safe_headers(x)

    # --- around the handler: coroutines ------------------------------------------------------

    async def body_limit(self, x: Exchange) -> None:
        """The body, read whole up to --max-body-bytes; past it (declared or sent) a 413."""
        limit = self.settings.max_body_bytes
        declared = x.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            x.problem = Problem(Problem.PAYLOAD_TOO_LARGE)  # refused unread
            return
        message: Message = await x.receive()
        if (message["type"] == "http.request" and not message.get("more_body", False)
                and len(message.get("body", b"")) <= limit):
            x.ctx.body = message.get("body", b"")  # the common case: one message
            return
        try:
            x.ctx.body = await read_body(x.receive, limit, message)
        except BodyTooLarge:
            x.problem = Problem(Problem.PAYLOAD_TOO_LARGE)

    async def fault_answer(self, x: Exchange) -> None:
        """The fired rule's delay, and its scripted answer (which replaces the provider's)."""
        assert x.rule is not None
        x.response = await faultfire.before_handler(x.ctx, x.provider, x.rule,
                                                    handled=x.problem is None)

    async def dispatch(self, x: Exchange) -> None:
        """The answer: a fault rule's (already in `x.response`), the 503 of a session with no
        room, the surface's answer to a problem, or the handler's; whatever a handler raises
        goes to its surface's one error handler (`ProviderApp.handle_error`)."""
        if x.response is not None:
            return
        ctx, provider = x.ctx, x.provider
        if x.full is not None:
            x.response = self.app.unavailable(provider, ctx, f"no room for a new session: {x.full}")
            return
        if x.problem is not None:
            x.response = provider.problem_response(ctx, x.problem)
            return
        assert ctx.operation is not None
        try:
            x.response = await provider.handlers[ctx.operation.operation_id](ctx)
        except Exception as exc:
            x.response = provider.handle_error(ctx, exc)

    def shutdown_answer(self, x: Exchange) -> bool:
        """Cancelled while answering: when the shutdown grace period ended, a 503 in the
        provider's shape (not a dropped connection); False for any other cancellation, which
        goes on up."""
        if self.app.shutdown_deadline is None:
            return False
        x.response = self.app.unavailable(x.provider, x.ctx, "the sandbox is shutting down")
        x.rule = None
        log.warning("shutdown: answered 503 to %s %s (session %s): still running when "
                    "--shutdown-timeout ended", x.method, x.path, x.session.name)
        return True

    # --- after the handler ----------------------------------------------------------------

    def safe_headers(self, x: Exchange) -> None:
        """The handlers' warnings in one X-Sandbox-Warning line (they may quote data: one safe
        line; the journal keeps them as they were), every header value safe to send."""
        response = x.response
        assert response is not None
        ctx = x.ctx
        try:
            if ctx.warnings:
                response.raw_headers = [
                    *(h for h in response.raw_headers if h[0] != _WARNING_HEADER_BYTES),
                    (_WARNING_HEADER_BYTES, header_value("; ".join(ctx.warnings)))]
            response.raw_headers = safe_raw_headers(response.raw_headers)
        except Exception:
            # whatever went wrong, an answer goes out in the provider's shape
            log.exception("the answer to %s %s could not be completed", x.method, x.path[:256])
            x.response = x.provider.problem_response(ctx, Problem(Problem.INTERNAL_ERROR))

    async def send_answer(self, x: Exchange) -> bool:
        """The answer on the wire, or the fault rule's network fault instead; afterwards
        `x.response` is what went out (status 0: nothing did). False when the shutdown cut it
        off while it was being sent."""
        response = x.response
        assert response is not None
        rule = x.rule
        try:
            if rule is not None and rule.fault:
                try:
                    x.response = await netfaults.deliver(rule.fault, response, x.scope,
                                                         x.receive, x.send,
                                                         x.session.fault_chances, x.ctx.entry)
                except netfaults.FaultWithoutConnection as exc:  # raised once journaled
                    x.response, x.lost = exc.sent, exc
            elif type(response) is Answer:  # what Response.__call__ sends, without a coroutine
                send = x.send
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": response.raw_headers})
                await send({"type": "http.response.body", "body": response.body})
            else:
                await response(x.scope, x.receive, x.send)
        except asyncio.CancelledError:
            if self.app.shutdown_deadline is None:
                raise
            log.warning("shutdown: the answer to %s %s (session %s) was cut off: still being "
                        "sent when --shutdown-timeout ended", x.method, x.path, x.session.name)
            return False
        return True

    def access_line(self, x: Exchange) -> None:
        """The journal entry finished (and shown to open streams), the metrics, the access
        line."""
        response = x.response
        assert response is not None
        x.duration_ms = duration_ms = (time.perf_counter() - x.started) * 1000
        ctx = x.ctx
        entry = ctx.entry
        if entry is not None:
            entry.warnings = tuple(ctx.warnings)
            finish(entry, status=response.status_code, headers=response.raw_headers,
                   body=bytes(response.body), duration_ms=duration_ms)
            if x.session.journal.watchers:  # an open dashboard or stream (admin/stream.py)
                x.session.journal.announce(entry)
        operation = ctx.operation.operation_id if ctx.operation else None
        self.metrics.observe(x.provider.name, operation, response.status_code, duration_ms)
        if access_log.isEnabledFor(logging.INFO):
            log_access({"session": x.session.name, "provider": x.provider.name,
                        "operation": operation, "method": x.method, "path": x.path,
                        "status": response.status_code, "duration_ms": round(duration_ms, 3),
                        "fault": entry.fault if entry else None})

    @staticmethod
    def kept(x: Exchange) -> bool:
        """Whether the request used its session: False when it was refused before it could
        (no room, a problem, the health probe, 401/403)."""
        assert x.response is not None
        return not (x.full is not None or x.problem is not None or x.operation_id == "health"
                    or x.response.status_code in (401, 403))


async def read_body(receive: Receive, limit: int, first: Message | None = None) -> bytes:
    """The body from `first` and the messages after it, within `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message: Message = first if first is not None else await receive()
        first = None
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


__all__ = ["ADMIN_READS", "BodyTooLarge", "Exchange", "Pipeline", "Serving", "read_body",
           "writes"]
