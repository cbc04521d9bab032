"""The ASGI application: sessions, routing by OpenAPI operation, body limits, journal."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mock_server.core import faultfire, netfaults
from mock_server.core.clock import TimeSource, real_time
from mock_server.core.http import Answer, Context, Problem, ProviderApp, RequestHeaders
from mock_server.core.headervalue import header_value, safe_raw_headers
from mock_server.core.host import ShutdownHook
from mock_server.core.journal import finish
from mock_server.core.limits import head_problem
from mock_server.core.openapi import Spec
from mock_server.core.providers import Provider, Registry, default_registry
from mock_server.core.scenarios import Scenario, load_scenario_paths
from mock_server.core.stores import Store, refuse_serving
from mock_server.core.world import (
    DEFAULT_SESSION,
    SESSION_NAME,
    ProviderModel,
    Session,
    SessionLimit,
    World,
    token_digest,
)
from mock_server.logs import log_access
from mock_server.resources import default_scenario_path, spec_path
from mock_server.settings import Settings

log = logging.getLogger("mock_server")
access_log = logging.getLogger("mock_server.access")

SESSION_HEADER = "x-sandbox-session"
# opt-in protection: a session created with this header needs it on every admin call
SESSION_TOKEN_HEADER = "x-sandbox-session-token"
WARNING_HEADER = "x-sandbox-warning"
_WARNING_HEADER_BYTES = WARNING_HEADER.encode()
_SESSION_PREFIX = "/sessions/"


# however little of the grace period in-flight requests left, each hook gets this much to report
MIN_HOOK_SECONDS = 1.0


class BodyTooLarge(Exception):
    pass


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


def unavailable(provider: ProviderApp, ctx: Context, reason: str) -> Response:
    """A 503 in the provider's own shape, the reason in X-Sandbox-Warning."""
    if provider.name == "admin":
        from mock_server.admin.routes import AdminError, error_response
        response = error_response(AdminError(503, "service_unavailable", reason))
    else:
        response = provider.error_response(ctx, "service_unavailable", 503)
    response.headers[WARNING_HEADER] = reason
    return response


