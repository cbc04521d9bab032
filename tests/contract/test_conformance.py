"""Schemathesis over the three specs, in-process: every check on, plus the default world's oracle.

Every generated request runs in a session of its own (a fresh copy of the bundled default world),
so the answer to a valid request is known exactly: the oracle below predicts it from the README's
table of the default world and the reference documents, and fails the case when the sandbox
answers anything else (a refund that should succeed must answer 201 with the right echo; a seeded
payment must never be "not found"; a business refusal must carry its documented code).
Schemathesis' own checks cover the rest: statuses, content types, headers and bodies against the
spec, positive data accepted (tests/contract/<spec>.toml lists what a valid request may get),
negative data rejected, credentials enforced, no 5xx.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import schemathesis
from hypothesis import HealthCheck, settings

from mock_server.app import create_app
from mock_server.core.world import SESSION_NAME
from mock_server.resources import spec_path
from mock_server.settings import Settings
from tests.contract.hooks import call_as_generated

HERE = Path(__file__).parent
START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
START_ISO = "2026-11-01T09:00:00.123Z"
ADMIN_TOKEN = "conformance-admin-token"  # the same in admin.toml
SESSION_HEADER = "X-Sandbox-Session"

# One sandbox for the module: the bundled default world, a clock that never moves, seeded ids.
# Strict mode: the User-Agent Afterpay requires (and the spec declares required) is enforced, so
# a generated request without one is refused like any other schema-violating request.
SANDBOX = create_app(Settings(seed=7, admin_token=ADMIN_TOKEN, strict=True),
                     time_source=lambda: START)


def load(name: str) -> Any:
    schema = schemathesis.openapi.from_path(
        spec_path(name), config=schemathesis.Config.from_path(HERE / f"{name}.toml"))
    schema.app = SANDBOX
    return schema


AFTERPAY = load("afterpay")
OPTTY = load("optty")
ADMIN = load("admin")

_sessions = itertools.count(1)


def in_fresh_session(case: Any) -> str:
    """Sends the case to a session nobody used yet. A session name the case itself generated
    invalid (a negative admin case) is kept, so the sandbox's refusal of it is tested too."""
    if case.headers is None:
        case.headers = {}
    given = case.headers.get(SESSION_HEADER)
    if given is None or SESSION_NAME.match(given):
        case.headers[SESSION_HEADER] = f"contract-{next(_sessions)}"
    return str(case.headers[SESSION_HEADER])


# -- what the sent request said (read from the wire, as the sandbox read it) -----------------

def _sent_json(response: Any) -> Any:
    body = response.request.body
    if body is None:
        return None
    # numbers stay their text, as both providers read them (Decimal / the JSON number's text)
    return json.loads(body, parse_float=str, parse_int=str)


