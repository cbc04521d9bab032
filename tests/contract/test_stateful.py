"""Stateful schemathesis runs over the specs' OpenAPI links: seed -> refund -> replay -> read back.

Each run starts in a session of its own, seeded through the admin API (POST /__admin/scenarios,
validated against openapi/admin.yaml) with a payment/order whose captured amount Hypothesis
draws. Schemathesis then walks the links: a refund (201) leads to the same request again
(`ReplayRefund` / `RepeatRefund`) and to reading the payment or order back (`ReadBackPayment` /
`ReadBackOrder`), which leads to another refund. Every answer goes through every schemathesis
check, and through a model of the money that fails the run when the sandbox and the model
disagree: more refunded than captured, a replay that is not byte-identical or that moves money,
a read-back that lists other refunds or another open amount than the model, a request journal that
lists other refunds than the read-back.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import initialize, rule, run_state_machine_as_test

from mock_server.app import create_app
from mock_server.resources import spec_path
from mock_server.settings import Settings
from tests.conftest import basic
from tests.contract.hooks import call_as_generated

HERE = Path(__file__).parent
START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
ADMIN_TOKEN = "conformance-admin-token"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SESSION_HEADER = "X-Sandbox-Session"
# strict, as in test_conformance.py: the User-Agent the Afterpay spec requires is enforced
SANDBOX = create_app(Settings(seed=11, admin_token=ADMIN_TOKEN, strict=True),
                     time_source=lambda: START)

AFTERPAY_MERCHANT = "100101382"
AFTERPAY_AUTH = basic()


def load(name: str, **overrides: dict[str, Any]) -> Any:
    """The spec with tests/contract/<name>.toml, some tables of which the stateful run narrows so
    that most generated refunds succeed and the links after a 201 really get walked."""
    with open(HERE / f"{name}.toml", "rb") as toml:
        config = tomllib.load(toml)
    for table, values in overrides.items():
        config[table] = {**config.get(table, {}), **values}
    schema = schemathesis.openapi.from_path(spec_path(name),
                                            config=schemathesis.Config.from_dict(config))
    schema.app = SANDBOX
    return schema


ADMIN = load("admin")
AFTERPAY = load(
    "afterpay",
    dictionaries={"refundable": {"values": ["100101785223", "100101785223", "100101785224"]},
                  "small-amounts": {"values": ["1.00", "5.50", "10", "0.01", "12.34"]},
                  # few keys, so generated refunds are often idempotent and meet their keys again
                  "request-ids": {"values": ["req-1", "req-2"]},
                  "merchant-references": {"values": ["ref-1"]}},
    parameters={"path.orderId": {"dictionary": "refundable", "probability": 0.9},
                "body.amount.currency": {"dictionary": "afterpay-currency", "probability": 0.95},
                "body.amount.amount": {"dictionary": "small-amounts", "probability": 0.8},
                "body.requestId": {"dictionary": "request-ids", "probability": 0.6},
                "body.merchantReference": {"dictionary": "merchant-references",
                                           "probability": 0.6}}
).include(operation_id=["createRefund", "getPayment"])  # the lifecycle: test_stateful_lifecycle
OPTTY = load(
    "optty",
    dictionaries={"refundable": {"values": ["ORD-1001", "ORD-1001", "ORD-1004", "LIFE-1",
                                            "LIFE-1", "LIFE-1"]},
                  # captures and voids (tests/contract/optty.toml) on the created order
                  "optty-capturable": {"values": ["LIFE-1"]},
                  # captures that fit the created order (at least 20.00) and cover small refunds
                  "optty-movement-amounts": {"values": [5, 10, 15, 20]},
                  "small-amounts": {"values": [0.01, 1, 5.5, 10, 12.34]}},
    parameters={"path.orderReference": {"dictionary": "refundable", "probability": 0.9},
                "body.amount": {"dictionary": "small-amounts", "probability": 0.8},
                "body.refundAmount.currency": {"dictionary": "optty-currency",
                                               "probability": 0.95},
                "body.refundAmount.amount": {"dictionary": "small-amounts", "probability": 0.8}})
def OPTTY_TOKEN() -> str:  # noqa: N802 - a constant's name: the sandbox merchant's token
    case = OPTTY["/token"]["POST"].Case(
        body={"client_id": "sandbox-client", "client_secret": "sandbox-secret",
              "grant_type": "client_credentials", "scope": "api-user"},
        media_type="application/x-www-form-urlencoded")
    response = case.call_and_validate()
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


# how often a run walked each part of the chain: a run that never replays or reads back a refund
# proves nothing, so the test cases below fail it
WALKED: Counter[str] = Counter()

# what the seed step captures: mostly enough for several small refunds, sometimes barely one
money = st.one_of(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20.00"), places=2),
                  st.decimals(min_value=Decimal("100.00"), max_value=Decimal("5000.00"),
                              places=2))


def seed(session: str, document: dict[str, Any]) -> None:
    """The seed step: a scenario POSTed through the admin API and checked against its spec."""
    operation = ADMIN["/__admin/scenarios"]["POST"]
    case = operation.Case(body=document, media_type="application/json",
                          headers={SESSION_HEADER: session, **ADMIN_AUTH})
    response = case.call_and_validate()
    assert response.status_code == 201, response.text


def fresh(session: str) -> str:
    """The session back at its startup world: the same name and seed give the same ids every
    run, so Hypothesis can replay a failing scenario exactly."""
    case = ADMIN["/__admin/reset"]["POST"].Case(headers={SESSION_HEADER: session, **ADMIN_AUTH})
    response = case.call_and_validate()
    assert response.status_code == 200, response.text
    return session


def admin_get(session: str, path: str, **query: Any) -> Any:
    operation = ADMIN[path]["GET"]
    case = operation.Case(headers={SESSION_HEADER: session, **ADMIN_AUTH}, query=query or None)
    response = case.call_and_validate()
    assert response.status_code == 200, response.text
    return response.json()


def _sent(response: Any) -> dict[str, Any]:
    body = response.request.body
    if not body:
        return {}
    try:
        parsed = json.loads(body, parse_float=str, parse_int=str)
    except ValueError:  # a negative case: not JSON at all
        return {}
    return parsed if isinstance(parsed, dict) else {}


# The money model's first complaint in this test run. Schemathesis' link choices feed on earlier
# answers, so when a scenario fails Hypothesis may not be able to replay it and reports only
# "Inconsistent data generation"; the test cases below then report the model's complaint instead.
MODEL_FAILURES: list[str] = []


@contextmanager
def recorded(what: str) -> Iterator[None]:
    try:
        yield
    except AssertionError as exc:
        MODEL_FAILURES.append(f"{what}: {exc}")
        raise


@dataclass
class Account:
    """What the model knows of one payment/order: what was captured and what was refunded."""

    captured: Decimal
    seeded_refunded: Decimal = Decimal(0)
    refunds: dict[str, Decimal] = field(default_factory=dict)  # refundId -> amount

    @property
    def left(self) -> Decimal:
        return self.captured - self.seeded_refunded - sum(self.refunds.values(), Decimal(0))


# -- Afterpay --------------------------------------------------------------------------------

def journal_agrees(session: str, provider: str, operation: str, id_field: str,
                   accounts: dict[str, Any]) -> None:
    """The session's journal lists exactly the refunds the model saw made."""
    entries: list[dict[str, Any]] = []
    before = None
    while True:  # every page of the journal
        query = {"provider": provider, "operation": operation, "status": 201, "limit": 1000}
        journal = admin_get(session, "/__admin/requests",
                            **(query if before is None else {**query, "before": before}))
        entries.extend(journal["requests"])
        before = journal["next"]
        if before is None:
            break
    journaled = {json.loads(entry["responseBody"])[id_field] for entry in entries}
    made = {rid for account in accounts.values() for rid in account.refunds}
    with recorded("the request journal"):
        assert journaled == made, "the journal lists exactly the refunds the model saw"