class SandboxApp:
    """One port for every surface: admin, Afterpay and Optty, each matched by its spec."""

    def __init__(self, world: World, providers: Sequence[ProviderApp]) -> None:
        self.world = world
        self.settings = world.settings
        self.providers = list(providers)
        # the last provider answers paths nobody owns (Optty's NestJS "Cannot GET /x")
        self.fallback: ProviderApp | None = self.providers[-1] if self.providers else None
        # the providers it was built from (create_app sets the one it was given)
        self.registry: Registry = default_registry()
        self.started_at = time.monotonic()
        self.startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.shutdown_hooks: list[ShutdownHook] = []
        # time.monotonic() by which shutdown must be done; the server sets it when a signal
        # arrives, so the hooks get what in-flight requests left of the grace period
        self.shutdown_deadline: float | None = None
        # HTTP requests begun so far: tells an idle server from a busy one (core.gcpolicy)
        self.requests_started = 0
        self.metrics = world.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._run_startup_hooks()
                except Exception as exc:  # noqa: BLE001 - reported to the server, not raised
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._run_shutdown_hooks()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @contextlib.asynccontextmanager
    async def lifespan(self, host: object = None) -> AsyncIterator[None]:
        """The sandbox's start-up and shutdown for a host that mounts it (an ASGI server sends
        lifespan events to the host only):
        `Starlette(routes=[Mount("/sandbox", app=sandbox)], lifespan=sandbox.lifespan)`."""
        await self._run_startup_hooks()
        try:
            yield
        finally:
            await self._run_shutdown_hooks()

    async def _run_startup_hooks(self) -> None:
        for hook in self.startup_hooks:
            await hook()

    def shutdown_remaining(self) -> float:
        """Seconds left of the shutdown grace period (a hook's budget, e.g. to drain callbacks)."""
        if self.shutdown_deadline is None:
            self.shutdown_deadline = (time.monotonic()
                                      + self.settings.shutdown_timeout.total_seconds())
        return max(self.shutdown_deadline - time.monotonic(), MIN_HOOK_SECONDS)

    def pending_callbacks(self) -> list[str]:
        """What providers still have to send (a provider may list it with pending_callbacks())."""
        found: list[str] = []
        for provider in self.providers:
            pending = getattr(provider, "pending_callbacks", None)
            if callable(pending):
                try:
                    found.extend(str(item) for item in pending())
                except Exception:
                    log.exception("shutdown: %s could not list its pending callbacks",
                                  provider.name)
        return found

    async def _run_shutdown_hooks(self) -> None:
        # Every hook runs, whatever the one before did; what is left undone is logged, so a
        # pending callback is either delivered or reported, never silently dropped.
        waiting = self.pending_callbacks()
        if waiting:
            log.info("shutdown: %d callback(s) pending", len(waiting))
        reported: set[str] = set()
        for hook in self.shutdown_hooks:
            name = getattr(hook, "__qualname__", None) or repr(hook)
            budget = self.shutdown_remaining()
            try:
                left = await asyncio.wait_for(hook(), budget)
            except TimeoutError:
                log.warning("shutdown: %s did not finish within %.1fs; stopped it", name, budget)
                continue
            except Exception:
                log.exception("shutdown: %s failed", name)
                continue
            for item in [left] if isinstance(left, str) else list(left or ()):
                reported.add(str(item))
                log.warning("shutdown: not finished: %s", item)
        for item in self.pending_callbacks():
            if item not in reported:
                log.warning("shutdown: not delivered: %s", item)

    def route(self, path: str) -> tuple[ProviderApp, Any]:
        for provider in self.providers:
            found = provider.spec.match(path)
            if found is not None:
                return provider, found
        for provider in self.providers:
            if provider.owns(path):
                return provider, None
        assert self.fallback is not None
        return self.fallback, None

    def refuse_head(self, method: str, path: str, detail: str,
                    raw_path: bytes | None = None) -> Any:
        """The 431 for a request head over the limits, in the shape of the provider owning
        `path`: nothing journaled, no session looked up or made (the default one lends its id
        source to the error body)."""
        provider, _found = self.route(path or "/")
        ctx = Context(self.world, self.settings, self.world.session(DEFAULT_SESSION), method,
                      path or "/", RequestHeaders([]), b"", b"")
        ctx.state["raw_path"] = raw_path
        response = provider.problem_response(ctx, Problem(Problem.HEADERS_TOO_LARGE,
                                                          detail=detail))
        if access_log.isEnabledFor(logging.INFO):
            log_access({"session": None, "provider": provider.name, "operation": None,
                        "method": method, "path": path[:256], "status": response.status_code,
                        "duration_ms": 0.0, "fault": None})
        return response

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        self.requests_started += 1
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path):]  # mounted: the sandbox's paths start under its mount
        raw_target = scope.get("raw_path") or path.encode("utf-8", "replace")
        too_large = head_problem(scope["method"], len(raw_target)
                                 + len(scope.get("query_string", b"")), scope["headers"],
                                 max_head=self.settings.max_header_bytes,
                                 max_field=self.settings.max_header_field_bytes)
        if too_large is not None:
            await self.refuse_head(scope["method"], path, too_large,
                                   scope.get("raw_path"))(scope, receive, send)
            return
        headers = RequestHeaders(scope["headers"])
        session_name = headers.get(SESSION_HEADER)
        if path.startswith(_SESSION_PREFIX):
            rest = path[len(_SESSION_PREFIX):]
            name, slash, tail = rest.partition("/")
            session_name, path = name, slash + tail
        method: str = scope["method"]
        provider, found = self.route(path or "/")
        bad_session = session_name is not None and not SESSION_NAME.match(session_name)
        full: SessionLimit | None = None
        try:
            session, created = self.world.acquire(
                DEFAULT_SESSION if bad_session or not session_name else session_name)
        except SessionLimit as exc:
            session, created = self.world.acquire(DEFAULT_SESSION)
            full = exc
        session.active += 1
        try:
            kept = await self._serve(scope, receive, send, started, path, headers, method,
                                     provider, found, bad_session, session, created, full)
        finally:
            session.active -= 1
        if created and not kept:
            # a request refused before it could use its new session (401, unknown route, ...)
            # leaves no session behind
            self.world.forget_new(session)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, started: float,
                     path: str, headers: RequestHeaders, method: str, provider: ProviderApp,
                     found: Any, bad_session: bool, session: Session, created: bool,
                     full: SessionLimit | None) -> bool:
        """Serves one request; False when it was refused without using its session."""
        if created:
            token = headers.get(SESSION_TOKEN_HEADER)
            if token:
                session.token = token_digest(token)
        if full is None:
            self.world.touch(session)
        query_string: bytes = scope.get("query_string", b"")
        ctx = Context(self.world, self.settings, session, method, path or "/", headers,
                      query_string, b"")
        # the target as sent, still percent-encoded (Optty's "Cannot POST <originalUrl>")
        ctx.state["raw_path"] = scope.get("raw_path")
        problem: Problem | None = None
        if bad_session:
            problem = Problem(Problem.BAD_SESSION,
                              detail="session names are 1-64 of A-Z a-z 0-9 . _ -")
        elif found is None:
            problem = Problem(Problem.ROUTE_NOT_FOUND)
        else:
            ctx.params = found.params
            ctx.operation = found.operation(method)
            if ctx.operation is None:
                problem = Problem(Problem.METHOD_NOT_ALLOWED, allow=found.allowed)
        operation_id = ctx.operation.operation_id if ctx.operation else None
        if problem is None and session.template is not None and writes(provider.name, method,
                                                                      operation_id):
            self.world.materialise(session)
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            problem = Problem(Problem.PAYLOAD_TOO_LARGE)  # refused unread
        else:
            message: Message = await receive()
            if (message["type"] == "http.request" and not message.get("more_body", False)
                    and len(message.get("body", b"")) <= limit):
                ctx.body = message.get("body", b"")  # the common case: one message
            else:
                try:
                    ctx.body = await self._read_body(receive, message)
                except BodyTooLarge:
                    problem = Problem(Problem.PAYLOAD_TOO_LARGE)
        # a request that found no room for its session is not put in another one's journal,
        # and one naming an invalid session belongs to no session's journal (it is answered
        # 400 invalid_session; putting it in `default` would show it to the wrong reader)
        journaled = provider.name != "admin" and full is None and not bad_session
        if journaled:
            ctx.entry = session.journal.record(
                at=session.clock.now(), provider=provider.name,
                operation=ctx.operation.operation_id if ctx.operation else None, method=method,
                path=path, query=query_string.decode("latin-1"),
                headers=scope["headers"], body=ctx.body)
        rule = None
        response: Response | None = None
        try:
            if full is not None:
                response = unavailable(provider, ctx, f"no room for a new session: {full}")
            else:
                # fault rules: the session's first live matching rule, provider requests only
                rule = faultfire.fire(ctx, provider.name) if journaled and not bad_session else None
                if rule is not None:
                    self.metrics.fault_fired(provider.name, rule.name, rule.fault
                                             or ("respond" if rule.respond else "delay"))
                response = (await faultfire.before_handler(ctx, provider, rule,
                                                        handled=problem is None)
                            if rule else None)
            if response is not None:
                pass  # the rule's scripted answer replaces the provider's
            elif problem is not None:
                response = provider.problem_response(ctx, problem)
            else:
                assert ctx.operation is not None
                try:
                    response = await provider.handlers[ctx.operation.operation_id](ctx)
                except Exception as exc:
                    # the provider's one error handler: its refusals, a crash in its shape
                    response = provider.handle_error(ctx, exc)
        except asyncio.CancelledError:
            if self.shutdown_deadline is None:
                raise
            # still running when the shutdown grace period ended: answered, not dropped
            response = unavailable(provider, ctx, "the sandbox is shutting down")
            rule = None
            log.warning("shutdown: answered 503 to %s %s (session %s): still running when "
                        "--shutdown-timeout ended", method, path, session.name)
        assert response is not None
        try:
            if ctx.warnings:
                # the warnings may quote data (a merchant id): one safe line, the journal
                # keeps them as they were
                response.raw_headers = [
                    *(h for h in response.raw_headers if h[0] != _WARNING_HEADER_BYTES),
                    (_WARNING_HEADER_BYTES, header_value("; ".join(ctx.warnings)))]
            response.raw_headers = safe_raw_headers(response.raw_headers)
        except Exception:
            # whatever went wrong, an answer goes out in the provider's shape
            log.exception("the answer to %s %s could not be completed", method, path[:256])
            response = provider.problem_response(ctx, Problem(Problem.INTERNAL_ERROR))
        lost: netfaults.FaultWithoutConnection | None = None
        try:
            if rule is not None and rule.fault:
                # from here on `response` is what went on the wire (status 0: nothing did)
                try:
                    response = await netfaults.deliver(rule.fault, response, scope, receive,
                                                       send, session.fault_chances, ctx.entry)
                except netfaults.FaultWithoutConnection as exc:  # raised once journaled
                    response, lost = exc.sent, exc
            elif type(response) is Answer:  # what Response.__call__ sends, without a coroutine
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": response.raw_headers})
                await send({"type": "http.response.body", "body": response.body})
            else:
                await response(scope, receive, send)
        except asyncio.CancelledError:
            if self.shutdown_deadline is None:
                raise
            log.warning("shutdown: the answer to %s %s (session %s) was cut off: still being "
                        "sent when --shutdown-timeout ended", method, path, session.name)
            return True
        duration_ms = (time.perf_counter() - started) * 1000
        if ctx.entry is not None:
            ctx.entry.warnings = tuple(ctx.warnings)
            finish(ctx.entry, status=response.status_code, headers=response.raw_headers,
                   body=bytes(response.body), duration_ms=duration_ms)
            if session.journal.watchers:  # an open dashboard or stream (admin/stream.py)
                session.journal.announce(ctx.entry)
        operation = ctx.operation.operation_id if ctx.operation else None
        self.metrics.observe(provider.name, operation, response.status_code, duration_ms)
        if access_log.isEnabledFor(logging.INFO):
            log_access({"session": session.name, "provider": provider.name,
                        "operation": operation, "method": method, "path": path,
                        "status": response.status_code, "duration_ms": round(duration_ms, 3),
                        "fault": ctx.entry.fault if ctx.entry else None})
        if lost is not None:
            raise lost
        refused = (full is not None or problem is not None or operation_id == "health"
                   or response.status_code in (401, 403))
        return not refused

    async def _read_body(self, receive: Receive, first: Message | None = None) -> bytes:
        """The body from `first` and the messages after it, within --max-body-bytes."""
        limit = self.settings.max_body_bytes
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


