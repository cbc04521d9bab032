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
from mock_server.core.scenarios import Scenario, parse_duration
from mock_server.core.world import Session

PROVIDER = "afterpay"
# docs: "Don't create refunds after 120 days from the date of purchase". Decision: exactly 120
# days after `created` is still inside the limit; one millisecond more is not.
REFUND_WINDOW = timedelta(days=120)
# payment states that hold no captured money unless a scenario says otherwise
_UNCAPTURED_STATES = frozenset({"AUTH_APPROVED", "AUTH_DECLINED", "CAPTURE_DECLINED", "VOIDED"})
_DECLINED_STATES = frozenset({"AUTH_DECLINED"})
# the states an auth is still open in (capture and void possible, expiry pending)
_OPEN_STATES = frozenset({"AUTH_APPROVED", "PARTIALLY_CAPTURED"})
_ONE_MS = timedelta(milliseconds=1)
REFUND_ID_START = 10_000_000
# Decision (docs: an auth expires after 13 days; recorded US 2021 sandboxes 7 days, EU 2020 36 h,
# a regional setting): AUTH_APPROVED's `expires` is `created` + 13 days - 1 ms, as recorded
# `expires` fall a millisecond or so before the whole period
AUTH_EXPIRY = timedelta(days=13) - _ONE_MS

# check_seed problems (scenario authors read these)
SEED_UNKNOWN_MERCHANT = "unknown Afterpay merchant {merchant!r}"
SEED_CURRENCY_NOT_TAKEN = "merchant {merchant} does not take {currency}"
SEED_DECLINED_WITH_CAPTURE = "a declined payment (AUTH_DECLINED) cannot have captured money"
SEED_REFUNDS_ABOVE_CAPTURED = ("refunds total {refunded}, more than the {captured} captured "
                               "(nothing else is refundable)")
SEED_VOIDS_ABOVE_OPEN = ("voids total {voided} and {captured} is captured: more than the "
                         "amount {amount}")
SEED_DUPLICATE_REFUND_ID = "refundId {refund_id} is already used by another refund"


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    secret_key: str
    currencies: tuple[str, ...]  # the first is the account's own currency
    # the lifecycle's merchant options (scenario merchant keys; reference afterpay-lifecycle.md)
    options: MerchantOptions = field(default_factory=lambda: MerchantOptions())


# the portal's region segment per merchant currency (the real portal: /us/, /au/, /uk/ ...)
_COUNTRY_OF_CURRENCY = {"AUD": "au", "NZD": "nz", "USD": "us", "CAD": "ca", "GBP": "uk",
                        "EUR": "es"}


@dataclass(frozen=True, slots=True)
class MerchantOptions:
    # Decision: the recorded configuration (1.00 / 1000.00), also checked at checkout
    minimum_amount: Decimal = Decimal("1.00")
    maximum_amount: Decimal = Decimal("1000.00")
    # Decision: the current docs' 13 days (the recordings show 7 days US, 36 h EU)
    auth_expiry: timedelta = timedelta(days=13)
    checkout_ttl: timedelta = timedelta(hours=3)  # recorded
    # approved | declined: checkouts are confirmed at creation (no shopper step); cancelled:
    # they are cancelled at creation
    auto_confirm: str | None = None
    country: str | None = None

    def portal_country(self, currency: str) -> str:
        return (self.country or _COUNTRY_OF_CURRENCY.get(currency, "au")).lower()