# The default world's AUD payments with money in them (README, "The default world"); the seed
# step redraws the first one.
AFTERPAY_ACCOUNTS = {"100101785224": (Decimal("100.00"), Decimal("40.00")),
                     "100101785225": (Decimal("80.00"), Decimal(0))}
SEEDED_PAYMENT = "100101785223"


class InSession:
    """Every call of a state machine goes to the machine's own sandbox session."""

    session: str

    def before_call(self, case: Any) -> None:
        if case.headers is None:
            case.headers = {}
        case.headers[SESSION_HEADER] = self.session

    def call(self, case: Any, **kwargs: Any) -> Any:
        # what the case says goes out: its Accept, and no User-Agent when it has none
        return call_as_generated(case, SANDBOX, **kwargs)


class AfterpayLinks(InSession, AFTERPAY.as_state_machine()):  # type: ignore[misc]
    def setup(self) -> None:
        self.session = fresh("stateful-afterpay")
        self.accounts = {key: Account(captured, refunded)
                         for key, (captured, refunded) in AFTERPAY_ACCOUNTS.items()}
        self.replays: dict[tuple[str, str], bytes] = {}

    @initialize(captured=money, refunded_share=st.sampled_from([0, 0, 1, 2]))
    def seed_payment(self, captured: Decimal, refunded_share: int) -> None:
        # refunded_share quarters of the payment refunded before the run starts
        refunded = (captured * refunded_share / 4).quantize(Decimal("0.01"))
        payment: dict[str, Any] = {"id": SEEDED_PAYMENT, "merchantId": AFTERPAY_MERCHANT,
                                   "amount": f"{captured}"}
        if refunded:
            payment["refunds"] = [{"amount": f"{refunded}", "refundId": "9000001"}]
        seed(self.session, {"name": "stateful", "afterpay": {"payments": [payment]}})
        self.accounts[SEEDED_PAYMENT] = Account(captured, refunded)

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                          **kwargs: Any) -> None:
        super().validate_response(response, case, additional_checks, **kwargs)
        operation = case.operation.definition.raw["operationId"]
        with recorded(f"{case.operation.label} -> {response.status_code} {response.text[:200]}"):
            if operation == "createRefund" and response.status_code == 201:
                self._refunded(case, response)
            elif operation == "getPayment" and response.status_code == 200:
                self._read_back(case.path_parameters["orderId"], response.json())

    def _refunded(self, case: Any, response: Any) -> None:
        sent = _sent(response)
        body = response.json()
        account = self.accounts.get(case.path_parameters["orderId"])
        # a number or boolean key is read as its JSON text, like a string (fidelity notes)
        key = tuple(None if v is None else v if isinstance(v, str) else json.dumps(v)
                    for v in (sent.get("requestId"), sent.get("merchantReference")))
        if None not in key:
            first = self.replays.setdefault(key, response.content)  # type: ignore[arg-type]
            if first is not response.content:
                assert response.content == first, "an idempotent replay is byte-identical"
                WALKED["afterpay replay"] += 1
                return  # and moves no money: the read-back and the journal check that
        assert account is not None, "only a payment with money in it can be refunded"
        assert body["refundId"] not in account.refunds, "a new refund gets a new refundId"
        account.refunds[body["refundId"]] = Decimal(body["amount"]["amount"])
        assert account.left >= 0, "never more refunded than captured"

    def _read_back(self, order_id: str, body: dict[str, Any]) -> None:
        account = self.accounts.get(order_id)
        if account is None:
            return
        listed = {r["refundId"]: Decimal(r["amount"]["amount"]) for r in body["refunds"]}
        made = {k: v for k, v in listed.items() if k != "9000001" and k != "10000001"}
        assert made == account.refunds, "the read-back lists exactly the refunds made"
        assert Decimal(body["openToRefundAmount"]["amount"]) == account.left
        if account.refunds:
            WALKED["afterpay read-back"] += 1

    def teardown(self) -> None:
        # the journal and the read-back agree on every refund made
        journal_agrees(self.session, "afterpay", "createRefund", "refundId", self.accounts)
        super().teardown()


