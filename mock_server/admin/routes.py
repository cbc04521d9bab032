"""The admin API under /__admin: health, reset, scenarios, journal, clock."""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from mock_server import __version__
from mock_server.core.clock import iso_millis, parse_instant
from mock_server.core.http import Context, Handler, Problem
from mock_server.core.openapi import Spec
from mock_server.core.scenarios import ScenarioError, parse_scenario
from mock_server.core.world import Session

if TYPE_CHECKING:
    from mock_server.app import SandboxApp

PROVIDER_FILTERS = ("afterpay", "optty", "admin")
_ADVANCE_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# each unit is capped at about 100 years (openapi/admin.yaml, ClockAdvanceRequest)
_ADVANCE_LIMITS = {"seconds": 3_155_760_000, "minutes": 52_596_000, "hours": 876_600,
                   "days": 36_525}


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
                         "; ".join(f"{v.dotted or 'body'}: {v.message}" for v in violations))
    return value


class AdminApp:
    name = "admin"

    def __init__(self, spec: Spec, app: SandboxApp) -> None:
        self.spec = spec
        self.app = app
        operations: dict[str, Handler] = {
            "health": self.health,
            "reset": self.reset,
            "loadScenario": self.load_scenario,
            "listScenarios": self.list_scenarios,
            "deleteScenario": self.delete_scenario,
            "listRequests": self.list_requests,
            "clearRequests": self.clear_requests,
            "getClock": self.get_clock,
            "freezeClock": self.freeze_clock,
            "advanceClock": self.advance_clock,
            "resetClock": self.reset_clock,
            # the shopper's step, headless (mock_server.afterpay.portal)
            "confirmAfterpayCheckout": self.confirm_afterpay_checkout,
            "cancelAfterpayCheckout": self.cancel_afterpay_checkout,
        }
        missing = set(spec.operations) ^ set(operations)
        if missing:
            raise RuntimeError(f"admin spec and handlers disagree on {sorted(missing)}")
        self.handlers: dict[str, Handler] = {
            op: self._guarded(op, fn) for op, fn in operations.items()}

    def owns(self, path: str) -> bool:
        return path == "/__admin" or path.startswith("/__admin/")

    def _guarded(self, operation: str, handler: Handler) -> Handler:
        async def run(ctx: Context) -> Response:
            try:
                if operation != "health":
                    self._authorize(ctx)
                return await handler(ctx)
            except AdminError as err:
                headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
                return error_response(err, headers)
        return run

    def _authorize(self, ctx: Context) -> None:
        token = ctx.settings.admin_token
        if not token:
            return
        given = ctx.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                                  token.encode()):
            raise AdminError(401, "unauthorized", "Admin token required")

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
        return error_response(AdminError(500, "internal_error", "the sandbox failed; see its log"))

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return error_response(AdminError(status or 500, code, code))

    # -- operations -------------------------------------------------------------------------

    async def health(self, ctx: Context) -> Response:
        return json_response({"status": "ok", "version": __version__,
                              "sessions": len(self.app.world.sessions()),
                              "uptimeSeconds": round(time.monotonic() - self.app.started_at, 3)})

    async def reset(self, ctx: Context) -> Response:
        self.app.world.reset(ctx.session.name)
        return json_response({"session": ctx.session.name, "status": "reset"})

    async def load_scenario(self, ctx: Context) -> Response:
        source = ctx.headers.get("x-scenario-source", "<request>")
        try:
            scenario = parse_scenario(ctx.body, source, error_codes=self.app.world.error_codes)
            loaded = self.app.world.load(ctx.session, scenario)
        except ScenarioError as err:
            raise AdminError(400, "invalid_scenario", str(err), list(err.problems)) from err
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
        return json_response({"session": ctx.session.name, "name": name,
                              "removedFaults": len(removed.faults)})

    async def list_requests(self, ctx: Context) -> Response:
        query = ctx.query
        provider = query.get("provider") or None
        if provider is not None and provider not in PROVIDER_FILTERS:
            raise AdminError(400, "invalid_request",
                             f"provider must be one of {', '.join(PROVIDER_FILTERS)}")
        status = _int_param(query.get("status"), "status", 100, 599)
        limit = _int_param(query.get("limit"), "limit", 1, 10_000)
        total, entries = ctx.session.journal.query(
            provider=provider, status=status, operation=query.get("operation") or None,
            limit=limit if limit is not None else 100)
        return json_response({"session": ctx.session.name, "total": total,
                              "requests": [e.to_json() for e in entries]})

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


    async def confirm_afterpay_checkout(self, ctx: Context) -> Response:
        return self._afterpay_consumer(ctx, "confirm")

    async def cancel_afterpay_checkout(self, ctx: Context) -> Response:
        return self._afterpay_consumer(ctx, "cancel")

    def _afterpay_consumer(self, ctx: Context, action: str) -> Response:
        from mock_server.afterpay.portal import AdminActionError, admin_consumer_action
        afterpay = next(p for p in self.app.providers if p.name == "afterpay"
                        and hasattr(p, "lifecycle"))
        try:
            return json_response(admin_consumer_action(afterpay.lifecycle, ctx, action))
        except AdminActionError as err:
            raise AdminError(err.status, err.error, err.message) from None


def _int_param(raw: str | None, name: str, low: int, high: int) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise AdminError(400, "invalid_request", f"{name} must be an integer from {low} to {high}")
    return int(raw)
