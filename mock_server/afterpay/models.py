"""Afterpay merchants, payments and the refund rules; no HTTP here."""

from __future__ import annotations

import base64
import binascii
import functools
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
    ReferenceTaken,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
)
from mock_server.core.money import Money, parse_amount
from mock_server.core.scenarios import Scenario
from mock_server.core.world import Session

PROVIDER = "afterpay"
# docs: "Don't create refunds after 120 days from the date of purchase". Decision: exactly 120
# days after `created` is still inside the limit; one millisecond more is not.
REFUND_WINDOW = timedelta(days=120)
# payment states that hold no captured money unless a scenario says otherwise
_UNCAPTURED_STATES = frozenset({"AUTH_APPROVED", "AUTH_DECLINED", "CAPTURE_DECLINED", "VOIDED"})
_DECLINED_STATES = frozenset({"AUTH_DECLINED"})
REFUND_ID_START = 10_000_000
# Decision (docs: an auth expires after 13 days; recorded US 2021 sandboxes 7 days, EU 2020 36 h,
# a regional setting): AUTH_APPROVED's `expires` is `created` + 13 days - 1 ms, as recorded
# `expires` fall a millisecond or so before the whole period
AUTH_EXPIRY = timedelta(days=13) - timedelta(milliseconds=1)

# check_seed problems (scenario authors read these)
SEED_UNKNOWN_MERCHANT = "unknown Afterpay merchant {merchant!r}"
SEED_CURRENCY_NOT_TAKEN = "merchant {merchant} does not take {currency}"
SEED_DECLINED_WITH_CAPTURE = "a declined payment (AUTH_DECLINED) cannot have captured money"
SEED_REFUNDS_ABOVE_CAPTURED = ("refunds total {refunded}, more than the {captured} captured "
                               "(nothing else is refundable)")
SEED_DUPLICATE_REFUND_ID = "refundId {refund_id} is already used by another refund"


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
    # every refundId handed out or seeded in the session: refund ids are unique (docs: "The
    # unique, permanent, Afterpay-generated Refund ID"), across payments too
    refund_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Replay:
    answer: StoredAnswer
    body_differs: bool


def fingerprint(order_id: str, request: RefundRequest) -> tuple[str | None, ...]:
    """What makes two idempotent refund requests "the same request": the payment they act on
    and the request as Afterpay reads it (so `"10.0"` and `"10.00"`, key order, whitespace and
    unknown fields do not count as a difference). The tuple itself is kept: it shares its
    strings with the stored refund, so it is smaller than a digest and free to compute."""
    return (order_id, format(request.amount, "f"), request.currency, request.request_id,
            request.merchant_reference, request.refund_merchant_reference)