@dataclass(slots=True)
class VoidEntry:
    """A void as refunds[] lists it: its own numeric refundId in the void's answer, the VOIDED
    event's id and time in reads when it had no requestId (recorded; fidelity notes)."""

    refund_id: str
    amount: Decimal
    at: datetime
    event_id: str
    request_id: str | None = None
    # how many refunds the payment had when it was voided: orders a void among refunds of the
    # same millisecond (a frozen session clock)
    after_refunds: int = 0


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
    voids: list[VoidEntry] = field(default_factory=list)
    # AUTH_APPROVED's `expires` (deferred flow); `expired` once the session clock passed it
    auth_expires: datetime | None = None
    expired: bool = False
    # the checkout's details (a payment made from a checkout); None for most seeded payments
    order_details: dict[str, Any] | None = None

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
    # the lifecycle: checkouts by token, and the payment each used token became
    checkouts: dict[str, Any] = field(default_factory=dict)
    payment_of_token: dict[str, str] = field(default_factory=dict)


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
            voided = _seed_voided(p, amount, captured)
            if p.get("state") not in _DECLINED_STATES and captured + voided > amount:
                problems.append(scenario.problem((*where, "voids"), SEED_VOIDS_ABOVE_OPEN.format(
                    voided=f"{voided:.2f}", captured=f"{captured:.2f}", amount=f"{amount:.2f}")))
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
                tuple(dict.fromkeys([m["currency"], *m.get("currencies", ())])),
                _merchant_options(m))
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
            authorised, voided = _seed_authorised(p, payment)
            session.ledger.open(payment.account, payment.currency, payment.captured, refunds,
                                authorised=authorised, voided=voided,
                                references=[refund_reference(e.refund_id) for e in refunds])
            if payment.token:
                state.payment_of_token[payment.token] = payment.id
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
            voided = _seed_voided(p, amount, captured)
            explicit_state = ("CAPTURED" if captured >= amount or (
                captured > 0 and captured + voided >= amount) else
                "VOIDED" if voided >= amount else
                "PARTIALLY_CAPTURED" if captured > 0 else "AUTH_APPROVED")
        created = parse_instant(p["created"]) if p.get("created") else now
        currency = p.get("currency") or merchant.currencies[0]
        options = merchant.options
        if p.get("authExpires"):
            auth_expires: datetime | None = parse_instant(p["authExpires"])
        elif explicit_state in _OPEN_STATES or p.get("expired"):
            # as a real auth: the event's time + the merchant's period - 1 ms
            auth_expires = created + options.auth_expiry - _ONE_MS
        else:
            auth_expires = None
        voids = [VoidEntry(str(v["refundId"]) if v.get("refundId") is not None
                           else self._new_refund_id(session, state),
                           parse_amount(v["amount"]),
                           parse_instant(v["voidedAt"]) if v.get("voidedAt") else created,
                           str(v.get("eventId") or ""), v.get("requestId"))
                 for v in p.get("voids") or []]
        for void in voids:
            if not void.event_id:
                void.event_id = session.ids.ksuid(void.at)
        if p.get("events") is not None:
            events = [_seedevent(session, e, created, currency) for e in p["events"]]
        else:
            events = _seed_events(session, explicit_state, amount, captured, currency, created,
                                  auth_expires)
            events.extend(event(session, "VOIDED", void.at, void.amount, currency,
                                 event_id=void.event_id) for void in voids)
            if p.get("expired") and auth_expires is not None:
                left = amount - captured - sum((v.amount for v in voids), Decimal(0))
                events.append(event(session, "EXPIRED", auth_expires, left, currency))
        return Payment(
            id=str(p["id"]), merchant_id=merchant.merchant_id,
            token=p.get("token") or f"002.{session.ids.alnum(48)}",
            currency=currency, amount=amount, captured=captured, state=explicit_state,
            created=created, merchant_reference=p.get("merchantReference"), events=events,
            voids=voids, auth_expires=auth_expires, expired=bool(p.get("expired")),
            order_details=p.get("orderDetails"))

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

    def payment_body(self, session: Session, payment: Payment, *, read: bool = True
                     ) -> dict[str, Any]:
        """The Payment object, in the recorded key order (id, token, status, created,
        originalAmount, openToCaptureAmount, paymentState, merchantReference, refunds,
        orderDetails, events). `read`: a GET (payment, by token, list) rather than the answer
        of the call that changed it -- reads show a requestId-less void by its VOIDED event's
        id and time, and items with `categories` (recorded)."""
        view = self.account(session, payment)
        currency = payment.currency
        # recorded (solidus_afterpay immediate/capture/declined_payment, deferred/authorize/
        # declined_payment): a declined auth or immediate capture is status DECLINED with the
        # whole amount still open to capture
        declined = payment.state in _DECLINED_STATES or (payment.state == "CAPTURE_DECLINED"
                                                         and payment.captured <= 0)
        if declined:
            open_to_capture = payment.amount
        else:
            open_to_capture = max(view.open_to_capture, Decimal(0))
        refunds = [e for e in view.refunds if not e.reversed]
        if payment.voids:
            # oldest first (recorded); at the same instant, in the order they were made
            keyed = [((e.at, index, 1), e) for index, e in enumerate(refunds)]
            keyed += [((v.at, v.after_refunds, 0), _void_entry(v, read)) for v in payment.voids]
            refunds = [e for _key, e in sorted(keyed, key=lambda pair: pair[0])]
        body: dict[str, Any] = {
            "id": payment.id,
            "token": payment.token,
            "status": "DECLINED" if declined else "APPROVED",
            "created": iso_millis(payment.created),
            "originalAmount": _money(payment.amount, currency),
            "openToCaptureAmount": _money(open_to_capture, currency),
            "paymentState": payment.state,
            "merchantReference": payment.merchant_reference,
            "refunds": [_refund_summary(e, currency) for e in refunds],
        }
        if payment.order_details is not None:
            body["orderDetails"] = (_read_order_details(payment.order_details) if read
                                    else payment.order_details)
        body["events"] = payment.events
        # sandbox extension: what is left to refund (captured minus refunded)
        body["openToRefundAmount"] = _money(view.remaining, currency)
        return body

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
    if p.get("state") in _UNCAPTURED_STATES or (p.get("expired") and not p.get("state")):
        return Decimal(0)
    return amount