# -- Optty -------------------------------------------------------------------------------------

OPTTY_ACCOUNTS = {"ORD-1002": (Decimal("50.00"), Decimal("25.02")),
                  "ORD-1004": (Decimal("60.00"), Decimal(0)),
                  "ORD-1007": (Decimal(0), Decimal(0))}
# what the default world's orders have open to capture (ORD-1007: a deferred provider's)
OPTTY_OPEN = {"ORD-1007": Decimal("120.00")}
SEEDED_ORDER = "ORD-1001"
CREATED_ORDER = "LIFE-1"
DUPLICATE = "Refund reference already exists"
DEFERRED_PROVIDERS = {"LATITUDE_AU"}


def created_order_body(provider: str, amount: Decimal) -> dict[str, Any]:
    address = {"streetAddress": "1 Main St", "city": "Sydney", "country": "AU",
               "postalCode": "2000"}
    return {"orderReference": CREATED_ORDER, "bnplProvider": provider, "purchaseCountry": "AU",
            "purchaseCurrency": "AUD", "locale": "en_AU", "orderAmount": float(amount),
            "orderItems": [{"name": "Item", "quantity": 1, "sku": "", "unitPrice": float(amount),
                            "totalAmount": float(amount)}],
            "customer": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
            "billingAddress": address, "shippingAddress": address}


