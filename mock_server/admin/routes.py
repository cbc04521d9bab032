"""The admin API under /__admin: health, reset, scenarios, journal, clock, metrics."""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from mock_server import __version__
from mock_server.admin.stream import MAX_STREAMS_PER_SESSION, Filters, StreamHub, stream_response
from mock_server.core.clock import iso_millis, parse_instant
from mock_server.core.http import Context, Handler, Problem, crashed
from mock_server.core.journal import LIST_BODY_BYTES
from mock_server.core.openapi import Spec
from mock_server.core.providers import AdminOperation, AdminRefusal
from mock_server.core.scenario_spec import follows_published_schema, plain_document
from mock_server.core.scenarios import ScenarioError, parse_scenario
from mock_server.core.world import Session

if TYPE_CHECKING:
    from mock_server.admin.ui import Dashboard
    from mock_server.core.host import Host

# the journal's provider filter values: the app's registry's (Registry.journal_filters)
# the journal's pages (GET /__admin/requests): entries per page by default and at most
DEFAULT_PAGE = 100
MAX_PAGE = 1000
PAGE_BYTES = 8 * 1024 * 1024  # a page ends early past this much journaled data
# no bearer token checked by _guarded: the probe, and the dashboard, whose pages ask for the
# token themselves (a browser cannot send it on navigation) and whose assets hold no data
_OPEN_OPERATIONS = frozenset({"health", "dashboardRedirect", "dashboardHome", "dashboardSession",
                              "dashboardEntry", "dashboardAsset"})
_ADVANCE_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# each unit is capped at about 100 years (openapi/admin.yaml, ClockAdvanceRequest)
_ADVANCE_LIMITS = {"seconds": 3_155_760_000, "minutes": 52_596_000, "hours": 876_600,
                   "days": 36_525}


_PARSER: ThreadPoolExecutor | None = None
_PARSER_LOCK = threading.Lock()