class AfterpayModel:
    name = PROVIDER
    error_codes = errors.ERROR_CODE_NAMES

    def new_state(self, session: Session) -> AfterpayState:
        return AfterpayState()

    # -- seeding ----------------------------------------------------------------------------

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        """Everything apply_seed would trip over, so a scenario is applied whole or not at all.
        The parser has checked each value's form and the document on its own (captured within
        the amount, refunds within what the document says is captured, unique ids); what
        remains needs the session or the payment state's own rules."""
        section = scenario.document.get("afterpay") or {}
        state: AfterpayState = session.state(PROVIDER)
        currencies = {m.merchant_id: m.currencies for m in state.merchants.values()}
        for m in section.get("merchants") or []:
            currencies[str(m["merchantId"])] = (m["currency"], *m.get("currencies", ()))
        payments = section.get("payments") or []
        # refund ids stay unique: those of payments this scenario replaces are given up
        replaced = {str(p["id"]) for p in payments}
        taken = {e.refund_id for pid, payment in state.payments.items() if pid not in replaced
                 for e in self._entries(session, payment)}
        problems = []
        for index, p in enumerate(payments):
            where: tuple[str | int, ...] = ("afterpay", "payments", index)
            merchant_id = str(p["merchantId"])
            if merchant_id not in currencies:
                problems.append(scenario.problem(
                    (*where, "merchantId"), SEED_UNKNOWN_MERCHANT.format(merchant=merchant_id)))
            elif p.get("currency") and p["currency"] not in currencies[merchant_id]:
                problems.append(scenario.problem((*where, "currency"), SEED_CURRENCY_NOT_TAKEN
                                                 .format(merchant=merchant_id,
                                                         currency=p["currency"])))
            amount = parse_amount(p["amount"])
            captured = _seed_captured(p, amount)
            if p.get("state") in _DECLINED_STATES and captured > 0:
                problems.append(scenario.problem((*where, "state"), SEED_DECLINED_WITH_CAPTURE))
            refunds = p.get("refunds") or []
            refunded = sum((parse_amount(r["amount"]) for r in refunds), Decimal(0))
            if refunded > captured:
                problems.append(scenario.problem((*where, "refunds"), SEED_REFUNDS_ABOVE_CAPTURED
                                                 .format(refunded=f"{refunded:.2f}",
                                                         captured=f"{captured:.2f}")))
            for r_index, r in enumerate(refunds):
                if r.get("refundId") is None:
                    continue
                refund_id = str(r["refundId"])
                if refund_id in taken:
                    problems.append(scenario.problem(
                        (*where, "refunds", r_index, "refundId"),
                        SEED_DUPLICATE_REFUND_ID.format(refund_id=refund_id)))
                taken.add(refund_id)
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
        # explicit ids first, so a generated id never takes one the scenario asks for
        for p in payments:
            state.refund_ids.update(str(r["refundId"]) for r in p.get("refunds") or []
                                    if r.get("refundId") is not None)
        for p in payments:
            payment = self._payment_from_seed(session, state, p, now)
            state.payments[payment.id] = payment
            refunds = [
                RefundEntry(
                    str(r["refundId"]) if r.get("refundId") is not None
                    else self._new_refund_id(session, state),
                    parse_amount(r["amount"]),
                    parse_instant(r["refundedAt"]) if r.get("refundedAt") else payment.created,
                    {k: r[k] for k in ("requestId", "merchantReference",
                                       "refundMerchantReference") if r.get(k) is not None})
                for r in p.get("refunds") or []]
            session.ledger.open(payment.account, payment.currency, payment.captured, refunds,
                                references=[refund_reference(e.refund_id) for e in refunds])
        return {"afterpayMerchants": len(merchants), "afterpayPayments": len(payments)}

    @staticmethod
    def _entries(session: Session, payment: Payment) -> tuple[RefundEntry, ...]:
        view = session.ledger.view(payment.account)
        return view.refunds if view is not None else ()

    @staticmethod
    def _new_refund_id(session: Session, state: AfterpayState) -> str:
        """A numeric refund id (recorded: "1934419") that no refund in the session has."""
        while True:
            refund_id = str(session.ids.sequence("afterpay-refund", REFUND_ID_START))
            if refund_id not in state.refund_ids:
                state.refund_ids.add(refund_id)
                return refund_id

    def _payment_from_seed(self, session: Session, state: AfterpayState, p: dict[str, Any],
                           now: datetime) -> Payment:
        merchant = state.merchants[str(p["merchantId"])]
        amount = parse_amount(p["amount"])
        explicit_state = p.get("state")
        captured = _seed_captured(p, amount)
        if explicit_state is None:
            explicit_state = ("CAPTURED" if captured >= amount else
                              "PARTIALLY_CAPTURED" if captured > 0 else "AUTH_APPROVED")
        created = parse_instant(p["created"]) if p.get("created") else now
        currency = p.get("currency") or merchant.currencies[0]
        events = _seed_events(session, explicit_state, amount, captured, currency, created)
        return Payment(
            id=str(p["id"]), merchant_id=merchant.merchant_id,
            token=p.get("token") or f"002.{session.ids.alnum(48)}",
            currency=currency, amount=amount, captured=captured, state=explicit_state,
            created=created, merchant_reference=p.get("merchantReference"), events=events)

    # -- rules ------------------------------------------------------------------------------

    def authenticate(self, state: AfterpayState, authorization: str | None) -> Merchant:
        """Basic merchantId:secretKey; every failure is the same 401 (no hint which part)."""
        credentials = _basic_credentials(authorization) if authorization else None
        if credentials is None:
            raise errors.Unauthorized()
        merchant_id, secret = credentials
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
        # docs: idempotent only when both requestId and merchantReference are given; recorded:
        # requests with null keys each created a refund
        if request.request_id is None or request.merchant_reference is None:
            return None
        return (PROVIDER, merchant.merchant_id, request.request_id, request.merchant_reference)

    def claim(self, session: Session, key: IdempotencyKey, order_id: str,
              request: RefundRequest) -> Replay | None:
        """None when this request now holds the key; the stored answer to replay; or 409 while
        the request holding the key is still being processed (docs)."""
        held = session.ledger.claim(key, session.clock.now())
        if isinstance(held, InFlight):
            raise errors.Conflict()
        if held is None:
            return None
        return Replay(held, held.fingerprint != fingerprint(order_id, request))

    def check_refundable(self, session: Session, payment: Payment, request: RefundRequest,
                         now: datetime | None = None) -> None:
        """The business rules that need the payment, in the sandbox's order (fidelity notes);
        `now` is the session's time (read from its clock when not given)."""
        # docs: "only captured funds can be refunded"; declined, nothing captured, voided before
        # capture -> 412. Decision: a payment voided (or whose later capture was declined)
        # after a partial capture keeps that captured money refundable.
        if payment.state in _DECLINED_STATES or payment.captured <= 0:
            raise errors.PreconditionFailed()
        if request.currency != payment.currency:
            raise errors.InvalidObject(CURRENCY_MISMATCH)
        if (now or session.clock.now()) - payment.created > REFUND_WINDOW:
            raise errors.RefundTimeLimitExceeded()

    def refund(self, session: Session, payment: Payment, request: RefundRequest,
               key: IdempotencyKey | None) -> tuple[RefundEntry, bytes]:
        """The atomic step: check what is left, record the refund, keep the answer to replay."""
        now = session.clock.now()
        self.check_refundable(session, payment, request, now)
        state: AfterpayState = session.state(PROVIDER)
        view = session.ledger.view(payment.account)
        if view is None or request.amount > view.remaining:
            raise errors.InvalidAmount()  # refused before a refund id is taken
        while True:
            refund_id = self._new_refund_id(session, state)
            entry = RefundEntry(refund_id, request.amount, now, _references(request))
            body = dumps(request.refund_body(refund_id, iso_millis(now)))
            answer = None
            if key is not None:
                # Decision: only a success is kept for replay (see the fidelity notes)
                answer = StoredAnswer(201, (), body, fingerprint(payment.id, request),
                                      now + session.settings.idempotency_ttl)
            try:
                # the atomic step checks again: a concurrent refund may have taken the money
                # since, or (another process sharing the store) this refund id
                session.ledger.refund(payment.account, entry, key, answer,
                                      reference=refund_reference(refund_id))
            except ReferenceTaken:
                continue  # the id stays in refund_ids: the next one is drawn
            except RefundExceeded:
                state.refund_ids.discard(refund_id)
                raise errors.InvalidAmount() from None
            return entry, body

    def payment_body(self, session: Session, payment: Payment) -> dict[str, Any]:
        """GET /v2/payments/{orderId}, in the recorded key order."""
        view = self.account(session, payment)
        currency = payment.currency
        # recorded (solidus_afterpay immediate/capture/declined_payment): a declined immediate
        # capture is status DECLINED with the whole amount still open to capture
        capture_declined = payment.state == "CAPTURE_DECLINED" and payment.captured <= 0
        open_to_capture = (payment.amount - payment.captured
                           if payment.state in ("AUTH_APPROVED", "PARTIALLY_CAPTURED")
                           or capture_declined else Decimal(0))
        declined = payment.state in _DECLINED_STATES or capture_declined
        return {
            "id": payment.id,
            "token": payment.token,
            "status": "DECLINED" if declined else "APPROVED",
            "created": iso_millis(payment.created),
            "originalAmount": _money(payment.amount, currency),
            "openToCaptureAmount": _money(open_to_capture, currency),
            "paymentState": payment.state,
            "merchantReference": payment.merchant_reference,
            "refunds": [_refund_summary(e, currency) for e in view.refunds if not e.reversed],
            "events": payment.events,
            # sandbox extension: what is left to refund (captured minus refunded)
            "openToRefundAmount": _money(view.remaining, currency),
        }

    def account(self, session: Session, payment: Payment) -> AccountView:
        view = session.ledger.view(payment.account)
        assert view is not None
        return view

    def dashboard(self, session: Session) -> list[dict[str, Any]]:
        """The session's payments as the dashboard lists them (admin/ui.py): money as text."""
        state: AfterpayState = session.state(PROVIDER)
        rows: list[dict[str, Any]] = []
        for payment in list(state.payments.values()):
            view = self.account(session, payment)
            currency = payment.currency
            rows.append({
                "provider": PROVIDER, "kind": "payment", "id": payment.id,
                "merchant": payment.merchant_id, "state": payment.state, "currency": currency,
                "amount": Money(payment.amount, currency).text(),
                "captured": Money(view.captured, currency).text(),
                "refunded": Money(view.refunded, currency).text(),
                "left": Money(view.remaining, currency).text(),
                "refunds": [{"id": e.refund_id, "at": iso_millis(e.at),
                             "amount": Money(e.amount, currency).text(),
                             "reference": e.details.get("merchantReference")
                             or e.details.get("requestId") or "",
                             "status": "REVERSED" if e.reversed else "REFUNDED"}
                            for e in view.refunds],
            })
        return rows


