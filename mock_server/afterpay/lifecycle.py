"""The Afterpay payment lifecycle: checkouts, the shopper's approval, immediate capture, auth,
deferred capture, void, auth expiry (reference afterpay-lifecycle.md). No HTTP here.

Money moves only through the ledger's atomic steps (open, capture, void); the Payment record
around it (state, events, voids) is updated from the view the step returns, and only ever moves
forward, so concurrent calls cannot leave it behind the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mock_server.afterpay import errors
from mock_server.afterpay.checkout import (
    CaptureRequest,
    CheckoutRequest,
    TokenRequest,
    VoidRequest,
    money_json,
)
from mock_server.afterpay.models import (
    PROVIDER,
    AfterpayModel,
    AfterpayState,
    Merchant,
    Payment,
    VoidEntry,
    event,
)
from mock_server.afterpay.requests import CURRENCY_MISMATCH
from mock_server.core.clock import iso_millis
from mock_server.core.ledger import CaptureExceeded, IdempotencyKey, InFlight, StoredAnswer
from mock_server.core.world import Session

PAYMENT_ID_START = 100_101_790_000  # 12 digits, after the default world's ids (recorded: 1001017…)
MINIMUM_CAPTURE = Decimal("1.00")  # docs (2b. Auth and Capture: minimum $1.00)
CAPTURE_EXCEEDED = ("Capture amount {currency} {amount} exceeded open to capture amount "
                    "{currency} {open}.")  # Decision, after the void's documented message
CAPTURE_BELOW_MINIMUM = ("Capture amount {currency} {amount} is less than the minimum capture "
                         "amount {currency} {minimum}.")  # Decision
VOID_EXCEEDED = ("Void amount {currency} {amount} exceeded open to capture amount "
                 "{currency} {open}.")  # docs (example message)
CARDS = ("approved", "declined")
_OPEN_STATES = frozenset({"AUTH_APPROVED", "PARTIALLY_CAPTURED"})
# a state only moves forward (see the module's docstring)
_RANK = {"AUTH_APPROVED": 0, "PARTIALLY_CAPTURED": 1, "CAPTURED": 2, "VOIDED": 2}
_ONE_MS = timedelta(milliseconds=1)


class ConsumerActionError(Exception):
    """A shopper's action (portal page or admin call) that cannot be done: 404 or 409."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass(slots=True)
