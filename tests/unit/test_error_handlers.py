"""One error handler per provider surface (`ProviderApp.handle_error`): whatever a handler raises
is answered in that surface's shape, by the surface, not by the handler's own try/except."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.admin.routes import AdminError
from mock_server.afterpay import errors as afterpay_errors
from mock_server.app import SandboxApp, create_app
from mock_server.core.http import Context, ProviderApp, RequestHeaders
from mock_server.optty import errors as optty_errors
from mock_server.settings import Settings

from tests.conftest import AFTERPAY_HEADERS


@pytest.fixture(scope="module")
def app() -> SandboxApp:
    return create_app(Settings(seed=7))


def surface(app: SandboxApp, name: str) -> ProviderApp:
    return next(p for p in app.providers if p.name == name)


def context(app: SandboxApp, provider: ProviderApp, operation: str | None) -> Context:
    world = app.world
    ctx = Context(world, app.settings, world.session("default"), "GET", "/", RequestHeaders([]),
                  b"", b"")
    ctx.operation = provider.spec.operations[operation] if operation else None
    return ctx


def header(response: Any, name: bytes) -> bytes | None:
    return next((value for key, value in response.raw_headers if key == name), None)


# --- Afterpay ---------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["getPayment", "getCheckout", "getPaymentByToken",
                                       "listPayments"])
def test_afterpay_refusal_of_a_read_carries_the_reads_cache_control(app: SandboxApp,
                                                                    operation: str) -> None:
    afterpay = surface(app, "afterpay")
    response = afterpay.handle_error(context(app, afterpay, operation), afterpay_errors.NotFound())
    assert response.status_code == 404
    assert response.raw_headers[0][0] == b"cache-control"  # before the correlation id
    assert header(response, b"vary") is None
    body = json.loads(response.body)
    assert body["errorCode"] == "not_found" and body["httpStatusCode"] == 404


@pytest.mark.parametrize("operation", ["createRefund", "ping", "getConfiguration",
                                       "captureDeferredPayment"])
def test_afterpay_refusal_elsewhere_has_no_cache_control(app: SandboxApp, operation: str) -> None:
    afterpay = surface(app, "afterpay")
    response = afterpay.handle_error(context(app, afterpay, operation),
                                     afterpay_errors.Unauthorized())
    assert response.status_code == 401
    assert header(response, b"cache-control") is None
    assert header(response, b"http_correlation_id") is not None
    assert json.loads(response.body)["errorCode"] == "unauthorized"


def test_afterpay_crash_is_its_500_and_is_logged(app: SandboxApp,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    afterpay = surface(app, "afterpay")
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        response = afterpay.handle_error(context(app, afterpay, "createRefund"),
                                         KeyError("secret detail"))
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body["errorCode"] == "error" and "secret detail" not in response.body.decode()
    assert [r.getMessage() for r in caplog.records] == ["handler createRefund crashed"]
    assert caplog.records[0].exc_info is not None


# --- Optty ------------------------------------------------------------------------------------

def test_optty_error_is_nestjs_shape_and_brings_its_warnings(app: SandboxApp) -> None:
    optty = surface(app, "optty")
    ctx = context(app, optty, "getOrder")
    err = optty_errors.BadRequest(["refundAmount.amount must be a positive number"])
    err.warnings.append("a warning to send along")
    response = optty.handle_error(ctx, err)
    assert response.status_code == 400
    assert json.loads(response.body) == {
        "statusCode": 400, "message": ["refundAmount.amount must be a positive number"],
        "error": "Bad Request"}
    assert ctx.warnings == ["a warning to send along"]


def test_optty_crash_is_nestjs_internal_server_error(app: SandboxApp) -> None:
    optty = surface(app, "optty")
    response = optty.handle_error(context(app, optty, "getOrder"), ValueError("boom"))
    assert (response.status_code, response.body) == (
        500, b'{"statusCode":500,"message":"Internal server error"}')


# --- admin and the portal ---------------------------------------------------------------------

def test_admin_401_has_the_bearer_challenge_other_errors_do_not(app: SandboxApp) -> None:
    admin = surface(app, "admin")
    ctx = context(app, admin, "getClock")
    denied = admin.handle_error(ctx, AdminError(401, "unauthorized", "Admin token required"))
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert json.loads(denied.body) == {"error": "unauthorized", "message": "Admin token required"}
    missing = admin.handle_error(ctx, AdminError(404, "not_found", "no such thing", ["a"]))
    assert missing.status_code == 404 and "www-authenticate" not in missing.headers
    assert json.loads(missing.body) == {"error": "not_found", "message": "no such thing",
                                        "problems": ["a"]}


def test_admin_crash_is_its_500(app: SandboxApp) -> None:
    admin = surface(app, "admin")
    response = admin.handle_error(context(app, admin, "getClock"), RuntimeError("x"))
    assert response.status_code == 500
    assert json.loads(response.body) == {"error": "internal_error",
                                         "message": "the sandbox failed; see its log"}


def test_portal_crash_is_a_500_page(app: SandboxApp) -> None:
    portal = surface(app, "portal")
    response = portal.handle_error(context(app, portal, None), RuntimeError("x"))
    assert response.status_code == 500
    assert b"<h1>Internal error</h1>" in response.body


# --- through the app: a handler with no try/except of its own -----------------------------------

def test_a_handler_raising_its_providers_error_is_answered_in_its_shape(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(Settings(seed=7))
    afterpay = surface(app, "afterpay")

    async def refusing(ctx: Context) -> Any:
        raise afterpay_errors.NotAcceptable()

    monkeypatch.setitem(afterpay.handlers, "getPayment", refusing)  # type: ignore[index]
    with TestClient(app) as client:
        answer = client.get("/v2/payments/100101785223", headers=AFTERPAY_HEADERS)
    assert answer.status_code == 406
    assert answer.json()["errorCode"] == "error"
    assert answer.headers["cache-control"].startswith("private, no-cache")
