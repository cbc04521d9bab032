"""The order lifecycle (reference/optty-lifecycle.md): create, the shopper's outcome, capture,
void, and the transitions time makes (a PENDING order's final status, an abandoned order's
expiry). The money moves only through the ledger's atomic steps; no HTTP here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from mock_server.core.clock import iso_millis
from mock_server.core.ledger import CaptureExceeded, InFlight, StoredAnswer
from mock_server.core.world import DEFAULT_SESSION, Session
from mock_server.optty import errors
from mock_server.optty.models import (
    CAPTURE_DEFERRED,
    FINAL_STATUSES,
    PROVIDER,
    STATUS_CANCELLED,
    STATUS_DECLINED,
    STATUS_ERROR,
    STATUS_INITIATED,
    STATUS_PENDING,
    STATUS_SUCCESSFUL,
    Merchant,
    OpttyModel,
    OpttyState,
    Order,
    ReferenceBusy,
    capture_record,
    capture_status,
    void_record,
)
from mock_server.optty.jsonparse import stringify
from mock_server.optty.order_dtos import CreateOrder, Movement, missing_fields
from mock_server.optty.webhooks import Notification

OUTCOMES = (STATUS_SUCCESSFUL, STATUS_DECLINED, STATUS_CANCELLED, STATUS_ERROR, STATUS_PENDING)
# statuses that time can still change (looked at on every read of the order; cheap)
MOVING = frozenset({STATUS_INITIATED, STATUS_PENDING})
PAYMENT_OPTION = "buy now pay later"  # docs:/api-references/create-order's example
PORTAL_PREFIX = "/__portal/optty"

CAPTURE = "captureReference"
VOID = "voidReference"

# the order notifications (reference/optty-lifecycle.md, Notifications; Decision: when and what)
EVENT_STATUS_UPDATE = "ORDER_STATUS_UPDATE"
EVENT_ASYNC_CALLBACK = "ORDER_ASYNC_CALLBACK"

# Business messages (Decisions, reference/optty-lifecycle.md), worded like the refund ones
MSG_ORDER_EXISTS = "Order reference already exists"
MSG_NOT_AVAILABLE = "Payment method {provider} is not available for {currency}"
MSG_AMOUNT_RANGE = "Order amount must be between {low} and {high} for {provider}"
MSG_AMOUNT_MIN = "Order amount must be at least {low} for {provider}"
MSG_NOT_SUPPORTED = "Not Supported"
MSG_CAPTURE_EXISTS = "Capture reference already exists"
MSG_VOID_EXISTS = "Void reference already exists"
MSG_NOT_CAPTURABLE = "Order is not eligible for capture"
MSG_NOT_VOIDABLE = "Order is not eligible for void"
MSG_CAPTURE_ZERO = "Capture amount must be greater than 0"
MSG_PARTIAL_CAPTURE = "Partial capture is not supported for {provider}"
MSG_PARTIAL_VOID = "Partial void is not supported for {provider}"
MSG_OVER_CAPTURE = "You can only capture amount up to {currency} {amount}"
MSG_OVER_VOID = "You can only void amount up to {currency} {amount}"
# the reasons the sandbox writes when the outcome gives none (Decision: undocumented texts)
REASON_DECLINED = "Payment declined by {provider}"
REASON_ERROR = "Payment failed at {provider}"

WARN_UNADDRESSABLE = (
    "orderReference {reference!r} contains {char!r}: the calls that name the order in their path "
    "(GET /orders/{{orderReference}}, capture, void, refund) cannot reach it")
WARN_NO_REDIRECT = (
    "merchant {merchant} has no redirectUrl and the order no dynamicRedirectUrl: the shopper "
    "cannot be sent back (set redirectUrl in the scenario's optty.merchants)")


class OutcomeRefused(Exception):
    """The shopper's step cannot change this order any more (it is final)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the order is already {status}")
        self.status = status