def _sent_form_or_json(response: Any) -> dict[str, Any]:
    body = response.request.body or b""
    raw = body if isinstance(body, bytes) else body.encode()
    media = (response.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media == "application/json":
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class Expected:
    """The answers a request may get: exactly one success, or any of the problems it has (the
    order in which the provider checks them is its own business, not this suite's)."""

    def __init__(self) -> None:
        self.problems: dict[int, set[str]] = {}

    def problem(self, status: int, *codes: str) -> None:
        self.problems.setdefault(status, set()).update(codes)

    def check(self, response: Any, success: int, code_of: Callable[[Any], Any],
              on_success: Callable[[Any], None]) -> None:
        status = response.status_code
        if not self.problems:
            assert status == success, (
                f"a valid request with nothing wrong must get {success}, got {status}: "
                f"{response.text[:300]}")
            on_success(response.json())
            return
        assert status in self.problems, (
            f"expected one of {sorted(self.problems)} (problems: {self.problems}), got {status}: "
            f"{response.text[:300]}")
        code = code_of(response.json())
        assert any(code == want or (want.endswith("*") and str(code).startswith(want[:-1]))
                   for want in self.problems[status]), (
            f"{status} must say one of {sorted(self.problems[status])}, said {code!r}")


# -- Afterpay: the default world (README, "The default world") -------------------------------

AFTERPAY_MERCHANT_CURRENCY = "AUD"
# orderId -> (what a refund meets, what is left to refund, paymentState) for merchant 100101382
AFTERPAY_WORLD: dict[str, tuple[str, Decimal, str]] = {
    "100101785223": ("refundable", Decimal("120.00"), "CAPTURED"),
    "100101785224": ("refundable", Decimal("60.00"), "CAPTURED"),
    "100101785225": ("refundable", Decimal("80.00"), "PARTIALLY_CAPTURED"),
    "100101785226": ("refundable", Decimal("0.00"), "CAPTURED"),
    "100101785227": ("not_refundable", Decimal("0.00"), "AUTH_DECLINED"),
    "100101785228": ("not_refundable", Decimal("0.00"), "AUTH_APPROVED"),
    "100101785229": ("not_refundable", Decimal("0.00"), "VOIDED"),
    "100101785230": ("expired", Decimal("90.00"), "CAPTURED"),
}
_AFTERPAY_DECIMAL = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_AFTERPAY_REFERENCES = {"requestId": 64, "merchantReference": 85, "refundMerchantReference": 128}


def afterpay_create_refund(case: Any, response: Any) -> None:
    sent = _sent_json(response)
    expected = Expected()
    money = sent.get("amount")
    amount: Decimal | None = None
    text = money.get("amount")
    if isinstance(text, str) and _AFTERPAY_DECIMAL.fullmatch(text):
        amount = Decimal(text)
        if amount == 0:
            expected.problem(422, "invalid_amount")
    else:  # e.g. a JSON number written with an exponent: not a decimal (docs/fidelity.md)
        expected.problem(422, "invalid_object", "invalid_amount")
    if money.get("currency") != AFTERPAY_MERCHANT_CURRENCY:
        expected.problem(422, "invalid_object", "unsupported_currency")
    for field, limit in _AFTERPAY_REFERENCES.items():
        value = sent.get(field)
        if isinstance(value, str) and _utf16_units(value) > limit:  # counted like Java
            expected.problem(422, "invalid_object")
    seeded = AFTERPAY_WORLD.get(case.path_parameters["orderId"])
    if seeded is None:
        expected.problem(404, "not_found")
    else:
        kind, left, _state = seeded
        if kind == "not_refundable":
            expected.problem(412, "precondition_failed")
        elif kind == "expired":
            expected.problem(422, "refund_timelimit_exceeded")
        elif amount is not None and amount > left:
            expected.problem(422, "invalid_amount")

    def refunded(body: Any) -> None:
        assert amount is not None
        assert body["amount"] == {"amount": f"{amount:.2f}", "currency": "AUD"}, body
        for field in _AFTERPAY_REFERENCES:
            if sent.get(field) is None:
                assert field not in body, f"{field} was not sent, so it is not echoed"
            else:
                # a number or boolean is read as its JSON text, as Afterpay's Jackson mapping
                # reads it into a String field (fidelity notes), and echoed as that text
                value = sent[field]
                text = value if isinstance(value, str) else json.dumps(value)
                assert body[field] == text, f"{field} is echoed as the text it was read as"
        assert body["refundedAt"] == START_ISO

    expected.check(response, 201, lambda body: body["errorCode"], refunded)


def afterpay_get_payment(case: Any, response: Any) -> None:
    expected = Expected()
    seeded = AFTERPAY_WORLD.get(case.path_parameters["orderId"])
    if seeded is None:
        expected.problem(404, "not_found")

    def found(body: Any) -> None:
        assert seeded is not None
        assert body["id"] == case.path_parameters["orderId"]
        assert body["paymentState"] == seeded[2]
        assert body["openToRefundAmount"] == {"amount": f"{seeded[1]:.2f}", "currency": "AUD"}

    expected.check(response, 200, lambda body: body["errorCode"], found)


def afterpay_ping(case: Any, response: Any) -> None:
    assert response.status_code == 200 and response.text == "pong"


# -- Afterpay: the payment lifecycle (a fresh session holds no checkout: every token is unknown)

AFTERPAY_MINIMUM, AFTERPAY_MAXIMUM = Decimal("1.00"), Decimal("1000.00")


def afterpay_create_checkout(case: Any, response: Any) -> None:
    """A checkout is created only for an amount within the configuration limits in the
    merchant's currency; a refusal names one of the body's problems."""
    sent = _sent_json(response)
    money = sent.get("amount") or {}
    text = money.get("amount")
    if response.status_code == 201:
        assert isinstance(text, str) and _AFTERPAY_DECIMAL.fullmatch(text), text
        assert AFTERPAY_MINIMUM <= Decimal(text) <= AFTERPAY_MAXIMUM
        assert money.get("currency") == AFTERPAY_MERCHANT_CURRENCY
        body = response.json()
        assert list(body) == ["token", "expires", "redirectCheckoutUrl"]
        assert re.fullmatch(r"002\.[a-z0-9]{48}", body["token"])
        assert body["redirectCheckoutUrl"].endswith(
            f"/__portal/afterpay/au/checkout/?token={body['token']}")
        return
    assert response.status_code == 422, response.text
    code = response.json()["errorCode"]
    assert code in ("invalid_object", "invalid_amount", "unsupported_currency",
                    "unsupported_payment_type"), code
    if code == "unsupported_payment_type":
        assert not AFTERPAY_MINIMUM <= Decimal(text) <= AFTERPAY_MAXIMUM


def afterpay_unknown_checkout(case: Any, response: Any) -> None:
    expected = Expected()
    expected.problem(412, "invalid_token")
    expected.check(response, 200, lambda body: body["errorCode"], lambda body: None)


def afterpay_pay_with_token(case: Any, response: Any) -> None:
    expected = Expected()
    token = (_sent_json(response) or {}).get("token")
    if token in ("", None):
        expected.problem(422, "invalid_object")
    else:
        expected.problem(402, "invalid_token")
    expected.problem(422, "invalid_object")  # a reference longer than its limit
    expected.check(response, 201, lambda body: body["errorCode"], lambda body: None)


# what a capture or void meets on each default-world payment
AFTERPAY_CHANGE = {"CAPTURED": (410, "payment_captured"), "AUTH_DECLINED": (412, "invalid_state"),
                   "VOIDED": (412, "payment_voided")}


def afterpay_change(case: Any, response: Any) -> None:
    expected = Expected()
    operation = case.operation.definition.raw["operationId"]
    order_id = case.path_parameters["orderId"]
    seeded = AFTERPAY_WORLD.get(order_id)
    # the body's own 422s (Money table, lengths, reason, not positive, below the minimum)
    expected.problem(422, "invalid_object", "invalid_amount", "unsupported_currency")
    if seeded is None:
        if operation == "captureDeferredPayment":
            expected.problem(412, "error")
        expected.problem(404, "not_found")
    elif seeded[2] in AFTERPAY_CHANGE:
        expected.problem(*AFTERPAY_CHANGE[seeded[2]])
    if seeded is not None and seeded[2] in ("AUTH_APPROVED", "PARTIALLY_CAPTURED"):
        if response.status_code == 201:
            body = response.json()
            assert body["id"] == order_id
            return
    expected.check(response, 201, lambda body: body["errorCode"], lambda body: None)


def afterpay_payment_by_token(case: Any, response: Any) -> None:
    expected = Expected()
    expected.problem(404, "not_found")
    expected.check(response, 200, lambda body: body["errorCode"], lambda body: None)


def afterpay_list_payments(case: Any, response: Any) -> None:
    if response.status_code == 422:
        assert response.json()["errorCode"] == "error"
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert all(p["id"] in AFTERPAY_WORLD for p in body["results"])
    assert body["totalResults"] <= len(AFTERPAY_WORLD)


def afterpay_update_payment(case: Any, response: Any) -> None:
    expected = Expected()
    seeded = AFTERPAY_WORLD.get(case.path_parameters["orderId"])
    expected.problem(422, "invalid_object")
    if seeded is None:
        expected.problem(404, "not_found")
    elif seeded[2] == "AUTH_DECLINED":
        expected.problem(412, "invalid_state")
    if seeded is not None and seeded[2] != "AUTH_DECLINED" and response.status_code == 200:
        value = _sent_json(response)["merchantReference"]
        # a number or boolean is read as its JSON text (as refunds' references)
        text = value if isinstance(value, str) else json.dumps(value)
        assert response.json()["merchantReference"] == text
        return
    expected.check(response, 200, lambda body: body["errorCode"], lambda body: None)


def afterpay_configuration(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"minimumAmount": {"amount": "1.00", "currency": "AUD"},
                               "maximumAmount": {"amount": "1000.00", "currency": "AUD"}}


def admin_consumer_action(case: Any, response: Any) -> None:
    # a fresh session holds no checkout
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"] in ("not_found", "invalid_request", "invalid_json")


# -- Optty: the default world -------------------------------------------------------------------

# orderReference -> (provider, order status, refundable now, full refunds only, asynchronous),
# for the sandbox merchant; ORD-2001 belongs to another merchant
OPTTY_WORLD: dict[str, tuple[str, str, Decimal, bool, bool]] = {
    "ORD-1001": ("ZIP_AU", "SUCCESSFUL", Decimal("102.50"), False, False),
    "ORD-1002": ("ZIP_AU", "SUCCESSFUL", Decimal("24.98"), False, False),
    "ORD-1003": ("KLARNA_AU", "SUCCESSFUL", Decimal("80.00"), True, False),
    "ORD-1004": ("VOLT", "SUCCESSFUL", Decimal("60.00"), False, True),
    "ORD-1005": ("ZIP_AU", "PENDING", Decimal("0.00"), False, False),
    "ORD-1006": ("ZIP_AU", "DECLINED", Decimal("0.00"), False, False),
    "ORD-1007": ("LATITUDE_AU", "SUCCESSFUL", Decimal("0.00"), False, False),
}
# the default world's orders a capture or void can act on: orderReference -> open to capture
OPTTY_OPEN = {"ORD-1007": Decimal("120.00")}
OPTTY_PROVIDERS = {"ZIP_AU", "KLARNA_AU", "VOLT", "LATITUDE_AU"}
OPTTY_CLIENTS = {"sandbox-client": "sandbox-secret", "other-client": "other-secret",
                 "quick-client": "quick-secret"}
NOT_ELIGIBLE = "Order is not eligible for refund"


def optty_refund(case: Any, response: Any) -> None:
    sent = _sent_json(response)
    expected = Expected()
    money = sent["refundAmount"]
    amount = Decimal(money["amount"])
    seeded = OPTTY_WORLD.get(case.path_parameters["orderReference"])
    if seeded is None:
        expected.problem(404, "Not Found")
    else:
        provider, status, left, full_only, _async = seeded
        if status != "SUCCESSFUL" or left == 0:
            expected.problem(400, NOT_ELIGIBLE)
        if money["currency"] != "AUD":
            expected.problem(400, "Refund currency must match order currency AUD")
        if full_only and amount != left:
            expected.problem(400, f"Partial refund is not supported for {provider}*")
        if status == "SUCCESSFUL" and amount > left:
            expected.problem(400, f"You can only refund amount up to AUD {left:.2f}")

    def refunded(body: Any) -> None:
        assert seeded is not None
        provider, _status, _left, _full, asynchronous = seeded
        assert body["refundReference"] == sent["refundReference"]
        assert body["bnplProvider"] == provider
        assert body["refundedAmount"] == f"{amount:.2f}"
        assert body["refundStatus"] == ("PENDING" if asynchronous else "SUCCESSFUL")
        assert body["description"] == sent["refundDescription"]
        assert body["refundDate"] == START_ISO

    expected.check(response, 201, lambda body: body["message"], refunded)


def optty_get_order(case: Any, response: Any) -> None:
    expected = Expected()
    seeded = OPTTY_WORLD.get(case.path_parameters["orderReference"])
    if seeded is None:
        expected.problem(404, "Not Found")

    def found(body: Any) -> None:
        assert seeded is not None
        assert body["merchantReference"] == case.path_parameters["orderReference"]
        assert body["status"] == seeded[1] and body["provider"] == seeded[0]
        assert body["refundableAmount"] == f"{seeded[2]:.2f}"

    expected.check(response, 200, lambda body: body["message"], found)


def optty_create_order(case: Any, response: Any) -> None:
    sent = _sent_json(response)
    expected = Expected()
    # a valid document may still break a business rule: sums, a provider not enabled, an
    # existing reference, a token the provider does not take (openapi/optty.yaml, createOrder)
    expected.problem(400, "Order reference already exists", "Not Supported",
                     "Payment method *", "Invalid customer token", "[list]")

    def created(body: Any) -> None:
        raise AssertionError(f"unexpected success {body}")

    if response.status_code == 201:
        body = response.json()
        assert sent["bnplProvider"] in OPTTY_PROVIDERS
        assert body["orderReference"] == body["orderId"] == sent["orderReference"]
        assert body["bnplProvider"] == sent["bnplProvider"]
        assert Decimal(str(body["orderAmount"])) == Decimal(sent["orderAmount"])
        assert body["orderDate"] == START_ISO and body["paymentStatus"] == "pending"
        assert "/__portal/optty/" in body["redirectUrl"]
        return
    expected.check(response, 201, lambda body: "[list]" if isinstance(body["message"], list)
                   else body["message"], created)


def _optty_movement(case: Any, response: Any, kind: str) -> None:
    sent = _sent_json(response)
    expected = Expected()
    amount = Decimal(sent["amount"])
    reference = case.path_parameters["orderReference"]
    seeded = OPTTY_WORLD.get(reference)
    if seeded is None:
        expected.problem(404, "Not Found")
    elif reference not in OPTTY_OPEN:
        expected.problem(400, f"Order is not eligible for {kind}")
    else:
        left = OPTTY_OPEN[reference]
        if amount == 0:
            expected.problem(400, "Capture amount must be greater than 0")
        if amount > left:
            expected.problem(400, f"You can only {kind} amount up to AUD {left:.2f}")

    def moved(body: Any) -> None:
        key = "captureReference" if kind == "capture" else "voidReference"
        assert body[key] == sent[key]
        assert Decimal(str(body["capturedAmount" if kind == "capture" else "amount"])) == amount

    expected.check(response, 201, lambda body: body["message"], moved)


def optty_capture_order(case: Any, response: Any) -> None:
    _optty_movement(case, response, "capture")


def optty_void_order(case: Any, response: Any) -> None:
    _optty_movement(case, response, "void")


def optty_customer_session(case: Any, response: Any) -> None:
    def issued(body: Any) -> None:
        assert body["ttl"] == 604800 and body["token"].count(".") == 2

    Expected().check(response, 201, lambda body: body["message"], issued)


def optty_issue_token(case: Any, response: Any) -> None:
    form = _sent_form_or_json(response)
    expected = Expected()
    client = form.get("client_id")
    if OPTTY_CLIENTS.get(client) != form.get("client_secret"):
        expected.problem(401, "Unauthorized")

    def issued(body: Any) -> None:
        assert body["token_type"] == "Bearer" and body["expires_in"] == 86400

    expected.check(response, 201, lambda body: body["message"], issued)


# -- admin --------------------------------------------------------------------------------------

def _session(case: Any) -> str:
    return str(case.headers[SESSION_HEADER])


def admin_health(case: Any, response: Any) -> None:
    assert response.status_code == 200 and response.json()["status"] == "ok"


def admin_get_metrics(case: Any, response: Any) -> None:
    assert response.status_code == 200
    content_type = response.headers["content-type"]  # schemathesis: a list of the values
    if isinstance(content_type, list):
        [content_type] = content_type
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE sandbox_requests_total counter" in response.text


def admin_reset(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"session": _session(case), "status": "reset"}


def admin_load_scenario(case: Any, response: Any) -> None:
    if response.status_code == 422:
        body = response.json()
        # a document the schema allows but the sandbox cannot apply (references, sums, unique
        # ids, a number's written form): refused whole, with every problem located
        assert body["error"] == "invalid_scenario", body
        assert body["problems"] and all(re.match(r"^\S.*:\d+: ", p) for p in body["problems"])
        return
    assert response.status_code == 201, response.text
    assert response.json()["session"] == _session(case)


def admin_list_scenarios(case: Any, response: Any) -> None:
    assert response.status_code == 200
    body = response.json()
    # a fresh session holds the startup world and nothing else
    assert body["session"] == _session(case)
    assert [s["name"] for s in body["scenarios"]] == ["default"]


def admin_delete_scenario(case: Any, response: Any) -> None:
    if case.path_parameters["name"] == "default":
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: v for k, v in body.items() if k != "kept"} == {
            "session": _session(case), "name": "default", "removedFaults": 0}
        # the default world's seed stays in force
        assert body["kept"]["afterpayPayments"] > 0 and body["kept"]["opttyOrders"] > 0
    else:
        assert response.status_code == 404 and response.json()["error"] == "not_found"