@functools.lru_cache(maxsize=1024)
def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(merchantId, secretKey) of a Basic header, or None; a client sends the same header on
    every call, so it is decoded once."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    merchant_id, colon, secret = decoded.partition(":")
    return (merchant_id, secret) if colon else None


def _seed_captured(p: dict[str, Any], amount: Decimal) -> Decimal:
    if "captured" in p:
        return parse_amount(p["captured"])
    if p.get("state") in _UNCAPTURED_STATES:
        return Decimal(0)
    return amount


def _event(session: Session, kind: str, at: datetime, amount: Decimal, currency: str,
           reference: str | None = None) -> dict[str, Any]:
    """A payment event in the recorded key order; only AUTH_APPROVED has an `expires`."""
    return {"id": session.ids.ksuid(at), "created": iso_millis(at),
            "expires": iso_millis(at + AUTH_EXPIRY) if kind == "AUTH_APPROVED" else None,
            "type": kind, "amount": {"amount": f"{amount:.2f}", "currency": currency},
            "paymentEventMerchantReference": reference}


def _seed_events(session: Session, state: str, amount: Decimal, captured: Decimal,
                 currency: str, created: datetime) -> list[dict[str, Any]]:
    """The events a seeded payment shows, as the recorded flows left them.

    recorded: an immediate capture is one CAPTURED event (solidus_afterpay
    immediate/capture/valid), a declined one one CAPTURE_DECLINED (…/declined_payment); a
    deferred payment is AUTH_APPROVED, then each CAPTURED with paymentEventMerchantReference ""
    (afterpay-ruby _list_payments, _get_payment_by_order_id). Decision: a seed cannot say which
    flow a fully captured payment took, so CAPTURED in full is the immediate flow; anything
    captured in part is the deferred one.
    """
    if state in _DECLINED_STATES:
        return [_event(session, "AUTH_DECLINED", created, amount, currency)]
    if captured >= amount and state == "CAPTURED":
        return [_event(session, "CAPTURED", created, captured, currency)]
    if state == "CAPTURE_DECLINED" and captured <= 0:
        return [_event(session, "CAPTURE_DECLINED", created, amount, currency)]
    events = [_event(session, "AUTH_APPROVED", created, amount, currency)]
    if captured > 0:
        events.append(_event(session, "CAPTURED", created, captured, currency, ""))
    return events


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": Money(amount, currency).text(), "currency": currency}