def js_number(amount: Decimal) -> int | float:
    """An amount as the JSON number JavaScript would write (100, 24.98)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def money_text(amount: Decimal) -> str:
    return errors._two_places(amount)


def redirect_hash(secret: str, status: str, reference: str) -> str:
    """Optty's redirect signature as its own plugin checks it: lowercase hex of
    hash_hmac('sha512', status . '|' . reference, hash_secret)."""
    return hmac.new(secret.encode("utf-8", "surrogatepass"),
                    f"{status}|{reference}".encode("utf-8", "surrogatepass"),
                    hashlib.sha512).hexdigest()


def merchant_redirect(merchant: Merchant, order: Order, status: str) -> str | None:
    """Where the shopper goes back to: the order's dynamicRedirectUrl or the merchant's default,
    with hash, reference, status and providerReference (the docs' order) after any query the URL
    already has (the plugin's `?wc-api=optty_gateway`)."""
    base = order.redirect_url or merchant.redirect_url
    if not base:
        return None
    query = urlencode([("hash", redirect_hash(merchant.payment_secret, status, order.reference)),
                       ("reference", order.reference), ("status", status),
                       ("providerReference", order.bnpl_order_id)])
    parts = urlsplit(base)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def portal_url(base: str, session: Session, order: Order) -> str:
    """`<public base>[/sessions/<s>]/__portal/optty/<bnplProvider>/<orderToken>`: the session in
    the path, because a browser sends no X-Sandbox-Session header."""
    prefix = "" if session.name == DEFAULT_SESSION else f"/sessions/{quote(session.name)}"
    return (f"{base.rstrip('/')}{prefix}{PORTAL_PREFIX}/{quote(order.provider, safe='')}/"
            f"{quote(order.order_token, safe='')}")


@dataclass(slots=True)
class MovementClaim:
    """A capture or void reference held by a request between its checks and its record."""

    key: tuple[Hashable, ...]
    done: bool = False


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    status: str
    redirect_url: str | None
    warnings: tuple[str, ...]


def notification_data(session: Session, order: Order) -> dict[str, Any]:
    """The `data` of an order notification, in the reference's order; amount as text like the
    GET answer's, `token` only once an approval of a getToken order issued one."""
    view = session.ledger.view(order.account)
    data: dict[str, Any] = {
        "orderReference": order.reference,
        "merchantReference": order.reference,
        "status": order.status,
        "transactionId": order.transaction_reference,
        "bnplOrderId": order.bnpl_order_id,
        "provider": order.provider,
        "amount": f"{order.amount:.2f}",
        "currency": order.currency,
        "captureStatus": capture_status(view) if view is not None else "NOT_CAPTURED",
        "updatedAt": iso_millis(order.updated),
    }
    if order.get_token and order.payer_token is not None:
        data["token"] = order.payer_token
    return data


def lifecycle_key(merchant_id: str, kind: str, reference: str) -> tuple[Hashable, ...]:
    """The ledger's idempotency key that keeps a capture or void reference unique per merchant."""
    return (PROVIDER, merchant_id, kind, reference)


class OrderLifecycle:
    def __init__(self, model: OpttyModel) -> None:
        self.model = model
        # wakes the webhook dispatcher when a notification is queued (set by the handlers)
        self.wake: Callable[[], None] | None = None

    # -- notifications ------------------------------------------------------------------------

    def changed(self, session: Session, order: Order, *, async_final: bool = False) -> None:
        """The order's status changed: ORDER_STATUS_UPDATE to the merchant's webhookUrl, and
        for a final status the redirect had announced as PENDING, ORDER_ASYNC_CALLBACK to the
        webhookUrl and to the order's dynamicCallbackUrl. Nothing is queued (nor journaled) for
        a merchant without a webhookUrl, or an order without a dynamicCallbackUrl."""
        state: OpttyState = session.state(PROVIDER)
        merchant = state.merchants.get(order.merchant_id)
        webhook = merchant.webhook_url if merchant is not None else None
        targets = [(EVENT_STATUS_UPDATE, webhook)]
        if async_final:
            targets += [(EVENT_ASYNC_CALLBACK, webhook), (EVENT_ASYNC_CALLBACK, order.callback_url)]
        data = notification_data(session, order)
        now = session.clock.now()
        queued = False
        for event, url in targets:
            if not url:
                continue
            body = stringify({"event": event, "data": data})
            state.callbacks.notify(Notification(event, order.account, order.merchant_id,
                                                order.reference, order.status, url), body, now)
            queued = True
        if queued and self.wake is not None:
            self.wake()

    def fire_timers(self, session: Session, keys: list[Hashable]) -> None:
        """The session clock reached an order's orderTtl or its PENDING status's end: applied
        now, so that its notification goes out without anybody reading the order."""
        state: OpttyState = session.state(PROVIDER)
        for key in keys:
            order = state.orders.get(key)  # type: ignore[call-overload]
            if order is not None and order.status in MOVING:
                self.advance(session, order)

    # -- finding orders, with the transitions time has made ------------------------------------

    def order(self, session: Session, merchant: Merchant, reference: str) -> Order:
        order = self.model.order(session, merchant, reference)
        if order.status in MOVING:
            self.advance(session, order)
        return order

    def by_token(self, session: Session, provider: str, token: str) -> Order | None:
        state: OpttyState = session.state(PROVIDER)
        order = state.by_token.get(token)
        if order is None or order.provider != provider:
            return None
        if order.status in MOVING:
            self.advance(session, order)
        return order

    def advance(self, session: Session, order: Order) -> None:
        now = session.clock.now()
        if order.status == STATUS_INITIATED and order.expires is not None \
                and now >= order.expires:
            # Decision: an order nobody opened is cancelled by the system after orderTtl
            order.status, order.cancelled_by = STATUS_CANCELLED, "system"
            order.updated, order.expires = order.expires, None
            self.changed(session, order)
        elif order.status == STATUS_PENDING and order.pending_due is not None \
                and now >= order.pending_due:
            final, due = order.pending_final or STATUS_SUCCESSFUL, order.pending_due
            order.pending_due = order.pending_final = None
            self._settle(session, order, final, None, due)

    # -- create ---------------------------------------------------------------------------------

    def create(self, session: Session, merchant: Merchant, request: CreateOrder,
               base_url: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        """POST /orders after the ValidationPipe. Order of checks (Decision): reference already
        used, provider and currency, amount range, token support, the provider's requiredFields."""
        state: OpttyState = session.state(PROVIDER)
        key = (merchant.merchant_id, request.order_reference)
        if key in state.orders:
            raise errors.BadRequest(MSG_ORDER_EXISTS)
        rules = state.providers.get(request.provider)
        if rules is None or (rules.currencies is not None
                             and request.currency not in rules.currencies):
            raise errors.BadRequest(MSG_NOT_AVAILABLE.format(provider=request.provider,
                                                             currency=request.currency))
        low, high = rules.min_amount, rules.max_amount
        if (low is not None and request.amount < low) or (high is not None
                                                          and request.amount > high):
            raise errors.BadRequest(
                MSG_AMOUNT_RANGE.format(low=money_text(low or Decimal(0)), high=money_text(high),
                                        provider=request.provider) if high is not None
                else MSG_AMOUNT_MIN.format(low=money_text(low or Decimal(0)),
                                           provider=request.provider))
        if request.token is not None and not rules.tokens:
            raise errors.BadRequest(MSG_NOT_SUPPORTED)
        missing = missing_fields(request.body, rules.required_fields)
        if missing:
            raise errors.BadRequest(missing)
        now = session.clock.now()
        order = Order(
            reference=request.order_reference, merchant_id=merchant.merchant_id,
            provider=request.provider, amount=request.amount, surcharge=Decimal(0),
            captured=Decimal(0), currency=request.currency, status=STATUS_INITIATED,
            created=now, updated=now, bnpl_order_id=session.ids.uuid(),
            transaction_reference=session.ids.hex(24), order_token=session.ids.uuid(),
            redirect_url=request.redirect_url, callback_url=request.callback_url,
            expires=now + rules.order_ttl, get_token=request.get_token)
        order.portal_url = portal_url(base_url, session, order)
        session.ledger.open(order.account, order.currency, Decimal(0),
                            authorised=Decimal(0))
        state.orders[key] = order
        state.by_token[order.order_token] = order
        assert order.expires is not None
        state.callbacks.add_timer(order.expires, key)
        warnings: tuple[str, ...] = ()
        outcome = merchant.auto_outcome or rules.auto_outcome
        if outcome is not None:
            warnings = self.outcome(session, order, outcome).warnings
        odd = next((c for c in "/?#" if c in order.reference), None)
        if odd is not None:
            warnings += (WARN_UNADDRESSABLE.format(reference=order.reference, char=odd),)
        body = {
            "orderId": order.reference,
            "orderToken": order.order_token,
            "redirectUrl": order.portal_url,
            "bnplProvider": order.provider,
            "orderReference": order.reference,
            "orderAmount": js_number(order.amount),
            "orderPaymentOption": PAYMENT_OPTION,
            "orderDate": iso_millis(now),
            # the example's "pending" while the shopper decides; the final status once known
            "paymentStatus": (order.status.lower() if order.status in FINAL_STATUSES
                              else "pending"),
        }
        return body, warnings

    # -- the shopper's step ---------------------------------------------------------------------

    def open_page(self, session: Session, order: Order) -> None:
        """The shopper opened redirectUrl: INITIATED -> PENDING (Decision: the trigger)."""
        if order.status == STATUS_INITIATED:
            order.status, order.expires = STATUS_PENDING, None
            order.updated = session.clock.now()
            self.changed(session, order)

    def outcome(self, session: Session, order: Order, status: str, *,
                final_status: str | None = None, after: timedelta | None = None,
                reason: str | None = None) -> OutcomeResult:
        """The provider's answer to the shopper: a final status, or PENDING (final later:
        `after` and `final_status`, else the provider's asyncPayments, else when told)."""
        if order.status in FINAL_STATUSES:
            raise OutcomeRefused(order.status)
        state: OpttyState = session.state(PROVIDER)
        rules = state.rules(order.provider)
        now = session.clock.now()
        if status == STATUS_PENDING:
            was = order.status
            order.status, order.expires, order.updated = STATUS_PENDING, None, now
            wait = after if after is not None else rules.pending_after
            order.pending_final = final_status or rules.pending_final
            order.pending_due = None if wait is None else now + wait
            # the redirect says PENDING: the final status will also be an ORDER_ASYNC_CALLBACK
            order.redirect_pending = True
            if order.pending_due is not None:
                state.callbacks.add_timer(order.pending_due,
                                          (order.merchant_id, order.reference))
            if was != STATUS_PENDING:
                self.changed(session, order)
        else:
            order.pending_due = order.pending_final = None
            self._settle(session, order, status, reason, now)
        merchant = state.merchants[order.merchant_id]
        target = merchant_redirect(merchant, order, status)
        warnings = () if target is not None else (
            WARN_NO_REDIRECT.format(merchant=merchant.merchant_id),)
        return OutcomeResult(status, target, warnings)

    def _settle(self, session: Session, order: Order, status: str, reason: str | None,
                at: datetime) -> None:
        state: OpttyState = session.state(PROVIDER)
        order.status, order.updated, order.expires = status, at, None
        if status == STATUS_SUCCESSFUL:
            total = order.total
            captured = Decimal(0) if state.rules(order.provider).capture == CAPTURE_DEFERRED \
                else total
            # nothing could move before the approval, so the account is opened afresh
            session.ledger.open(order.account, order.currency, captured, authorised=total)
            order.captured = captured
        elif status == STATUS_DECLINED:
            order.reject_reason = reason or REASON_DECLINED.format(provider=order.provider)
        elif status == STATUS_CANCELLED:
            order.cancelled_by = "user"
        elif status == STATUS_ERROR:
            order.failure_reason = reason or REASON_ERROR.format(provider=order.provider)
        if status == STATUS_SUCCESSFUL and order.get_token and order.payer_token is None:
            order.payer_token = session.ids.uuid()
        self.changed(session, order, async_final=order.redirect_pending)

    # -- capture and void -----------------------------------------------------------------------

    def begin(self, session: Session, merchant: Merchant, order: Order, kind: str,
              movement: Movement) -> MovementClaim:
        """The checks before money moves, the reference claimed first (as refunds do). Order of
        checks (Decision): reference already used, eligibility, zero, partial rule; what is
        open is checked again, atomically, when recording."""
        state: OpttyState = session.state(PROVIDER)
        key = lifecycle_key(merchant.merchant_id, kind, movement.reference)
        exists = MSG_CAPTURE_EXISTS if kind == CAPTURE else MSG_VOID_EXISTS
        if (merchant.merchant_id, kind, movement.reference) in state.seeded_lifecycle:
            raise errors.BadRequest(exists)
        held = session.ledger.claim(key, session.clock.now())
        if isinstance(held, InFlight):
            raise ReferenceBusy(key)
        if held is not None:
            raise errors.BadRequest(exists)
        claim = MovementClaim(key)
        try:
            view = session.ledger.view(order.account)
            open_amount = view.open_to_capture if view is not None else Decimal(0)
            rules = state.rules(order.provider)
            if kind == CAPTURE:
                if order.status != STATUS_SUCCESSFUL or open_amount <= 0:
                    raise errors.BadRequest(MSG_NOT_CAPTURABLE)
                if movement.amount <= 0:
                    raise errors.BadRequest(MSG_CAPTURE_ZERO)
                if not rules.partial_captures and movement.amount < open_amount:
                    raise errors.BadRequest(MSG_PARTIAL_CAPTURE.format(provider=order.provider))
            else:
                if order.status != STATUS_SUCCESSFUL or open_amount <= 0:
                    raise errors.BadRequest(MSG_NOT_VOIDABLE)
                if not rules.partial_voids and movement.amount < open_amount:
                    raise errors.BadRequest(MSG_PARTIAL_VOID.format(provider=order.provider))
        except BaseException:
            self.abandon(session, claim)
            raise
        return claim

    def abandon(self, session: Session, claim: MovementClaim) -> None:
        if not claim.done:
            session.ledger.release(claim.key)

    def capture(self, session: Session, order: Order, movement: Movement,
                claim: MovementClaim) -> dict[str, Any]:
        # the reference stays taken for good: a second use is refused, never replayed
        taken = StoredAnswer(201, (), b"", movement.reference, None)
        try:
            view = session.ledger.capture(order.account, movement.amount, claim.key, taken)
        except CaptureExceeded as exc:
            raise errors.BadRequest(MSG_OVER_CAPTURE.format(
                currency=order.currency, amount=money_text(exc.open_to_capture))) from None
        claim.done = True
        now = session.clock.now()
        # captured only grows: a thread that recorded earlier never lowers what a later one set
        order.captured, order.updated = max(order.captured, view.captured), now
        order.captures.append(capture_record(movement.reference, movement.amount, now))
        # Decision: the sample's key order, captureId = the reference, the amount a number
        return {"captureReference": movement.reference,
                "capturedAmount": js_number(movement.amount),
                "captureId": movement.reference}

    def void(self, session: Session, order: Order, movement: Movement,
             claim: MovementClaim) -> dict[str, Any]:
        taken = StoredAnswer(201, (), b"", movement.reference, None)
        try:
            view = session.ledger.void(order.account, movement.amount, claim.key, taken)
        except CaptureExceeded as exc:
            raise errors.BadRequest(MSG_OVER_VOID.format(
                currency=order.currency, amount=money_text(exc.open_to_capture))) from None
        claim.done = True
        now = session.clock.now()
        order.updated = now
        order.voids.append(void_record(movement.reference, movement.amount, now))
        if view.captured == 0 and view.open_to_capture == 0:
            # Decision: voiding all of an order nothing was captured of cancels it
            order.status, order.cancelled_by = STATUS_CANCELLED, "merchant"
            self.changed(session, order)
        return {"voidReference": movement.reference, "amount": js_number(movement.amount),
                "voidedId": movement.reference}