def admin_list_requests(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"session": _session(case), "total": 0, "next": None,
                               "requests": []}


def admin_get_request(case: Any, response: Any) -> None:
    # a fresh session's journal is empty: every id is unknown
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


def admin_clear_requests(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"session": _session(case), "cleared": 0}


def admin_get_clock(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"session": _session(case), "now": START_ISO, "frozen": False,
                               "offsetSeconds": 0}


def admin_freeze_clock(case: Any, response: Any) -> None:
    assert response.status_code == 200, response.text
    sent = json.loads(response.request.body)
    given = datetime.fromisoformat(sent["now"].replace("Z", "+00:00")).astimezone(UTC)
    body = response.json()
    assert body["frozen"] is True
    assert body["now"] == given.strftime("%Y-%m-%dT%H:%M:%S.") + f"{given.microsecond // 1000:03d}Z"


def admin_advance_clock(case: Any, response: Any) -> None:
    assert response.status_code == 200, response.text
    sent = json.loads(response.request.body)
    units = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    seconds = sum(value * units[unit] for unit, value in sent.items())
    body = response.json()
    assert body["frozen"] is False
    assert abs(body["offsetSeconds"] - seconds) <= 0.001 * max(1.0, seconds / 1e9)
    now = datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
    assert abs(now - (START + timedelta(seconds=seconds))) <= timedelta(milliseconds=2)