def refund_reference(refund_id: str) -> str:
    """What the ledger keeps unique for an Afterpay refund id (unique across the session's
    payments): checked and taken in the same atomic step that records the refund."""
    return f"{PROVIDER}:refundId:{refund_id}"


def _references(request: RefundRequest) -> dict[str, str]:
    refs = {"requestId": request.request_id, "merchantReference": request.merchant_reference,
            "refundMerchantReference": request.refund_merchant_reference,
            "currency": request.currency}
    return {k: v for k, v in refs.items() if v is not None}


def _refund_summary(entry: RefundEntry, currency: str) -> dict[str, Any]:
    """A refund as the payment lists it: the Refund object the 201 answered (recorded:
    requestId, amount, merchantReference, refundId, refundedAt, refundMerchantReference, null
    references left out), whatever the request's field order was."""
    details = entry.details
    body: dict[str, Any] = {}
    if details.get("requestId") is not None:
        body["requestId"] = details["requestId"]
    body["amount"] = _money(entry.amount, details.get("currency", currency))
    if details.get("merchantReference") is not None:
        body["merchantReference"] = details["merchantReference"]
    body["refundId"] = entry.refund_id
    body["refundedAt"] = iso_millis(entry.at)
    if details.get("refundMerchantReference") is not None:
        body["refundMerchantReference"] = details["refundMerchantReference"]
    return body
