"""Afterpay merchants, payments and the refund rules; no HTTP here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mock_server.afterpay import errors
from mock_server.afterpay.jackson import dumps
from mock_server.afterpay.requests import CURRENCY_MISMATCH, RefundRequest
from mock_server.core.clock import iso_millis, parse_instant
from mock_server.core.ledger import (
    AccountKey,
    AccountView,
    IdempotencyKey,
    InFlight,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
)
from mock_server.core.money import Money, parse_amount
from mock_server.core.scenarios import Scenario
from mock_server.core.world import Session

PROVIDER = "afterpay"
REFUND_WINDOW = timedelta(days=120)  # docs: "Don't create refunds after 120 days"
REFUNDABLE_STATES = frozenset({"CAPTURED", "PARTIALLY_CAPTURED"})
# payment states that hold no captured money unless a scenario says otherwise
_UNCAPTURED_STATES = frozenset({"AUTH_APPROVED", "AUTH_DECLINED", "CAPTURE_DECLINED", "VOIDED"})
_DECLINED_STATES = frozenset({"AUTH_DECLINED"})


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    secret_key: str
    currencies: tuple[str, ...]  # the first is the account's own currency


@dataclass(slots=True)
class Payment:
    id: str
    merchant_id: str
    token: str
    currency: str
    amount: Decimal
    captured: Decimal
    state: str
    created: datetime
    merchant_reference: str | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def account(self) -> AccountKey:
        return (PROVIDER, self.merchant_id, self.id)


@dataclass(slots=True)
class AfterpayState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Replay:
    answer: StoredAnswer
    body_differs: bool


def fingerprint(request: RefundRequest) -> str:
    """What makes two refund requests "the same body" for idempotency (not whitespace).

    The fields the refund echoes, in a fixed order; repr keeps None apart from "None"."""
    canonical = repr((format(request.amount, "f"), request.currency, request.request_id,
                      request.merchant_reference, request.refund_merchant_reference))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AfterpayModel:
    name = PROVIDER
    error_codes = errors.ERROR_CODE_NAMES

    def new_state(self, session: Session) -> AfterpayState:
        return AfterpayState()

    # -- seeding ----------------------------------------------------------------------------

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        section = scenario.document.get("afterpay") or {}
        state: AfterpayState = session.state(PROVIDER)
        known = set(state.merchants) | {str(m["merchantId"]) for m in
                                        section.get("merchants") or []}
        currencies = {m.merchant_id: m.currencies for m in state.merchants.values()}
        for m in section.get("merchants") or []:
            currencies[str(m["merchantId"])] = (m["currency"], *m.get("currencies", ()))
        problems = []
        for index, p in enumerate(section.get("payments") or []):
            where = ("afterpay", "payments", index)
            if p["merchantId"] not in known:
                problems.append(scenario.problem((*where, "merchantId"),
                                                 f"unknown Afterpay merchant {p['merchantId']!r}"))
            elif p.get("currency") and p["currency"] not in currencies[p["merchantId"]]:
                problems.append(scenario.problem(
                    (*where, "currency"),
                    f"merchant {p['merchantId']} does not take {p['currency']}"))
        return problems

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        section = scenario.document.get("afterpay") or {}
        state: AfterpayState = session.state(PROVIDER)
        merchants = section.get("merchants") or []
        for m in merchants:
            state.merchants[str(m["merchantId"])] = Merchant(
                str(m["merchantId"]), m["secretKey"],
                tuple(dict.fromkeys([m["currency"], *m.get("currencies", ())])))
        payments = section.get("payments") or []
        now = session.clock.now()
        for p in payments:
            payment = self._payment_from_seed(session, state, p, now)
            state.payments[payment.id] = payment
            refunds = [
                RefundEntry(
                    str(r.get("refundId") or session.ids.sequence("afterpay-refund", 10_000_000)),
                    parse_amount(r["amount"]),
                    parse_instant(r["refundedAt"]) if r.get("refundedAt") else payment.created,
                    {k: r[k] for k in ("requestId", "merchantReference",
                                       "refundMerchantReference") if r.get(k) is not None})
                for r in p.get("refunds") or []]
            session.ledger.open(payment.account, payment.currency, payment.captured, refunds)
        return {"afterpayMerchants": len(merchants), "afterpayPayments": len(payments)}

    def _payment_from_seed(self, session: Session, state: AfterpayState, p: dict[str, Any],
                           now: datetime) -> Payment:
        merchant = state.merchants[p["merchantId"]]
        amount = parse_amount(p["amount"])
        explicit_state = p.get("state")
        if "captured" in p:
            captured = parse_amount(p["captured"])
        elif explicit_state in _UNCAPTURED_STATES:
            captured = Decimal(0)
        else:
            captured = amount
        if explicit_state is None:
            explicit_state = ("CAPTURED" if captured >= amount else
                              "PARTIALLY_CAPTURED" if captured > 0 else "AUTH_APPROVED")
        created = parse_instant(p["created"]) if p.get("created") else now
        currency = p.get("currency") or merchant.currencies[0]
        events = [{"id": session.ids.alnum(26), "created": iso_millis(created),
                   "expires": None, "type": "AUTH_DECLINED" if explicit_state in
                   _DECLINED_STATES else "AUTH_APPROVED",
                   "amount": {"amount": f"{amount:.2f}", "currency": currency}}]
        if captured > 0:
            events.append({"id": session.ids.alnum(26), "created": iso_millis(created),
                           "expires": None, "type": "CAPTURED",
                           "amount": {"amount": f"{captured:.2f}", "currency": currency}})
        return Payment(
            id=str(p["id"]), merchant_id=merchant.merchant_id,
            token=p.get("token") or f"{session.ids.hex(8)}-{session.ids.alnum(8)}",
            currency=currency, amount=amount, captured=captured, state=explicit_state,
            created=created, merchant_reference=p.get("merchantReference"), events=events)

    # -- rules ------------------------------------------------------------------------------

    def authenticate(self, state: AfterpayState, authorization: str | None) -> Merchant:
        """Basic merchantId:secretKey; every failure is the same 401 (no hint which part)."""
        if not authorization:
            raise errors.Unauthorized()
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise errors.Unauthorized()
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise errors.Unauthorized() from None
        merchant_id, colon, secret = decoded.partition(":")
        if not colon:
            raise errors.Unauthorized()
        merchant = state.merchants.get(merchant_id)
        # compare even for an unknown merchant, so timing does not tell which ids exist
        expected = merchant.secret_key if merchant else "\0" * max(len(secret), 1)
        if not hmac.compare_digest(secret.encode(), expected.encode()) or merchant is None:
            raise errors.Unauthorized()
        return merchant

    def payment(self, state: AfterpayState, merchant: Merchant, order_id: str) -> Payment:
        payment = state.payments.get(order_id)
        # another merchant's payment is indistinguishable from one that does not exist
        if payment is None or payment.merchant_id != merchant.merchant_id:
            raise errors.NotFound()
        return payment

    def idempotency_key(self, merchant: Merchant, request: RefundRequest
                        ) -> IdempotencyKey | None:
        # docs: idempotent only when both requestId and merchantReference are given
        if request.request_id is None or request.merchant_reference is None:
            return None
        return (PROVIDER, merchant.merchant_id, request.request_id, request.merchant_reference)

    def claim(self, session: Session, key: IdempotencyKey, request: RefundRequest
              ) -> Replay | None:
        held = session.ledger.claim(key, session.clock.now())
        if isinstance(held, InFlight):
            raise errors.Conflict()
        if held is None:
            return None
        return Replay(held, held.fingerprint != fingerprint(request))

    def check_refundable(self, session: Session, payment: Payment, request: RefundRequest) -> None:
        if payment.state not in REFUNDABLE_STATES or payment.captured <= 0:
            raise errors.PreconditionFailed()
        if request.currency != payment.currency:
            raise errors.InvalidObject(CURRENCY_MISMATCH)
        if session.clock.now() - payment.created > REFUND_WINDOW:
            raise errors.RefundTimeLimitExceeded()

    def refund(self, session: Session, payment: Payment, request: RefundRequest,
               key: IdempotencyKey | None) -> tuple[RefundEntry, bytes]:
        """The atomic step: check what is left, record the refund, keep the answer to replay."""
        self.check_refundable(session, payment, request)
        now = session.clock.now()
        body: bytes = b""

        def build(_left: Decimal) -> tuple[RefundEntry, StoredAnswer | None]:
            nonlocal body
            refund_id = str(session.ids.sequence("afterpay-refund", 10_000_000))
            entry = RefundEntry(refund_id, request.amount, now, _references(request))
            body = dumps(request.refund_body(refund_id, iso_millis(now)))
            answer = None
            if key is not None:
                answer = StoredAnswer(201, (), body, fingerprint(request),
                                      now + session.settings.idempotency_ttl)
            return entry, answer

        try:
            entry = session.ledger.refund(payment.account, request.amount, build, key)
        except RefundExceeded:
            raise errors.InvalidAmount() from None
        return entry, body

    def payment_body(self, session: Session, payment: Payment) -> dict[str, Any]:
        view = session.ledger.view(payment.account)
        assert view is not None
        currency = payment.currency
        open_to_capture = (payment.amount - payment.captured
                           if payment.state in ("AUTH_APPROVED", "PARTIALLY_CAPTURED")
                           else Decimal(0))
        return {
            "id": payment.id,
            "token": payment.token,
            "status": "DECLINED" if payment.state in _DECLINED_STATES else "APPROVED",
            "created": iso_millis(payment.created),
            "originalAmount": _money(payment.amount, currency),
            "openToCaptureAmount": _money(open_to_capture, currency),
            "paymentState": payment.state,
            "merchantReference": payment.merchant_reference,
            "refunds": [_refund_summary(e, currency) for e in view.refunds],
            "events": payment.events,
            # sandbox extension: what is left to refund (captured minus refunded)
            "openToRefundAmount": _money(view.remaining, currency),
        }

    def account(self, session: Session, payment: Payment) -> AccountView:
        view = session.ledger.view(payment.account)
        assert view is not None
        return view


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": Money(amount, currency).text(), "currency": currency}


def _references(request: RefundRequest) -> dict[str, str]:
    refs = {"requestId": request.request_id, "merchantReference": request.merchant_reference,
            "refundMerchantReference": request.refund_merchant_reference,
            "currency": request.currency}
    return {k: v for k, v in refs.items() if v is not None}


def _refund_summary(entry: RefundEntry, currency: str) -> dict[str, Any]:
    details = entry.details
    body: dict[str, Any] = {
        "amount": _money(entry.amount, details.get("currency", currency)),
        "merchantReference": details.get("merchantReference"),
        "refundId": entry.refund_id,
        "refundMerchantReference": details.get("refundMerchantReference"),
        "refundedAt": iso_millis(entry.at),
        "requestId": details.get("requestId"),
    }
    return body