class OpttyLinks(InSession, OPTTY.as_state_machine()):  # type: ignore[misc]
    """The lifecycle: the seed step creates an order through POST /orders and gives it the
    shopper's approval through the admin outcome call (both checked against their specs); the
    links then capture (CaptureCreatedOrder), void the rest (VoidTheRest), refund what was
    captured (RefundCapturedOrder) and read it back, against a model of the money."""

    def setup(self) -> None:
        self.session = fresh("stateful-optty")
        self.accounts = {key: Account(captured, refunded)
                         for key, (captured, refunded) in OPTTY_ACCOUNTS.items()}
        self.open = dict(OPTTY_OPEN)
        self.references: dict[str, Decimal] = {}
        self.movements: set[tuple[str, str]] = set()  # (captureReference|voidReference, ref)

    @initialize(amount=money, surcharge=st.sampled_from([Decimal(0), Decimal("2.50")]),
                provider=st.sampled_from(["LATITUDE_AU", "LATITUDE_AU", "LATITUDE_AU", "ZIP_AU"]),
                created=st.decimals(min_value=Decimal("20.00"), max_value=Decimal("500.00"),
                                    places=2))
    def seed_order(self, amount: Decimal, surcharge: Decimal, provider: str,
                   created: Decimal) -> None:
        order = {"orderReference": SEEDED_ORDER, "merchantId": "sandbox-merchant",
                 "bnplProvider": "ZIP_AU", "amount": f"{amount}", "surcharge": f"{surcharge}",
                 "currency": "AUD", "status": "SUCCESSFUL"}
        seed(self.session, {"name": "stateful", "optty": {"orders": [order]}})
        self.accounts[SEEDED_ORDER] = Account(amount + surcharge)
        # order -> outcome: POST /orders, then the shopper's approval (admin outcome)
        token = OPTTY_TOKEN()
        create = OPTTY["/orders"]["POST"].Case(
            body=created_order_body(provider, created), media_type="application/json",
            headers={SESSION_HEADER: self.session, "Authorization": f"Bearer {token}"})
        response = create.call_and_validate()
        assert response.status_code == 201, response.text
        outcome = ADMIN["/__admin/optty/orders/{orderReference}/outcome"]["POST"].Case(
            path_parameters={"orderReference": CREATED_ORDER}, body={"status": "SUCCESSFUL"},
            media_type="application/json", headers={SESSION_HEADER: self.session, **ADMIN_AUTH})
        decided = outcome.call_and_validate()
        assert decided.status_code == 200 and decided.json()["status"] == "SUCCESSFUL"
        deferred = provider in DEFERRED_PROVIDERS
        self.accounts[CREATED_ORDER] = Account(Decimal(0) if deferred else created)
        self.open[CREATED_ORDER] = created if deferred else Decimal(0)

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                          **kwargs: Any) -> None:
        super().validate_response(response, case, additional_checks, **kwargs)
        operation = case.operation.definition.raw["operationId"]
        with recorded(f"{case.operation.label} -> {response.status_code} {response.text[:200]}"):
            if operation == "RefundsController_refundOrder":
                self._refund(case, response)
            elif operation == "getOrder" and response.status_code == 200:
                self._read_back(case.path_parameters["orderReference"], response.json())
            elif operation in ("captureOrder", "voidOrder"):
                self._movement(operation, case, response)
            elif operation == "createOrder" and response.status_code == 201:
                # a generated order: INITIATED, nothing to capture or refund yet
                reference = response.json()["orderReference"]
                assert reference not in self.accounts, "an order reference is used only once"
                self.accounts[reference] = Account(Decimal(0))

    @rule()
    def read_back_created_order(self) -> None:
        """GET the created order at any step (checked against its spec and the model), so that
        whatever the links did to it is read back."""
        token = OPTTY_TOKEN()
        case = OPTTY["/orders/{orderReference}"]["GET"].Case(
            path_parameters={"orderReference": CREATED_ORDER},
            headers={SESSION_HEADER: self.session, "Authorization": f"Bearer {token}"})
        response = case.call_and_validate()
        assert response.status_code == 200, response.text
        with recorded(f"read back {CREATED_ORDER} -> {response.text[:200]}"):
            self._read_back(CREATED_ORDER, response.json())

    def _movement(self, operation: str, case: Any, response: Any) -> None:
        sent = _sent(response)
        key = "captureReference" if operation == "captureOrder" else "voidReference"
        if response.status_code != 201:
            if isinstance(sent.get(key), str) and (key, sent[key]) in self.movements:
                WALKED["optty movement repeat"] += 1
            return
        reference = case.path_parameters["orderReference"]
        body = response.json()
        assert (key, body[key]) not in self.movements, f"a {key} is used only once"
        self.movements.add((key, body[key]))
        amount = Decimal(str(body["capturedAmount" if operation == "captureOrder"
                                 else "amount"]))
        left = self.open.get(reference, Decimal(0))
        assert amount <= left, "never more captured and voided than authorised"
        self.open[reference] = left - amount
        if operation == "captureOrder":
            self.accounts[reference].captured += amount
            WALKED["optty capture"] += 1

    def _refund(self, case: Any, response: Any) -> None:
        reference = _sent(response).get("refundReference")
        if response.status_code == 201:
            body = response.json()
            assert reference not in self.references, "a refundReference is used only once"
            account = self.accounts.get(case.path_parameters["orderReference"])
            assert account is not None, "only a paid order with money in it can be refunded"
            amount = Decimal(body["refundedAmount"])
            self.references[reference] = amount
            account.refunds[body["bnplRefundId"]] = amount
            assert account.left >= 0, "never more refunded than captured"
        elif isinstance(reference, str) and reference in self.references:
            # a repeat of a used refundReference is refused (never a second refund, never a
            # replay); the read-back and the journal check that it moved no money
            assert response.status_code in (400, 404), response.text
            WALKED["optty repeat"] += 1

    def _read_back(self, reference: str, body: dict[str, Any]) -> None:
        account = self.accounts.get(reference)
        if account is None:
            return
        listed = {r["bnplRefundId"]: Decimal(r["refundedAmount"]) for r in body["refunds"]
                  if not r["refundReference"].startswith("seed-")}
        assert listed == account.refunds, "the read-back lists exactly the refunds made"
        assert Decimal(body["refundableAmount"]) == account.left
        assert Decimal(body["refundedAmount"]) == (
            account.captured - account.left), "refunded = captured - refundable"
        assert Decimal(body["capturedAmount"]) == account.captured
        assert Decimal(body["openToCaptureAmount"]) == self.open.get(reference, Decimal(0))
        if account.refunds:
            WALKED["optty read-back"] += 1
            if reference == CREATED_ORDER and body["captures"]:
                WALKED["optty order-capture-refund read-back"] += 1

    def teardown(self) -> None:
        journal_agrees(self.session, "optty", "RefundsController_refundOrder", "bnplRefundId",
                       self.accounts)
        super().teardown()


