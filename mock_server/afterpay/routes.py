"""Afterpay's surface: operationId -> handler, and its shape for problems around them."""

from __future__ import annotations

from starlette.responses import Response

from mock_server.afterpay import errors
from mock_server.afterpay.handlers import _NO_CACHE, error
from mock_server.afterpay.lifecycle_http import LifecycleHandlers
from mock_server.afterpay.models import AfterpayModel
from mock_server.core.http import Context, Handler, Problem, crashed
from mock_server.core.openapi import Spec


# recorded: the 404 of a read carries the read's Cache-Control too (no Vary); Decision: so do
# the read's other refusals
READS = frozenset({"getPayment", "getCheckout", "getPaymentByToken", "listPayments"})


class AfterpayApp:
    name = "afterpay"
    # operations that change the session's models only through its stores (the ledger, the
    # ids): with a shared store the models are not written again after them. A refund's id is
    # drawn from the ids and taken in the ledger (refund_ids is a cache of this process's)
    keeps_models = frozenset({"createRefund"})

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.model = AfterpayModel()
        handlers = LifecycleHandlers(self.model)
        self.lifecycle = handlers.lifecycle
        self._filters = handlers.filters
        self.handlers: dict[str, Handler] = {
            "createRefund": handlers.create_refund,
            "getPayment": handlers.get_payment,
            "ping": handlers.ping,
            # the payment lifecycle (reference afterpay-lifecycle.md)
            "createCheckout": handlers.create_checkout,
            "getCheckout": handlers.get_checkout,
            "captureFullPayment": handlers.capture_full,
            "authorisePayment": handlers.authorise,
            "captureDeferredPayment": handlers.capture_deferred,
            "voidPayment": handlers.void_payment,
            "getPaymentByToken": handlers.get_payment_by_token,
            "listPayments": handlers.list_payments,
            "updatePayment": handlers.update_payment,
            "getConfiguration": handlers.get_configuration,
        }
        missing = set(spec.operations) ^ set(self.handlers)
        if missing:
            raise RuntimeError(f"afterpay spec and handlers disagree on {sorted(missing)}")

    def owns(self, path: str) -> bool:
        return path == "/v2" or path.startswith("/v2/") or path == "/ping"

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind in (Problem.METHOD_NOT_ALLOWED, Problem.ROUTE_NOT_FOUND):
            # Decision: the filter chain runs before routing, as Spring Security's filters run
            # before the dispatcher: under /v2/ credentials come first; /ping needs none
            try:
                self._filters(ctx, authenticate=ctx.path != "/ping")
            except errors.AfterpayError as err:
                return error(ctx, err)
        if problem.kind == Problem.METHOD_NOT_ALLOWED:
            allow = list(problem.allow)
            if "GET" in allow and "HEAD" not in allow:
                allow.append("HEAD")  # HEAD is served wherever GET is
            return error(ctx, errors.MethodNotAllowed(), {"Allow": ", ".join(sorted(allow))})
        if problem.kind == Problem.ROUTE_NOT_FOUND:
            return error(ctx, errors.NotFound(errors.ROUTE_NOT_FOUND_MESSAGE))
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return error(ctx, errors.PayloadTooLarge())
        if problem.kind == Problem.HEADERS_TOO_LARGE:
            return error(ctx, errors.HeadersTooLarge())
        if problem.kind == Problem.BAD_SESSION:
            return error(ctx, errors.InvalidRequest(problem.detail))
        return error(ctx, errors.InternalError())

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return error(ctx, errors.error_for_code(code, status))

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        """Afterpay's one error handler: an AfterpayError raised by a handler in its shape
        (with the read's Cache-Control on a read), anything else a 500 in the same shape."""
        if isinstance(exc, errors.AfterpayError):
            operation = ctx.operation
            if operation is not None and operation.operation_id in READS:
                return error(ctx, exc, before=(_NO_CACHE,))
            return error(ctx, exc)
        return crashed(self, ctx, exc)