@functools.cache
def _spec(name: str, where: str | None = None) -> Spec:
    # Parsed specs never change after loading, so every app built in one process (the test
    # suite builds hundreds) shares them. `where`: a spec file outside openapi/.
    return Spec.load(name, Path(where) if where is not None else spec_path(name))


def _provider_spec(provider: Provider) -> Spec:
    spec_name = provider.spec_name
    if spec_name.endswith((".yaml", ".yml", ".json")):
        return _spec(provider.name, spec_name)
    return _spec(spec_name)


def load_startup(settings: Settings, error_codes: dict[str, frozenset[str]], *,
                 registry: Registry | None = None) -> list[Scenario]:
    paths = list(settings.scenarios) or [str(default_scenario_path())]
    return load_scenario_paths(paths, error_codes=error_codes, registry=registry)


def create_app(settings: Settings | None = None, *, time_source: TimeSource = real_time,
               scenarios: Sequence[Scenario] | None = None,
               providers: Registry | None = None,
               store: Store | None = None) -> SandboxApp:
    """Builds the whole sandbox: specs loaded once, startup world parsed, default session seeded.

    `providers`: the registry to build from (default: mock_server.providers.registry()).
    `store` holds the session state (core.stores.open_store); None or `memory` is this process
    only. A store that cannot hold all of it yet is refused (StoreError, one line)."""
    if store is not None:
        refuse_serving(store.url)
    from mock_server.admin.routes import AdminApp
    from mock_server.core.portal import PortalApp

    settings = settings or Settings()
    registry = providers if providers is not None else default_registry()
    built = [provider.build(_provider_spec(provider), settings)
             for provider in registry.providers]
    models: list[ProviderModel] = [part.model for part in built]
    error_codes = {m.name: m.error_codes for m in models}
    startup = (list(scenarios) if scenarios is not None
               else load_startup(settings, error_codes, registry=registry))
    world = World(settings, models, startup, time_source=time_source)
    app = SandboxApp(world, [])
    app.registry = registry
    admin = AdminApp(_spec("admin"), app)
    # the shopper's pages last, all in one portal app: every API request is routed without
    # trying their paths first
    pages = [pageset for part in built for pageset in part.pages]
    app.providers = [admin, *(part.surface for part in built),
                     *([PortalApp(pages)] if pages else [])]
    app.fallback = next((part.surface for part in built if part.surface.name == registry.fallback),
                        admin)
    for provider in app.providers:
        attach = getattr(provider, "attach", None)
        if attach is not None:
            attach(app)
    if settings.session_idle_ttl is not None:
        _expire_idle_sessions(app)
    if settings.watch and scenarios is None:
        from mock_server.core.watch import install
        install(app, list(settings.scenarios) or [str(default_scenario_path())])
    return app


def _expire_idle_sessions(app: SandboxApp) -> None:
    """While the app runs, sessions idle for longer than --session-idle-ttl are forgotten."""
    ttl = app.settings.session_idle_ttl
    assert ttl is not None
    interval = min(max(ttl.total_seconds() / 4, 0.5), 60.0)
    task: asyncio.Task[None] | None = None

    async def sweep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                app.world.expire_idle()
            except Exception:  # noqa: BLE001 - the sweeper must outlive one bad round
                log.exception("expiring idle sessions failed")

    async def start() -> None:
        nonlocal task
        task = asyncio.get_running_loop().create_task(sweep())

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.startup_hooks.append(start)
    app.shutdown_hooks.append(stop)