# Bounded for the 2-core budget: a few dozen short scenarios per provider. No shrinking: a
# failing scenario is at most 8 calls, each reported with its curl command, and shrinking one
# through HTTP takes minutes.
stateful_settings = settings(max_examples=30, stateful_step_count=8, deadline=None,
                             derandomize=True, database=None,
                             phases=[Phase.explicit, Phase.reuse, Phase.generate])


def run_reporting_the_model(run: Callable[[], None]) -> None:
    try:
        run()
    except Flaky:
        if MODEL_FAILURES:
            raise AssertionError(f"the money model failed: {MODEL_FAILURES[0]}") from None
        raise


class TestAfterpayLinks(AfterpayLinks.TestCase):  # type: ignore[misc,name-defined]
    settings = stateful_settings

    def runTest(self) -> None:
        WALKED.clear()
        MODEL_FAILURES.clear()
        run_reporting_the_model(super().runTest)
        # the walk is seeded, but what it reaches depends on the test process's history (other
        # machines run before it on the same worker): a longer walk, still seeded, when the
        # first reached no replay or read-back -- a broken link never reaches them
        if not (WALKED["afterpay replay"] and WALKED["afterpay read-back"]):
            longer = settings(self.settings, max_examples=150)
            run_reporting_the_model(
                lambda: run_state_machine_as_test(AfterpayLinks, settings=longer))
        assert WALKED["afterpay replay"] > 0, "no refund was replayed through ReplayRefund"
        assert WALKED["afterpay read-back"] > 0, "no refund was read back through the links"


class TestOpttyLinks(OpttyLinks.TestCase):  # type: ignore[misc,name-defined]
    # more scenarios: the order lifecycle's links share the walk with the refund's
    settings = settings(stateful_settings, max_examples=100, stateful_step_count=12)

    def runTest(self) -> None:
        WALKED.clear()
        MODEL_FAILURES.clear()
        run_reporting_the_model(super().runTest)
        assert WALKED["optty repeat"] > 0, "no refund was repeated through RepeatRefund"
        assert WALKED["optty read-back"] > 0, "no refund was read back through the links"
        assert WALKED["optty capture"] > 0, "no capture was made through the links"
        assert WALKED["optty order-capture-refund read-back"] > 0, (
            "no created, approved, captured and refunded order was read back")