class Checkout:
    token: str
    merchant_id: str
    request: CheckoutRequest
    created: datetime
    expires: datetime
    redirect_checkout_url: str
    status: str = "pending"  # pending | confirmed | cancelled
    card: str | None = None  # the verdict the shopper's card will get: approved | declined
    confirmed_at: datetime | None = None
    payment_id: str | None = None
    used_by: str | None = None  # capture | auth


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a capture or auth call answers: its status and the payment (body rendered later)."""

    status: int
    payment: Payment
    replayed: bool = False


def _text_amount(amount: Decimal) -> str:
    return f"{amount:.2f}"


class Lifecycle:
    """The lifecycle's rules over AfterpayModel's payments and the session's ledger."""

    def __init__(self, model: AfterpayModel) -> None:
        self.model = model

    # -- checkouts --------------------------------------------------------------------------

    def create_checkout(self, session: Session, merchant: Merchant, request: CheckoutRequest,
                        portal_base: str) -> Checkout:
        options = merchant.options
        if not options.minimum_amount <= request.amount <= options.maximum_amount:
            raise errors.UnsupportedPaymentType()
        state: AfterpayState = session.state(PROVIDER)
        while True:
            # recorded: "002." and 48 of [a-z0-9]
            token = "002." + session.ids.alnum(48).lower()
            if token not in state.checkouts and token not in state.payment_of_token:
                break
        now = session.clock.now()
        country = options.portal_country(merchant.currencies[0])
        url = f"{portal_base}/__portal/afterpay/{country}/checkout/?token={token}"
        checkout = Checkout(token, merchant.merchant_id, request, now,
                            now + options.checkout_ttl, url)
        state.checkouts[token] = checkout
        if options.auto_confirm == "cancelled":
            checkout.status = "cancelled"  # the shopper cancels (drill afterpay-shopper-cancels)
        elif options.auto_confirm:
            checkout.status, checkout.card, checkout.confirmed_at = (
                "confirmed", options.auto_confirm, now)
        return checkout

    @staticmethod
    def created_body(checkout: Checkout) -> dict[str, Any]:
        return {"token": checkout.token, "expires": iso_millis(checkout.expires),
                "redirectCheckoutUrl": checkout.redirect_checkout_url}

    def readable_checkout(self, session: Session, merchant: Merchant, token: str) -> Checkout:
        """A checkout GET can read: until it expires or a payment is made from it (Decision)."""
        state: AfterpayState = session.state(PROVIDER)
        checkout = state.checkouts.get(token)
        if (checkout is None or checkout.merchant_id != merchant.merchant_id
                or checkout.payment_id is not None or session.clock.now() >= checkout.expires):
            raise errors.CheckoutTokenInvalid()
        return checkout

    @staticmethod
    def checkout_body(checkout: Checkout) -> dict[str, Any]:
        """GET /v2/checkouts/{token}, in the recorded order (fields never given left out)."""
        r = checkout.request
        body: dict[str, Any] = {"token": checkout.token, "expires": iso_millis(checkout.expires),
                                "redirectCheckoutUrl": checkout.redirect_checkout_url,
                                "amount": money_json(r.amount, r.currency),
                                "consumer": r.consumer}
        for name, value in (("billing", r.billing), ("shipping", r.shipping),
                            ("courier", r.courier)):
            if value is not None:
                body[name] = value
        body["items"] = r.items
        merchant = {"redirectConfirmUrl": r.redirect_confirm_url,
                    "redirectCancelUrl": r.redirect_cancel_url}
        if r.popup_origin_url is not None:
            merchant["popupOriginUrl"] = r.popup_origin_url
        body["merchant"] = merchant
        body["discounts"] = r.discounts
        if r.tax_amount is not None:
            body["taxAmount"] = r.tax_amount
        if r.shipping_amount is not None:
            body["shippingAmount"] = r.shipping_amount
        if r.merchant_reference is not None:
            body["merchantReference"] = r.merchant_reference
        return body

    # -- the shopper's step -----------------------------------------------------------------

    def consumer_action(self, session: Session, token: str, action: str,
                        card: str | None = None) -> tuple[Checkout, str]:
        """Confirm (with the card's verdict) or cancel; the redirect URL the merchant gets.
        Decision: a checkout can be confirmed or cancelled again until a payment is made from
        it (reopening after cancel is allowed); an expired or used one is refused (409)."""
        state: AfterpayState = session.state(PROVIDER)
        checkout = state.checkouts.get(token)
        if checkout is None:
            raise ConsumerActionError(404, "not_found", "no Afterpay checkout with this token")
        if checkout.payment_id is not None:
            raise ConsumerActionError(409, "checkout_used",
                                      "a payment was already made from this checkout")
        now = session.clock.now()
        if now >= checkout.expires:
            raise ConsumerActionError(409, "checkout_expired",
                                      f"the checkout expired at {iso_millis(checkout.expires)}")
        if action == "confirm":
            assert card in CARDS
            checkout.status, checkout.card, checkout.confirmed_at = "confirmed", card, now
            return checkout, redirect_url(checkout.request.redirect_confirm_url, "SUCCESS",
                                          token)
        checkout.status, checkout.card = "cancelled", None
        return checkout, redirect_url(checkout.request.redirect_cancel_url, "CANCELLED", token)

    # -- immediate capture and auth ---------------------------------------------------------

    def pay(self, session: Session, merchant: Merchant, request: TokenRequest,
            operation: str) -> Outcome:
        """POST /v2/payments/capture (operation "capture") or /v2/payments/auth ("auth").
        Idempotent on the token (docs; recorded replays): the same call again answers the
        payment as it is now; the other call on a used token is 402 (Decision)."""
        state: AfterpayState = session.state(PROVIDER)
        checkout = state.checkouts.get(request.token)
        if checkout is None or checkout.merchant_id != merchant.merchant_id:
            raise errors.InvalidToken()
        if checkout.payment_id is not None:
            if checkout.used_by != operation:
                raise errors.InvalidToken()
            payment = state.payments[checkout.payment_id]
            self.expire_if_due(session, payment)
            return Outcome(402 if payment.state == "AUTH_DECLINED" else 201, payment, True)
        now = session.clock.now()
        if now >= checkout.expires:
            raise errors.InvalidToken()
        if checkout.status != "confirmed":
            raise errors.OrderNotApproved()
        payment = self._new_payment(session, state, merchant, checkout, request)
        amount, currency = payment.amount, payment.currency
        approved = checkout.card == "approved"
        if operation == "capture":
            if approved:
                payment.state, payment.captured = "CAPTURED", amount
                session.ledger.open(payment.account, currency, amount, authorised=amount)
                payment.events.append(event(session, "CAPTURED", now, amount, currency))
            else:
                payment.state = "CAPTURE_DECLINED"
                session.ledger.open(payment.account, currency, Decimal(0),
                                    authorised=Decimal(0))
                payment.events.append(event(session, "CAPTURE_DECLINED", now, amount,
                                                currency))
            status = 201  # recorded: a declined immediate capture is a 201 too
        elif approved:
            payment.state = "AUTH_APPROVED"
            expiry = self.model_merchant(state, payment).options.auth_expiry
            # Decision: expires = the event's time + the merchant's period - 1 ms (recorded)
            payment.auth_expires = now + expiry - _ONE_MS
            session.ledger.open(payment.account, currency, Decimal(0), authorised=amount)
            payment.events.append(event(session, "AUTH_APPROVED", now, amount, currency,
                                        expires=payment.auth_expires))
            status = 201
        else:
            payment.state = "AUTH_DECLINED"
            session.ledger.open(payment.account, currency, Decimal(0), authorised=Decimal(0))
            payment.events.append(event(session, "AUTH_DECLINED", now, amount, currency))
            status = 402  # recorded: a declined auth is 402 with the Payment body
        state.payments[payment.id] = payment
        state.payment_of_token[checkout.token] = payment.id
        checkout.payment_id, checkout.used_by = payment.id, operation
        return Outcome(status, payment)

    @staticmethod
    def model_merchant(state: AfterpayState, payment: Payment) -> Merchant:
        return state.merchants[payment.merchant_id]

    @staticmethod
    def _new_payment(session: Session, state: AfterpayState, merchant: Merchant,
                     checkout: Checkout, request: TokenRequest) -> Payment:
        while True:
            payment_id = str(session.ids.sequence("afterpay-payment", PAYMENT_ID_START))
            if payment_id not in state.payments:
                break
        r = checkout.request
        assert checkout.confirmed_at is not None
        return Payment(
            id=payment_id, merchant_id=merchant.merchant_id, token=checkout.token,
            currency=r.currency, amount=r.amount, captured=Decimal(0), state="AUTH_APPROVED",
            # Decision: `created` is the moment the shopper confirmed (recorded: 1-2 minutes
            # before the auth/capture event)
            created=checkout.confirmed_at,
            merchant_reference=request.merchant_reference or r.merchant_reference,
            order_details=order_details(r))

    # -- auth expiry ------------------------------------------------------------------------

    @staticmethod
    def expiry_due(session: Session, payment: Payment) -> bool:
        """Whether the session clock has passed the auth's `expires` with something still open."""
        expires = payment.auth_expires
        return not (expires is None or payment.expired or payment.state not in _OPEN_STATES
                    or session.clock.now() <= expires)

    def expire_if_due(self, session: Session, payment: Payment) -> None:
        """Once the session clock passes an auth's `expires`, what is still open is voided
        (docs: "automatically voided"): an EXPIRED event, no refunds[] entry (Decision)."""
        if not self.expiry_due(session, payment):
            return
        expires = payment.auth_expires
        assert expires is not None
        view = session.ledger.view(payment.account)
        assert view is not None
        try:
            after = session.ledger.void(payment.account, view.open_to_capture)
        except CaptureExceeded:  # moved meanwhile: void whatever is open now
            after = session.ledger.void(payment.account, None)
        payment.expired = True
        payment.events.append(event(session, "EXPIRED", expires, after.voided - view.voided,
                                        payment.currency))
        payment.state = "CAPTURED" if after.captured > 0 else "VOIDED"

    # -- deferred capture and void ----------------------------------------------------------

    def payment_for(self, state: AfterpayState, merchant: Merchant, order_id: str, *,
                    unknown: type[errors.AfterpayError]) -> Payment:
        """The payment a capture or void acts on. Recorded: a non-numeric id is 404; a
        numeric one nobody has is the operation's own answer (capture 412, void 404)."""
        if not order_id.isdigit() or not order_id.isascii():
            raise errors.NotFound()
        payment = state.payments.get(order_id)
        if payment is None or payment.merchant_id != merchant.merchant_id:
            raise unknown()
        return payment

    @staticmethod
    def idempotency_key(merchant: Merchant, order_id: str, operation: str,
                        request_id: str | None) -> IdempotencyKey | None:
        """Decision: merchant + orderId + operation + requestId; no requestId, a new call."""
        if request_id is None:
            return None
        return (PROVIDER, merchant.merchant_id, order_id, operation, request_id)

    @staticmethod
    def claim(session: Session, key: IdempotencyKey, fingerprint: tuple[Any, ...]
              ) -> bool | None:
        """None: this call now holds the key. Else a replay: True when its body differs.
        409 while the call holding the key is in flight."""
        held = session.ledger.claim(key, session.clock.now())
        if isinstance(held, InFlight):
            raise errors.Conflict()
        if held is None:
            return None
        return held.fingerprint != fingerprint

    def _check_open(self, session: Session, payment: Payment) -> None:
        """The state checks shared by capture and void (recorded catalogue)."""
        self.expire_if_due(session, payment)
        if payment.expired:
            raise errors.PaymentExpired()
        if payment.state in ("AUTH_DECLINED", "CAPTURE_DECLINED"):
            raise errors.InvalidState()
        if payment.state == "VOIDED":
            raise errors.PaymentVoided()
        if payment.state == "CAPTURED":
            raise errors.PaymentCaptured()

    def _answer(self, session: Session, fingerprint: tuple[Any, ...]) -> StoredAnswer:
        # replay answers the payment as it is now (recorded), so only the call is kept
        return StoredAnswer(201, (), b"", fingerprint,
                            session.clock.now() + session.settings.idempotency_ttl)

    def capture(self, session: Session, payment: Payment, request: CaptureRequest,
                key: IdempotencyKey | None) -> Payment:
        self._check_open(session, payment)
        currency = payment.currency
        if request.currency != currency:
            raise errors.InvalidObject(CURRENCY_MISMATCH)
        if request.amount < MINIMUM_CAPTURE:
            raise errors.InvalidAmount(CAPTURE_BELOW_MINIMUM.format(
                currency=currency, amount=_text_amount(request.amount),
                minimum=_text_amount(MINIMUM_CAPTURE)))
        answer = self._answer(session, request.fingerprint(payment.id)) if key else None
        try:
            view = session.ledger.capture(payment.account, request.amount, key, answer)
        except CaptureExceeded as exc:
            raise errors.InvalidAmount(CAPTURE_EXCEEDED.format(
                currency=currency, amount=_text_amount(request.amount),
                open=_text_amount(exc.open_to_capture))) from None
        now = session.clock.now()
        payment.captured = max(payment.captured, view.captured)
        _advance(payment, "CAPTURED" if view.open_to_capture <= 0 else "PARTIALLY_CAPTURED")
        if request.merchant_reference is not None:
            payment.merchant_reference = request.merchant_reference
        # recorded (afterpay-ruby _list_payments): a deferred capture's CAPTURED event has
        # paymentEventMerchantReference "" when none was sent
        payment.events.append(event(session, "CAPTURED", now, request.amount, currency,
                                    reference=request.event_reference or ""))
        return payment

    def void(self, session: Session, payment: Payment, request: VoidRequest,
             key: IdempotencyKey | None) -> Payment:
        self._check_open(session, payment)
        currency = payment.currency
        if request.currency is not None and request.currency != currency:
            raise errors.InvalidObject(CURRENCY_MISMATCH)
        answer = self._answer(session, request.fingerprint(payment.id)) if key else None
        before = session.ledger.view(payment.account)
        assert before is not None
        try:
            view = session.ledger.void(payment.account, request.amount, key, answer)
        except CaptureExceeded as exc:
            amount = request.amount if request.amount is not None else Decimal(0)
            raise errors.InvalidAmount(VOID_EXCEEDED.format(
                currency=currency, amount=_text_amount(amount),
                open=_text_amount(exc.open_to_capture))) from None
        amount = request.amount if request.amount is not None else view.voided - before.voided
        now = session.clock.now()
        if view.open_to_capture <= 0:
            _advance(payment, "CAPTURED" if view.captured > 0 else "VOIDED")
        voided = event(session, "VOIDED", now, amount, currency)
        payment.events.append(voided)
        state: AfterpayState = session.state(PROVIDER)
        refund_id = self.model._new_refund_id(session, state)  # noqa: SLF001 - one id pool
        payment.voids.append(VoidEntry(refund_id, amount, now, voided["id"],
                                       request.request_id, len(view.refunds)))
        return payment

    def update_reference(self, session: Session, payment: Payment, reference: str) -> Payment:
        if payment.state in ("AUTH_DECLINED", "CAPTURE_DECLINED"):
            raise errors.InvalidState()  # docs: "only valid for successful orders"
        payment.merchant_reference = reference
        return payment


