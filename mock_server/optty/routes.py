"""Optty's surface: operationId -> handler, and NestJS's shape for problems around them."""

from __future__ import annotations

from starlette.responses import Response

from mock_server.core.http import Context, Handler, Problem
from mock_server.core.openapi import Spec
from mock_server.optty import errors
from mock_server.optty.handlers import OpttyHandlers, error
from mock_server.optty.models import OpttyModel
from mock_server.settings import Settings


class OpttyApp:
    name = "optty"

    def __init__(self, spec: Spec, settings: Settings) -> None:
        self.spec = spec
        self.model = OpttyModel(settings.jwt_secret)
        handlers = OpttyHandlers(self.model)
        self.handlers: dict[str, Handler] = {
            "issueToken": handlers.issue_token,
            "RefundsController_refundOrder": handlers.refund_order,
            "getOrder": handlers.get_order,
        }
        missing = set(spec.operations) ^ set(self.handlers)
        if missing:
            raise RuntimeError(f"optty spec and handlers disagree on {sorted(missing)}")

    def owns(self, path: str) -> bool:
        return True  # Optty's API sits at the root of its host: every other path is NestJS's

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        # NestJS answers an unmatched route and a wrong method alike: "Cannot POST /x"
        if problem.kind in (Problem.ROUTE_NOT_FOUND, Problem.METHOD_NOT_ALLOWED):
            return error(ctx, errors.RouteNotFound(ctx.method, ctx.path))
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return error(ctx, errors.PayloadTooLarge())
        if problem.kind == Problem.BAD_SESSION:
            return error(ctx, errors.BadRequest(problem.detail))
        return error(ctx, errors.InternalError())

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return error(ctx, errors.error_for_code(code, status))