def event(session: Session, kind: str, at: datetime, amount: Decimal, currency: str,
          reference: str | None = None, *, expires: datetime | None = None,
          event_id: str | None = None) -> dict[str, Any]:
    """A payment event in the recorded key order; only AUTH_APPROVED has an `expires` (given,
    or the default period's); the id a KSUID of the event's second."""
    if kind == "AUTH_APPROVED" and expires is None:
        expires = at + AUTH_EXPIRY
    return {"id": event_id or session.ids.ksuid(at), "created": iso_millis(at),
            "expires": iso_millis(expires) if kind == "AUTH_APPROVED" and expires else None,
            "type": kind, "amount": {"amount": f"{amount:.2f}", "currency": currency},
            "paymentEventMerchantReference": reference}


def _seed_events(session: Session, state: str, amount: Decimal, captured: Decimal,
                 currency: str, created: datetime, auth_expires: datetime | None = None
                 ) -> list[dict[str, Any]]:
    """The events a seeded payment shows, as the recorded flows left them.

    recorded: an immediate capture is one CAPTURED event (solidus_afterpay
    immediate/capture/valid), a declined one one CAPTURE_DECLINED (…/declined_payment); a
    deferred payment is AUTH_APPROVED, then each CAPTURED with paymentEventMerchantReference ""
    (afterpay-ruby _list_payments, _get_payment_by_order_id). Decision: a seed cannot say which
    flow a fully captured payment took, so CAPTURED in full is the immediate flow; anything
    captured in part is the deferred one.
    """
    if state in _DECLINED_STATES:
        return [event(session, "AUTH_DECLINED", created, amount, currency)]
    if captured >= amount and state == "CAPTURED":
        return [event(session, "CAPTURED", created, captured, currency)]
    if state == "CAPTURE_DECLINED" and captured <= 0:
        return [event(session, "CAPTURE_DECLINED", created, amount, currency)]
    events = [event(session, "AUTH_APPROVED", created, amount, currency,
                     expires=auth_expires)]
    if captured > 0:
        events.append(event(session, "CAPTURED", created, captured, currency, ""))
    return events


def _merchant_options(m: dict[str, Any]) -> MerchantOptions:
    defaults = MerchantOptions()
    return MerchantOptions(
        minimum_amount=parse_amount(m["minimumAmount"]) if m.get("minimumAmount") is not None
        else defaults.minimum_amount,
        maximum_amount=parse_amount(m["maximumAmount"]) if m.get("maximumAmount") is not None
        else defaults.maximum_amount,
        auth_expiry=parse_duration(m["authExpiry"]) if m.get("authExpiry")
        else defaults.auth_expiry,
        checkout_ttl=parse_duration(m["checkoutTtl"]) if m.get("checkoutTtl")
        else defaults.checkout_ttl,
        auto_confirm=m.get("autoConfirm") or None,
        country=m.get("country"))


def _seed_voided(p: dict[str, Any], amount: Decimal, captured: Decimal) -> Decimal:
    """What a seeded payment gave up without capture: its voids, or (none listed) what a
    VOIDED or fully CAPTURED payment left uncaptured."""
    if p.get("voids"):
        return sum((parse_amount(v["amount"]) for v in p["voids"]), Decimal(0))
    if p.get("state") in ("VOIDED", "CAPTURED") or p.get("expired"):
        return amount - captured
    return Decimal(0)


def _seed_authorised(p: dict[str, Any], payment: Payment) -> tuple[Decimal, Decimal]:
    """(authorised, voided) for the ledger: a declined auth authorised nothing; a declined
    capture leaves nothing more to capture."""
    if payment.state in _DECLINED_STATES:
        return Decimal(0), Decimal(0)
    if payment.state == "CAPTURE_DECLINED":
        return payment.captured, Decimal(0)
    return payment.amount, _seed_voided(p, payment.amount, payment.captured)


def _seedevent(session: Session, e: dict[str, Any], created: datetime,
                currency: str) -> dict[str, Any]:
    """An event a scenario lists, in the recorded key order; `amount` a money string."""
    amount = e.get("amount")
    at = parse_instant(e["created"]) if e.get("created") else created
    return {"id": str(e.get("id") or session.ids.ksuid(at)), "created": iso_millis(at),
            "expires": iso_millis(parse_instant(e["expires"])) if e.get("expires") else None,
            "type": e["type"],
            "amount": None if amount is None else
            {"amount": f"{parse_amount(amount):.2f}", "currency": e.get("currency", currency)},
            "paymentEventMerchantReference": e.get("paymentEventMerchantReference")}


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


def _void_entry(void: VoidEntry, read: bool) -> RefundEntry:
    """A void as a refunds[] entry: `{[requestId], amount, refundId, refundedAt}` (recorded)."""
    details = {"requestId": void.request_id} if void.request_id is not None else {}
    if read and void.request_id is None:
        return RefundEntry(void.event_id, void.amount, void.at, details)
    return RefundEntry(void.refund_id, void.amount, void.at, details)


def _read_order_details(details: dict[str, Any]) -> dict[str, Any]:
    """Reads add `"categories" : [ ]` to items sent without them (recorded)."""
    items = details.get("items")
    if not items or all("categories" in item for item in items):
        return details
    out = dict(details)
    out["items"] = [item if "categories" in item else {**item, "categories": []}
                    for item in items]
    return out


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