def admin_reset_clock(case: Any, response: Any) -> None:
    assert response.status_code == 200
    assert response.json() == {"session": _session(case), "now": START_ISO, "frozen": False,
                               "offsetSeconds": 0}


def admin_optty_outcome(case: Any, response: Any) -> None:
    # the default world's orders: PENDING ORD-1005 takes an outcome; the others are final;
    # ORD-2001 belongs to another merchant, still found (the admin API sees every merchant)
    reference = case.path_parameters["orderReference"]
    body = response.json()
    sent = _sent_json(response)
    if reference not in OPTTY_WORLD and reference != "ORD-2001":
        assert response.status_code in (404, 400), body
        return
    if sent.get("status") != "PENDING" and ("after" in sent or "finalStatus" in sent):
        assert response.status_code == 400, body
        return
    if reference == "ORD-1005" and sent.get("merchantId", "sandbox-merchant") == \
            "sandbox-merchant":
        assert response.status_code == 200, body
        assert body["redirectUrl"] is None and body["status"] == sent["status"]
        return
    assert response.status_code in (404, 409), body


ORACLES: dict[str, Callable[[Any, Any], None]] = {
    "createRefund": afterpay_create_refund,
    "getPayment": afterpay_get_payment,
    "ping": afterpay_ping,
    "createCheckout": afterpay_create_checkout,
    "getCheckout": afterpay_unknown_checkout,
    "captureFullPayment": afterpay_pay_with_token,
    "authorisePayment": afterpay_pay_with_token,
    "captureDeferredPayment": afterpay_change,
    "voidPayment": afterpay_change,
    "getPaymentByToken": afterpay_payment_by_token,
    "listPayments": afterpay_list_payments,
    "updatePayment": afterpay_update_payment,
    "getConfiguration": afterpay_configuration,
    "confirmAfterpayCheckout": admin_consumer_action,
    "cancelAfterpayCheckout": admin_consumer_action,
    "issueToken": optty_issue_token,
    "RefundsController_refundOrder": optty_refund,
    "getOrder": optty_get_order,
    "createOrder": optty_create_order,
    "captureOrder": optty_capture_order,
    "voidOrder": optty_void_order,
    "createCustomerSession": optty_customer_session,
    "opttyOrderOutcome": admin_optty_outcome,
    "health": admin_health,
    "reset": admin_reset,
    "loadScenario": admin_load_scenario,
    "listScenarios": admin_list_scenarios,
    "deleteScenario": admin_delete_scenario,
    "listRequests": admin_list_requests,
    "getRequest": admin_get_request,
    "clearRequests": admin_clear_requests,
    "getClock": admin_get_clock,
    "freezeClock": admin_freeze_clock,
    "advanceClock": admin_advance_clock,
    "resetClock": admin_reset_clock,
    "getMetrics": admin_get_metrics,
}


def default_world_oracle(ctx: Any, response: Any, case: Any) -> bool | None:
    """A valid request in a fresh default world gets exactly the answer the world implies."""
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        return None  # schemathesis' negative_data_rejection judges those
    ORACLES[case.operation.definition.raw["operationId"]](case, response)
    return True


def conforms(case: Any) -> None:
    in_fresh_session(case)
    # the generated Accept, and a blank User-Agent for a case without a usable one
    response = call_as_generated(case, SANDBOX)
    case.validate_response(response, additional_checks=[default_world_oracle])


# Bounded for the 2-core budget (the sizes come from <spec>.toml); derandomized so a run is
# reproducible; no deadline, because time spent depends on the machine, never on correctness.
bounded = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@AFTERPAY.parametrize()
@bounded
def test_afterpay_conforms_to_its_spec(case: Any) -> None:
    conforms(case)


@OPTTY.parametrize()
@bounded
def test_optty_conforms_to_its_spec(case: Any) -> None:
    conforms(case)


@ADMIN.parametrize()
@bounded
def test_admin_conforms_to_its_spec(case: Any) -> None:
    conforms(case)