def _advance(payment: Payment, state: str) -> None:
    if _RANK.get(state, 0) >= _RANK.get(payment.state, 0):
        payment.state = state


def redirect_url(base: str, status: str, token: str) -> str:
    """The merchant's URL as Afterpay sends the shopper back: `?` added when it has no query,
    then `&status=<S>&orderToken=<token>` (docs example; sdk-php asserts that suffix)."""
    fragment = ""
    if "#" in base:
        base, fragment = base.split("#", 1)
        fragment = "#" + fragment
    joiner = "" if "?" in base else "?"
    return f"{base}{joiner}&status={status}&orderToken={token}{fragment}"


def order_details(r: CheckoutRequest) -> dict[str, Any]:
    """The payment's orderDetails from its checkout, in the recorded order; fields never given
    are left out (recorded), `courier` is `{ }` when not given."""
    details: dict[str, Any] = {"consumer": r.consumer}
    if r.billing is not None:
        details["billing"] = r.billing
    if r.shipping is not None:
        details["shipping"] = r.shipping
    details["courier"] = r.courier or {}
    details["items"] = r.items
    details["discounts"] = r.discounts
    if r.shipping_amount is not None:
        details["shippingAmount"] = r.shipping_amount
    if r.tax_amount is not None:
        details["taxAmount"] = r.tax_amount
    return details
