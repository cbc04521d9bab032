"""Optty merchants, providers, orders and the refund rules; no HTTP here."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mock_server.core.clock import iso_millis, parse_instant
from mock_server.core.ledger import AccountKey, RefundEntry, RefundExceeded, StoredAnswer
from mock_server.core.money import parse_amount
from mock_server.core.scenarios import Scenario, parse_duration
from mock_server.core.world import Session
from mock_server.optty import errors
from mock_server.optty.tokens import InvalidToken, issue_token, token_response, verify_token
from mock_server.optty.validation import OrderRefund, validate_token_request

PROVIDER = "optty"


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    client_id: str
    client_secret: str
    webhook_url: str | None


@dataclass(frozen=True, slots=True)
class ProviderRules:
    """What a BNPL provider allows; no public table exists, so scenarios set it (Decision)."""

    partial_refunds: bool = True
    async_refunds: bool = False
    callback_after: timedelta = timedelta(seconds=2)
    final_status: str = "SUCCESSFUL"


@dataclass(slots=True)
class Order:
    reference: str
    merchant_id: str
    provider: str
    amount: Decimal
    surcharge: Decimal
    captured: Decimal
    currency: str
    status: str
    created: datetime
    updated: datetime
    bnpl_order_id: str
    transaction_reference: str

    @property
    def account(self) -> AccountKey:
        return (PROVIDER, self.merchant_id, self.reference)


@dataclass(slots=True)
class OpttyState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    by_client_id: dict[str, Merchant] = field(default_factory=dict)
    providers: dict[str, ProviderRules] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)  # (merchant, reference)

    def rules(self, provider: str) -> ProviderRules:
        return self.providers.get(provider, ProviderRules())


class OpttySeeding:
    """Turns a scenario's `optty` section into session state (shared by the model)."""

    name = PROVIDER

    def new_state(self, session: Session) -> OpttyState:
        return OpttyState()

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        section = scenario.document.get("optty") or {}
        state: OpttyState = session.state(PROVIDER)
        known = set(state.merchants) | {m["merchantId"] for m in section.get("merchants") or []}
        problems = []
        for index, order in enumerate(section.get("orders") or []):
            if order["merchantId"] not in known:
                problems.append(scenario.problem(
                    ("optty", "orders", index, "merchantId"),
                    f"unknown Optty merchant {order['merchantId']!r}"))
        clients: dict[str, str] = {m.client_id: m.merchant_id for m in state.merchants.values()}
        for index, m in enumerate(section.get("merchants") or []):
            owner = clients.get(m["clientId"])
            if owner is not None and owner != m["merchantId"]:
                problems.append(scenario.problem(
                    ("optty", "merchants", index, "clientId"),
                    f"clientId {m['clientId']!r} already belongs to merchant {owner!r}"))
            clients[m["clientId"]] = m["merchantId"]
        return problems

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        section = scenario.document.get("optty") or {}
        state: OpttyState = session.state(PROVIDER)
        merchants = section.get("merchants") or []
        for m in merchants:
            merchant = Merchant(m["merchantId"], m["clientId"], m["clientSecret"],
                                m.get("webhookUrl"))
            state.merchants[merchant.merchant_id] = merchant
            state.by_client_id[merchant.client_id] = merchant
        for name, rules in (section.get("providers") or {}).items():
            base = state.rules(name)
            state.providers[name] = ProviderRules(
                partial_refunds=rules.get("partialRefunds", base.partial_refunds),
                async_refunds=rules.get("asyncRefunds", base.async_refunds),
                callback_after=(parse_duration(rules["callbackAfter"])
                                if "callbackAfter" in rules else base.callback_after),
                final_status=rules.get("finalStatus", base.final_status))
        orders = section.get("orders") or []
        now = session.clock.now()
        for o in orders:
            order = self._order_from_seed(session, o, now)
            state.orders[(order.merchant_id, order.reference)] = order
            refunds = [
                RefundEntry(session.ids.uuid(), parse_amount(r["amount"]), order.updated,
                            {"refundReference": r["refundReference"],
                             "status": r.get("status", "SUCCESSFUL"),
                             "description": r.get("description", "")},
                            reversed=r.get("status") == "FAILED")
                for r in o.get("refunds") or []]
            session.ledger.open(order.account, order.currency, order.captured, refunds)
        return {"opttyMerchants": len(merchants), "opttyOrders": len(orders)}

    def _order_from_seed(self, session: Session, o: dict[str, Any], now: datetime) -> Order:
        amount = parse_amount(o["amount"])
        surcharge = parse_amount(o["surcharge"]) if "surcharge" in o else Decimal(0)
        status = o.get("status", "SUCCESSFUL")
        if "captured" in o:
            captured = parse_amount(o["captured"])
        else:
            # a full refund is amount + surcharge (docs), so that is what a paid order captured
            captured = amount + surcharge if status == "SUCCESSFUL" else Decimal(0)
        created = parse_instant(o["created"]) if o.get("created") else now
        updated = parse_instant(o["updatedAt"]) if o.get("updatedAt") else created
        return Order(
            reference=o["orderReference"], merchant_id=o["merchantId"],
            provider=o["bnplProvider"], amount=amount, surcharge=surcharge, captured=captured,
            currency=o["currency"], status=status, created=created, updated=updated,
            bnpl_order_id=o.get("bnplOrderId") or session.ids.uuid(),
            transaction_reference=o.get("transactionReference") or session.ids.hex(24))