def _parser() -> ThreadPoolExecutor:
    """The one thread that parses POSTed scenarios (one at a time: a queue, not a crowd)."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scenario-parser")
        return _PARSER


class AdminError(Exception):
    def __init__(self, status: int, error: str, message: str,
                 problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.problems = problems


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
                    status, headers=dict(headers or {}), media_type="application/json")


def error_response(err: AdminError, headers: Mapping[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": err.error, "message": err.message}
    if err.problems is not None:
        body["problems"] = err.problems
    return json_response(body, err.status, headers)


def _clock(session: Session) -> dict[str, Any]:
    return {"session": session.name, "now": iso_millis(session.clock.now()),
            "frozen": session.clock.frozen,
            "offsetSeconds": round(session.clock.offset.total_seconds(), 3)}


def _json_object(ctx: Context) -> dict[str, Any]:
    try:
        value = json.loads(ctx.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    except RecursionError:  # thousands of nested brackets: not a clock request either
        raise AdminError(400, "invalid_json", "body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise AdminError(400, "invalid_request", "body must be a JSON object")
    assert ctx.operation is not None
    violations = ctx.operation.validate_body(value)
    if violations:
        raise AdminError(400, "invalid_request",
                         "; ".join(f"{v.dotted or 'body'}: {v.describe()}" for v in violations))
    return value


class AdminApp:
    name = "admin"

    def __init__(self, spec: Spec, app: Host) -> None:
        self.spec = spec
        self.app = app
        operations: dict[str, Handler] = {
            "health": self.health,
            "reset": self.reset,
            "loadScenario": self.load_scenario,
            "listScenarios": self.list_scenarios,
            "deleteScenario": self.delete_scenario,
            "listRequests": self.list_requests,
            "getRequest": self.get_request,
            "clearRequests": self.clear_requests,
            "getClock": self.get_clock,
            "freezeClock": self.freeze_clock,
            "advanceClock": self.advance_clock,
            "resetClock": self.reset_clock,
            "streamRequests": self.stream_requests,
            "dashboardRedirect": self.dashboard_redirect,
            "dashboardHome": self.dashboard_home,
            "dashboardSession": self.dashboard_session,
            "dashboardEntry": self.dashboard_entry,
            "dashboardAsset": self.dashboard_asset,
            "getMetrics": self.get_metrics,
        }
        # the providers' own admin operations (core.providers.Built.admin); one of the spec's
        # that no registered provider serves answers 404
        provided = dict(getattr(app, "admin_operations", {}))
        for operation_id in set(spec.operations) - set(operations):
            found = provided.pop(operation_id, None)
            operations[operation_id] = (_provided(found) if found is not None
                                        else _not_served(operation_id))
        missing = set(spec.operations) ^ set(operations) | set(provided)
        if missing:
            raise RuntimeError(f"admin spec and handlers disagree on {sorted(missing)}")
        self.handlers: dict[str, Handler] = {
            op: self._guarded(op, fn) for op, fn in operations.items()}
        self.streams = StreamHub(app.world)
        self._dashboard: Dashboard | None = None

    def owns(self, path: str) -> bool:
        return path == "/__admin" or path.startswith("/__admin/")

    def _guarded(self, operation: str, handler: Handler) -> Handler:
        """The operation behind the admin token and the session's protection (what they raise
        is answered by handle_error); the open operations as they are."""
        if operation in _OPEN_OPERATIONS:
            return handler

        async def run(ctx: Context) -> Response:
            self._authorize(ctx)
            self._protected(ctx)
            return await handler(ctx)
        return run

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        """The admin API's one error handler: an AdminError in its shape (a 401 with its
        WWW-Authenticate challenge), anything else its 500 internal_error."""
        if isinstance(exc, AdminError):
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return error_response(exc, headers)
        return crashed(self, ctx, exc)

    def _authorize(self, ctx: Context) -> None:
        token = ctx.settings.admin_token
        if not token:
            return
        given = ctx.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                                  token.encode()):
            raise AdminError(401, "unauthorized", "Admin token required")

    @staticmethod
    def _protected(ctx: Context) -> None:
        """A session created with X-Sandbox-Session-Token needs the same token on admin calls."""
        if not ctx.session.accepts(ctx.headers.get("x-sandbox-session-token")):
            raise AdminError(403, "session_protected",
                             f"session {ctx.session.name!r} was created with a token; send it "
                             "in X-Sandbox-Session-Token")

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind == Problem.METHOD_NOT_ALLOWED:
            return error_response(
                AdminError(405, "method_not_allowed", f"{ctx.method} is not allowed here"),
                {"Allow": ", ".join(problem.allow)})
        if problem.kind == Problem.ROUTE_NOT_FOUND:
            return error_response(AdminError(404, "not_found", f"no admin endpoint {ctx.path}"))
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            limit = ctx.settings.max_body_bytes
            return error_response(AdminError(413, "payload_too_large",
                                             f"body larger than {limit} bytes"))
        if problem.kind == Problem.BAD_SESSION:
            return error_response(AdminError(400, "invalid_session", problem.detail))
        if problem.kind == Problem.HEADERS_TOO_LARGE:
            return error_response(AdminError(431, "headers_too_large", problem.detail))
        return error_response(AdminError(500, "internal_error", "the sandbox failed; see its log"))

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return error_response(AdminError(status or 500, code, code))

    # -- operations -------------------------------------------------------------------------

    async def health(self, ctx: Context) -> Response:
        world = self.app.world
        return json_response({"status": "ok", "version": __version__,
                              "sessions": len(world.sessions()),
                              "uptimeSeconds": round(time.monotonic() - self.app.started_at, 3),
                              "maxSessions": world.settings.max_sessions,
                              "sessionsEvicted": world.evicted,
                              "sessionsExpired": world.expired,
                              # which process answered (one of --workers N)
                              "pid": os.getpid()})

    async def reset(self, ctx: Context) -> Response:
        self.app.world.reset(ctx.session.name)
        return json_response({"session": ctx.session.name, "status": "reset"})

    async def load_scenario(self, ctx: Context) -> Response:
        source = ctx.headers.get("x-scenario-source", "<request>")
        limit = ctx.settings.max_scenario_bytes
        if len(ctx.body) > limit:
            raise AdminError(413, "payload_too_large",
                             f"scenario document larger than {limit} bytes (--max-scenario-bytes)")
        try:
            # parsed and checked on a worker thread: a large document does not hold up the
            # requests of other sessions
            scenario = await asyncio.get_running_loop().run_in_executor(
                _parser(), functools.partial(parse_scenario, ctx.body, source,
                                             error_codes=self.app.world.error_codes,
                                             registry=self.app.registry))
            loaded = self.app.world.load(ctx.session, scenario)
        except ScenarioError as err:
            # 400: the document breaks the published scenario schema (or is no YAML/JSON);
            # 422: the schema allows it, but what JSON Schema cannot say refuses it (references
            # between its parts or to the session, money that does not add up, unique ids, a
            # number's written form). Decided on the error path only.
            status = 422 if follows_published_schema(plain_document(ctx.body),
                                                     self.app.registry) else 400
            raise AdminError(status, "invalid_scenario", str(err), list(err.problems)) from err
        return json_response({"session": ctx.session.name, "name": scenario.name,
                              "seeded": loaded.seeded, "faults": len(loaded.faults)}, 201)

    async def list_scenarios(self, ctx: Context) -> Response:
        return json_response({"session": ctx.session.name, "scenarios": [
            {"name": s.scenario.name, "source": s.scenario.source,
             "loadedAt": iso_millis(s.loaded_at), "faults": [f.to_json() for f in s.faults]}
            for s in ctx.session.scenarios]})

    async def delete_scenario(self, ctx: Context) -> Response:
        name = ctx.params["name"]
        removed = self.app.world.unload(ctx.session, name)
        if removed is None:
            raise AdminError(404, "not_found", f"no scenario named {name!r} in this session")
        # seeds stay: merchants, orders and refunds made since cannot be taken back one by one
        # without breaking what the session's clients saw; reset returns to the startup world
        return json_response({"session": ctx.session.name, "name": name,
                              "removedFaults": len(removed.faults), "kept": dict(removed.seeded)})

    async def list_requests(self, ctx: Context) -> Response:
        query = ctx.query
        provider = query.get("provider") or None
        known = self.app.registry.journal_filters
        if provider is not None and provider not in known:
            raise AdminError(400, "invalid_request",
                             f"provider must be one of {', '.join(known)}")
        # 0: the requests a connection fault answered with no status at all
        raw_status = query.get("status")
        status = _int_param(raw_status, "status", 0, 599)
        if (status is not None and 0 < status < 100) or (
                raw_status and raw_status != "0" and raw_status.startswith("0")):
            raise AdminError(400, "invalid_request",
                             "status must be 0 (no answer sent) or an integer from 100 to 599")
        limit = _int_param(query.get("limit"), "limit", 1, MAX_PAGE)
        before = _int_param(query.get("before"), "before", 1, 2**63 - 1)
        total, entries, after = ctx.session.journal.page(
            provider=provider, status=status, operation=query.get("operation") or None,
            limit=limit if limit is not None else DEFAULT_PAGE, before=before)
        # At most MAX_PAGE entries, each body cut to LIST_BODY_BYTES, and a page ends early
        # once it holds PAGE_BYTES: what one answer costs is bounded whatever the journal holds.
        shown: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            if shown and size + entry.size > PAGE_BYTES:
                after = shown[-1]["id"]
                break
            shown.append(entry.to_json(LIST_BODY_BYTES))
            size += entry.size
        return json_response({"session": ctx.session.name, "total": total, "next": after,
                              "requests": shown})

    async def get_request(self, ctx: Context) -> Response:
        raw = ctx.params["id"]
        entry_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else None
        entry = ctx.session.journal.get(entry_id) if entry_id else None
        if entry is None:
            raise AdminError(404, "not_found",
                             f"no journal entry {raw[:64]} in this session")
        return json_response(entry.to_json())

    async def stream_requests(self, ctx: Context) -> Response:
        query = ctx.query
        provider = query.get("provider") or None
        known = self.app.registry.journal_filters
        if provider is not None and provider not in known:
            raise AdminError(400, "invalid_request",
                             f"provider must be one of {', '.join(known)}")
        status = _int_param(query.get("status"), "status", 0, 599)
        limit = _int_param(query.get("limit"), "limit", 1, 10_000)
        after = _int_param(query.get("after"), "after", 0, 2**63 - 1)
        last_event = ctx.headers.get("last-event-id")
        if after is None and last_event is not None and last_event.strip().isdigit():
            after = int(last_event.strip())  # an EventSource reconnecting
        if self.streams.count(ctx.session.name) >= MAX_STREAMS_PER_SESSION:
            raise AdminError(429, "too_many_streams",
                             f"session {ctx.session.name} already has "
                             f"{MAX_STREAMS_PER_SESSION} request streams open")
        filters = Filters(provider, status, query.get("operation") or None)
        return stream_response(self.app, self.streams, ctx.session, filters, after, limit)

    # -- the dashboard (admin/ui.py) ---------------------------------------------------------

    @property
    def dashboard(self) -> Dashboard:
        if self._dashboard is None:  # Jinja2 is loaded when a page is first asked for
            from mock_server.admin.ui import Dashboard
            self._dashboard = Dashboard(self.app)
        return self._dashboard

    def _may_see(self, ctx: Context) -> bool:
        try:
            self._authorize(ctx)
        except AdminError:
            return False
        return True

    async def dashboard_redirect(self, ctx: Context) -> Response:
        return Response(status_code=308, headers={"Location": "ui/"})

    async def dashboard_home(self, ctx: Context) -> Response:
        if not self._may_see(ctx):
            return self.dashboard.locked(ctx, "home")
        return self.dashboard.home(ctx)

    async def dashboard_session(self, ctx: Context) -> Response:
        if not self._may_see(ctx):
            return self.dashboard.locked(ctx, "session")
        return self.dashboard.session_view(ctx)

    async def dashboard_entry(self, ctx: Context) -> Response:
        if not self._may_see(ctx):
            return self.dashboard.locked(ctx, "entry")
        return self.dashboard.entry(ctx)

    async def dashboard_asset(self, ctx: Context) -> Response:
        found = self.dashboard.asset(ctx.params["asset"])
        if found is None:
            raise AdminError(404, "not_found", f"no dashboard asset {ctx.params['asset']!r}")
        return found

    async def clear_requests(self, ctx: Context) -> Response:
        return json_response({"session": ctx.session.name,
                              "cleared": ctx.session.journal.clear()})

    async def get_clock(self, ctx: Context) -> Response:
        return json_response(_clock(ctx.session))

    async def freeze_clock(self, ctx: Context) -> Response:
        body = _json_object(ctx)
        unknown = sorted(set(body) - {"now"})
        if unknown:
            raise AdminError(400, "invalid_request",
                             f"only 'now' may be given (unknown: {', '.join(unknown)})")
        now = body.get("now")
        if not isinstance(now, str):
            raise AdminError(400, "invalid_request", "'now' must be an ISO 8601 date-time")
        try:
            instant = parse_instant(now)
        except ValueError as exc:
            raise AdminError(400, "invalid_request",
                             f"'now' is not an ISO 8601 date-time: {now!r}") from exc
        ctx.session.clock.freeze(instant)
        return json_response(_clock(ctx.session))

    async def advance_clock(self, ctx: Context) -> Response:
        body = _json_object(ctx)
        unknown = sorted(set(body) - set(_ADVANCE_UNITS))
        if unknown or not body:
            raise AdminError(400, "invalid_request",
                             "give one or more of seconds, minutes, hours, days"
                             + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        seconds = 0.0
        for unit, value in body.items():
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise AdminError(400, "invalid_request",
                                 f"'{unit}' must be a non-negative number")
            if value > _ADVANCE_LIMITS[unit]:
                raise AdminError(400, "invalid_request", f"'{unit}' must be at most "
                                 f"{_ADVANCE_LIMITS[unit]} (about 100 years)")
            seconds += value * _ADVANCE_UNITS[unit]
        try:
            delta = timedelta(seconds=seconds)
        except OverflowError as exc:
            raise AdminError(400, "invalid_request", "that is too far to advance") from exc
        try:
            ctx.session.clock.advance(delta)
        except OverflowError as exc:
            raise AdminError(400, "invalid_request", "that is too far to advance") from exc
        return json_response(_clock(ctx.session))

    async def reset_clock(self, ctx: Context) -> Response:
        ctx.session.clock.reset()
        return json_response(_clock(ctx.session))

    async def get_metrics(self, ctx: Context) -> Response:
        from mock_server.core.metrics import CONTENT_TYPE, exposition

        # the whole server's (every session's) counters: a scraper names no session
        return Response(exposition(self.app.metrics, self.app.world),
                        headers={"Content-Type": CONTENT_TYPE})


def _int_param(raw: str | None, name: str, low: int, high: int, *, also: str = "",
               what: str = "") -> int | None:
    if raw is None or raw == "":
        return None
    # ASCII digits only ("²".isdigit() is true, int("²") fails), and few enough for int()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not low <= int(raw) <= high:
        if what:
            raise AdminError(400, "invalid_request", f"{name} must be {what} (an integer >= {low})")
        raise AdminError(400, "invalid_request", f"{name} must be an integer from {low} to {high}"
                         + (f", or {also}" if also else ""))
    return int(raw)


def _provided(operation: AdminOperation) -> Callable[[Context], Awaitable[Response]]:
    """A provider's admin operation, answered in the admin API's shape."""

    async def handler(ctx: Context) -> Response:
        try:
            answer = operation(ctx, lambda: _json_object(ctx))
        except AdminRefusal as refused:
            raise AdminError(refused.status, refused.error, refused.message) from None
        headers = {"X-Sandbox-Warning": "; ".join(answer.warnings)} if answer.warnings else None
        return json_response(answer.payload, headers=headers)

    return handler


def _not_served(operation_id: str) -> Callable[[Context], Awaitable[Response]]:
    async def handler(ctx: Context) -> Response:
        raise AdminError(404, "not_found",
                         f"no provider of this sandbox serves {operation_id}")

    return handler