class OpttyModel(OpttySeeding):
    """Token issue and verification, order look-up and the refund rules."""

    error_codes = errors.ERROR_CODE_NAMES

    def __init__(self, jwt_secret: str) -> None:
        self.jwt_secret = jwt_secret

    def issue_token(self, session: Session, form: Mapping[str, str]) -> dict[str, Any]:
        request = validate_token_request(form)
        state: OpttyState = session.state(PROVIDER)
        merchant = state.by_client_id.get(request.client_id)
        expected = merchant.client_secret if merchant else "\0"
        if not hmac.compare_digest(request.client_secret.encode(), expected.encode()) \
                or merchant is None:
            raise errors.Unauthorized()
        return token_response(issue_token(merchant.merchant_id, secret=self.jwt_secret,
                                          now=session.clock.now()))

    def authenticate(self, session: Session, authorization: str | None) -> Merchant:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise errors.Unauthorized()
        try:
            claims = verify_token(token.strip(), secret=self.jwt_secret, now=session.clock.now())
        except InvalidToken:
            raise errors.Unauthorized() from None
        merchant = session.state(PROVIDER).merchants.get(claims.merchant_id)
        if merchant is None:
            raise errors.Unauthorized()
        return merchant

    def order(self, session: Session, merchant: Merchant, reference: str) -> Order:
        order = session.state(PROVIDER).orders.get((merchant.merchant_id, reference))
        if order is None:
            raise errors.NotFound()
        return order

    def refund(self, session: Session, merchant: Merchant, order: Order,
               refund: OrderRefund) -> dict[str, Any]:
        state: OpttyState = session.state(PROVIDER)
        if order.status != "SUCCESSFUL" or order.captured <= 0:
            raise errors.not_eligible()
        if refund.currency != order.currency:
            raise errors.currency_mismatch(order.currency)
        rules = state.rules(order.provider)
        if not rules.partial_refunds and refund.amount != order.captured:
            raise errors.partial_refund_not_supported(order.provider)
        key = (PROVIDER, merchant.merchant_id, "refundReference", refund.refund_reference)
        if session.ledger.claim(key, session.clock.now()) is not None:
            raise errors.duplicate_reference()
        now = session.clock.now()
        body: dict[str, Any] = {}
        status = "PENDING" if rules.async_refunds else "SUCCESSFUL"

        def build(_left: Decimal) -> tuple[RefundEntry, StoredAnswer | None]:
            refund_id = session.ids.uuid()
            body.update(refund_body(order, refund, refund_id, status, now))
            entry = RefundEntry(refund_id, refund.amount, now,
                                {"refundReference": refund.refund_reference, "status": status,
                                 "description": refund.description})
            # the reference stays taken for good: a second use is refused, never replayed
            return entry, StoredAnswer(201, (), b"", refund.refund_reference, None)

        try:
            session.ledger.refund(order.account, refund.amount, build, key)
        except RefundExceeded as exc:
            session.ledger.release(key)
            raise errors.over_refund(order.currency, exc.remaining) from None
        except BaseException:
            session.ledger.release(key)
            raise
        return body

    def order_body(self, session: Session, order: Order) -> dict[str, Any]:
        view = session.ledger.view(order.account)
        assert view is not None
        return {
            "merchantReference": order.reference,
            "status": order.status,
            "amount": f"{order.amount:.2f}",
            "surcharge": f"{order.surcharge:.2f}",
            "currency": order.currency,
            "provider": order.provider,
            "updatedAt": iso_millis(order.updated),
            "bnplOrderId": order.bnpl_order_id,
            "transactionReference": order.transaction_reference,
            "captureStatus": "CAPTURED" if order.captured > 0 else "NOT_CAPTURED",
            # sandbox extensions: the money as the sandbox tracks it
            "capturedAmount": f"{view.captured:.2f}",
            "refundedAmount": f"{view.refunded:.2f}",
            "refundableAmount": f"{view.remaining:.2f}",
            "refunds": [stored_refund_body(order, e) for e in view.refunds],
        }


def refund_body(order: Order, refund: OrderRefund, refund_id: str, status: str,
                at: datetime) -> dict[str, Any]:
    # Decision: the newer schema's types (strings, ISO 8601 date), reference echoed unchanged
    return {
        "refundReference": refund.refund_reference,
        "bnplProvider": order.provider,
        "refundedAmount": f"{refund.amount:.2f}",
        "refundStatus": status,
        "description": refund.description,
        "refundDate": iso_millis(at),
        "bnplRefundId": refund_id,
    }


def stored_refund_body(order: Order, entry: RefundEntry) -> dict[str, Any]:
    return {
        "refundReference": entry.details.get("refundReference", ""),
        "bnplProvider": order.provider,
        "refundedAmount": f"{entry.amount:.2f}",
        "refundStatus": entry.details.get("status", "SUCCESSFUL"),
        "description": entry.details.get("description", ""),
        "refundDate": iso_millis(entry.at),
        "bnplRefundId": entry.refund_id,
    }
