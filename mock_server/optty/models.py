"""Optty merchants, providers, orders and the refund rules; no HTTP here."""

from __future__ import annotations

import hmac
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mock_server.core.clock import iso_millis, parse_instant
from mock_server.core.ledger import (
    AccountKey,
    InFlight,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
)
from mock_server.core.money import parse_amount
from mock_server.core.scenarios import Scenario, parse_duration
from mock_server.core.targets import literal_problem
from mock_server.core.world import Session
from mock_server.optty import errors
from mock_server.optty.tokens import InvalidToken, issue_token, token_response, verify_token
from mock_server.optty.validation import OrderRefund, validate_token_request
from mock_server.optty.webhooks import CallbackQueue, PendingRefund

PROVIDER = "optty"
STATUS_SUCCESSFUL = "SUCCESSFUL"
STATUS_PENDING = "PENDING"
STATUS_FAILED = "FAILED"
STATUS_INITIATED = "INITIATED"
STATUS_DECLINED = "DECLINED"
STATUS_CANCELLED = "CANCELLED"
STATUS_ERROR = "ERROR"
# an order in one of these has its outcome; the shopper's step cannot change it any more
FINAL_STATUSES = frozenset({STATUS_SUCCESSFUL, STATUS_DECLINED, STATUS_CANCELLED, STATUS_ERROR})
CAPTURE_AUTO = "auto"
CAPTURE_DEFERRED = "deferred"

# passport-jwt's ExtractJwt.fromAuthHeaderAsBearerToken(): the first two runs of non-space in the
# header (the regex is not anchored), the scheme compared case-insensitively. JavaScript's \s.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_TO_SPACE = str.maketrans({c: " " for c in
                           "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
                           + "".join(chr(c) for c in range(0x2000, 0x200B))})


def auth_header_parts(header: str) -> tuple[str, str] | None:
    r"""What passport-jwt's /(\S+)\s+(\S+)/ finds: the first two runs of non-space, or None.
    Found by hand, left to right, in linear time: the regex itself, unanchored, tries every
    start position and takes quadratic time on a long header without spaces (32k characters:
    9 s)."""
    text = header.translate(_TO_SPACE).lstrip(" ")
    end = text.find(" ")
    if end < 0:
        return None
    rest = text[end:].lstrip(" ")
    if not rest:
        return None
    stop = rest.find(" ")
    return text[:end], rest if stop < 0 else rest[:stop]

WARN_NO_WEBHOOK = (
    "merchant {merchant} has no webhookUrl: this refund becomes {status} after {after}, but no "
    "REFUND_CALLBACK will be delivered (set webhookUrl in the scenario's optty.merchants)")


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    client_id: str
    client_secret: str
    webhook_url: str | None
    # the shop's default redirect after the shopper's step (set in its Optty account) and the
    # "payment secret" the redirect's hash is keyed with (Decision: the client secret if unset)
    redirect_url: str | None = None
    hash_secret: str | None = None
    # the outcome every new order of this merchant gets at once (the quick-try merchant)
    auto_outcome: str | None = None

    @property
    def payment_secret(self) -> str:
        return self.client_secret if self.hash_secret is None else self.hash_secret


@dataclass(frozen=True, slots=True)
class ProviderRules:
    """What a BNPL provider allows; no public table exists, so scenarios set it (Decision)."""

    partial_refunds: bool = True
    async_refunds: bool = False
    callback_after: timedelta = timedelta(seconds=2)
    final_status: str = STATUS_SUCCESSFUL
    # the lifecycle (reference/optty-lifecycle.md): approval captures at once, or authorises
    # for later captures; partial captures and voids allowed or not
    capture: str = CAPTURE_AUTO
    partial_captures: bool = True
    partial_voids: bool = True
    # an outcome applied as soon as an order is created (None: the shopper's page decides)
    auto_outcome: str | None = None
    # "Leave pending": the final status arrives this long after (None: it waits for a call)
    pending_after: timedelta | None = None
    pending_final: str = STATUS_SUCCESSFUL
    # an INITIATED order nobody opened is cancelled by the system after this
    order_ttl: timedelta = timedelta(hours=1)
    # what POST /orders checks for this provider (None: anything)
    currencies: tuple[str, ...] | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    tokens: bool = False
    required_fields: tuple[str, ...] = ()


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
    # the lifecycle's fields (GET /orders: null unless set)
    order_token: str = ""
    failure_reason: str | None = None
    reject_reason: str | None = None
    cancelled_by: str | None = None
    # the create call's dynamicRedirectUrl / dynamicCallbackUrl
    redirect_url: str | None = None
    callback_url: str | None = None
    # the shopper's page (absolute, the session in its path)
    portal_url: str | None = None
    # captures and voids as GET /orders lists them (the money itself is the ledger's)
    captures: list[dict[str, Any]] = field(default_factory=list)
    voids: list[dict[str, Any]] = field(default_factory=list)
    # PENDING until this instant, then `pending_final`; INITIATED until `expires`, then
    # CANCELLED by the system (both applied when the order is next looked at)
    pending_due: datetime | None = None
    pending_final: str | None = None
    expires: datetime | None = None
    # the redirect told the shop PENDING: the final status also goes out as ORDER_ASYNC_CALLBACK
    redirect_pending: bool = False
    # the create call's getToken, and the payer token an approval then issues
    get_token: bool = False
    payer_token: str | None = None

    @property
    def account(self) -> AccountKey:
        return (PROVIDER, self.merchant_id, self.reference)

    @property
    def total(self) -> Decimal:
        """What the shopper pays: amount + surcharge (a full capture, void or refund)."""
        return self.amount + self.surcharge


@dataclass(slots=True)
class OpttyState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    by_client_id: dict[str, Merchant] = field(default_factory=dict)
    providers: dict[str, ProviderRules] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)  # (merchant, reference)
    # orderToken -> order (the shopper's page finds its order by the token in its path)
    by_token: dict[str, Order] = field(default_factory=dict)
    # capture and void references of seeded orders: (merchant, kind, reference) -> order
    seeded_lifecycle: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # refund references of seeded refunds: (merchant, refundReference) -> orderReference; taken
    # like any recorded refund's
    seeded_references: dict[tuple[str, str], str] = field(default_factory=dict)
    seeded_by_order: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    callbacks: CallbackQueue = field(default_factory=CallbackQueue)
    # requests waiting for a refundReference held by another request (the HTTP layer's events)
    reference_waiters: dict[Hashable, Any] = field(default_factory=dict)

    def rules(self, provider: str) -> ProviderRules:
        return self.providers.get(provider, ProviderRules())


def reference_key(merchant_id: str, refund_reference: str) -> tuple[Hashable, ...]:
    """The ledger's idempotency key that keeps a refundReference unique per merchant."""
    return (PROVIDER, merchant_id, "refundReference", refund_reference)


def capture_record(reference: str, amount: Decimal, at: datetime) -> dict[str, Any]:
    """A capture as GET /orders lists it: transaction-details' orderCaptures entry
    {captureId, amount, status, createdAt} plus the reference (Decision)."""
    return {"captureId": reference, "captureReference": reference, "amount": f"{amount:.2f}",
            "status": STATUS_SUCCESSFUL, "createdAt": iso_millis(at)}


def void_record(reference: str, amount: Decimal, at: datetime) -> dict[str, Any]:
    return {"voidedId": reference, "voidReference": reference, "amount": f"{amount:.2f}",
            "status": STATUS_SUCCESSFUL, "createdAt": iso_millis(at)}


def capture_status(view: Any) -> str:
    """captureStatus from the ledger's view (Decision: PARTIALLY_CAPTURED and VOIDED added to
    the CAPTURED / NOT_CAPTURED the refund sandbox used)."""
    if view.captured == 0:
        return "VOIDED" if view.voided > 0 and view.open_to_capture == 0 else "NOT_CAPTURED"
    return "PARTIALLY_CAPTURED" if view.open_to_capture > 0 else "CAPTURED"


def _sum(entries: Any) -> Decimal:
    return sum((parse_amount(e["amount"]) for e in entries or ()), Decimal(0))


def seed_money(o: dict[str, Any], rules: ProviderRules) -> tuple[Decimal, Decimal, Decimal]:
    """A seeded order's (captured, authorised, voided). Defaults: a SUCCESSFUL order of an
    auto-capture provider captured amount + surcharge (a full refund is that much, docs); one of
    a deferred provider authorised that much and captured what its `captures` list; voids are
    what its `voids` list."""
    surcharge = parse_amount(o["surcharge"]) if "surcharge" in o else Decimal(0)
    total = parse_amount(o["amount"]) + surcharge
    successful = o.get("status", STATUS_SUCCESSFUL) == STATUS_SUCCESSFUL
    deferred = rules.capture == CAPTURE_DEFERRED
    voided = _sum(o.get("voids"))
    if "captured" in o:
        captured = parse_amount(o["captured"])
    elif o.get("captures"):
        captured = _sum(o["captures"])
    else:
        captured = total if successful and not deferred else Decimal(0)
    if "authorised" in o:
        authorised = parse_amount(o["authorised"])
    elif deferred and (successful or voided or captured):
        authorised = total
    else:
        authorised = captured + voided
    return captured, authorised, voided


def _section_rules(state: OpttyState, section: dict[str, Any], provider: str) -> ProviderRules:
    rules = (section.get("providers") or {}).get(provider)
    return state.rules(provider) if rules is None else provider_rules(state.rules(provider), rules)


def provider_rules(base: ProviderRules, rules: dict[str, Any]) -> ProviderRules:
    """A scenario's `optty.providers.<NAME>` over what the session had for that provider."""
    pending = rules.get("asyncPayments") or {}
    return ProviderRules(
        partial_refunds=rules.get("partialRefunds", base.partial_refunds),
        async_refunds=rules.get("asyncRefunds", base.async_refunds),
        callback_after=(parse_duration(rules["callbackAfter"])
                        if "callbackAfter" in rules else base.callback_after),
        final_status=rules.get("finalStatus", base.final_status),
        capture=rules.get("capture", base.capture),
        partial_captures=rules.get("partialCaptures", base.partial_captures),
        partial_voids=rules.get("partialVoids", base.partial_voids),
        auto_outcome=_outcome(rules.get("autoOutcome", base.auto_outcome)),
        pending_after=(parse_duration(pending["after"]) if "after" in pending
                       else base.pending_after),
        pending_final=pending.get("finalStatus", base.pending_final),
        order_ttl=(parse_duration(rules["orderTtl"]) if "orderTtl" in rules
                   else base.order_ttl),
        currencies=(tuple(rules["currencies"]) if "currencies" in rules else base.currencies),
        min_amount=(parse_amount(rules["minAmount"]) if "minAmount" in rules
                    else base.min_amount),
        max_amount=(parse_amount(rules["maxAmount"]) if "maxAmount" in rules
                    else base.max_amount),
        tokens=rules.get("tokens", base.tokens),
        required_fields=(tuple(rules["requiredFields"]) if "requiredFields" in rules
                         else base.required_fields))


def _outcome(value: Any) -> str | None:
    # `autoOutcome: true` approves; false or absent leaves the decision to the shopper's page
    if value is True:
        return STATUS_SUCCESSFUL
    if value is False or value is None:
        return None
    return str(value)


class OpttySeeding:
    """Turns a scenario's `optty` section into session state (shared by the model)."""

    name = PROVIDER

    def new_state(self, session: Session) -> OpttyState:
        return OpttyState()

    @staticmethod
    def shareable(state: OpttyState | None) -> bool:
        """Sessions may read it without a copy, and an idle session may be evicted, while no
        refund waits for its callback."""
        return state is None or state.callbacks.idle()

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        section = scenario.document.get("optty") or {}
        state: OpttyState = session.state(PROVIDER)
        known = set(state.merchants) | {m["merchantId"] for m in section.get("merchants") or []}
        problems = []
        clients: dict[str, str] = {m.client_id: m.merchant_id for m in state.merchants.values()}
        for index, m in enumerate(section.get("merchants") or []):
            owner = clients.get(m["clientId"])
            if owner is not None and owner != m["merchantId"]:
                problems.append(scenario.problem(
                    ("optty", "merchants", index, "clientId"),
                    f"clientId {m['clientId']!r} already belongs to merchant {owner!r}"))
            clients[m["clientId"]] = m["merchantId"]
            if m.get("webhookUrl"):
                refused = literal_problem(m["webhookUrl"], session.settings.webhook_allow)
                if refused is not None:
                    problems.append(scenario.problem(
                        ("optty", "merchants", index, "webhookUrl"),
                        f"optty.merchants[{index}].webhookUrl: {refused}"))
        # The document's own consistency (duplicates, money within one order) is checked when it
        # is parsed; what is left here depends on the session it is loaded into.
        reseeded = {(o["merchantId"], o["orderReference"]) for o in section.get("orders") or []}
        for index, order in enumerate(section.get("orders") or []):
            where = ("optty", "orders", index)
            merchant = order["merchantId"]
            if merchant not in known:
                problems.append(scenario.problem(
                    (*where, "merchantId"), f"unknown Optty merchant {merchant!r}"))
            captured, authorised, voided = seed_money(
                order, _section_rules(state, section, order["bnplProvider"]))
            if captured + voided > authorised:
                problems.append(scenario.problem(
                    where, f"captured {captured:.2f} and voided {voided:.2f} together exceed the "
                           f"{authorised:.2f} authorised"))
            if order.get("captures") and "captured" in order \
                    and _sum(order["captures"]) != captured:
                problems.append(scenario.problem(
                    (*where, "captures"), f"captures total {_sum(order['captures']):.2f}, not the "
                                          f"{captured:.2f} captured"))
            for kind, field_name in (("captures", "captureReference"),
                                     ("voids", "voidReference")):
                for l_index, item in enumerate(order.get(kind) or []):
                    owner = state.seeded_lifecycle.get((merchant, field_name, item[field_name]))
                    if owner is not None and owner != order["orderReference"] \
                            and (merchant, owner) not in reseeded:
                        problems.append(scenario.problem(
                            (*where, kind, l_index, field_name),
                            f"{field_name} {item[field_name]!r} is already used by merchant "
                            f"{merchant!r} (order {owner!r}); it must be unique per merchant"))
            refunded = Decimal(0)
            for r_index, refund in enumerate(order.get("refunds") or []):
                if refund.get("status") != STATUS_FAILED:
                    refunded += parse_amount(refund["amount"])
                owner = state.seeded_references.get((merchant, refund["refundReference"]))
                if owner is not None and (merchant, owner) not in reseeded:
                    problems.append(scenario.problem(
                        (*where, "refunds", r_index, "refundReference"),
                        f"refundReference {refund['refundReference']!r} is already used by "
                        f"merchant {merchant!r} (order {owner!r}); it must be unique per merchant"))
            if refunded > captured:
                # an order that is not SUCCESSFUL captured nothing unless `captured` says so
                problems.append(scenario.problem(
                    (*where, "refunds"),
                    f"refunds total {refunded:.2f}, more than the {captured:.2f} captured"))
        return problems

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        section = scenario.document.get("optty") or {}
        state: OpttyState = session.state(PROVIDER)
        merchants = section.get("merchants") or []
        for m in merchants:
            merchant = Merchant(m["merchantId"], m["clientId"], m["clientSecret"],
                                m.get("webhookUrl"), m.get("redirectUrl"), m.get("hashSecret"),
                                _outcome(m.get("autoOutcome")))
            previous = state.merchants.get(merchant.merchant_id)
            if previous is not None:
                state.by_client_id.pop(previous.client_id, None)
            state.merchants[merchant.merchant_id] = merchant
            state.by_client_id[merchant.client_id] = merchant
        for name, rules in (section.get("providers") or {}).items():
            state.providers[name] = provider_rules(state.rules(name), rules)
        orders = section.get("orders") or []
        now = session.clock.now()
        for o in orders:
            order = self._order_from_seed(session, o, now)
            replaced = state.orders.get((order.merchant_id, order.reference))
            if replaced is not None:
                state.by_token.pop(replaced.order_token, None)
            state.orders[(order.merchant_id, order.reference)] = order
            state.by_token[order.order_token] = order
            for key in [k for k, owner in state.seeded_lifecycle.items()
                        if k[0] == order.merchant_id and owner == order.reference]:
                del state.seeded_lifecycle[key]
            for kind, field_name in (("captures", "captureReference"),
                                     ("voids", "voidReference")):
                for item in o.get(kind) or []:
                    state.seeded_lifecycle[(order.merchant_id, field_name,
                                            item[field_name])] = order.reference
            state.callbacks.forget_order(order.account)
            for reference in state.seeded_by_order.pop((order.merchant_id, order.reference), ()):
                state.seeded_references.pop((order.merchant_id, reference), None)
            refunds = []
            for r in o.get("refunds") or []:
                status = r.get("status", STATUS_SUCCESSFUL)
                entry = RefundEntry(session.ids.uuid(), parse_amount(r["amount"]), order.updated,
                                    {"refundReference": r["refundReference"], "status": status,
                                     "description": r.get("description", "")},
                                    reversed=status == STATUS_FAILED)
                refunds.append(entry)
                state.seeded_references[(order.merchant_id, r["refundReference"])] = \
                    order.reference
                state.seeded_by_order.setdefault((order.merchant_id, order.reference), []).append(
                    r["refundReference"])
            _captured, authorised, voided = seed_money(o, state.rules(order.provider))
            session.ledger.open(order.account, order.currency, order.captured, refunds,
                                authorised=authorised, voided=voided)
            for entry in refunds:
                if entry.details["status"] == STATUS_PENDING:
                    # a seeded PENDING refund settles like a new one: callbackAfter from now
                    self._schedule(state, order, entry, now)
        return {"opttyMerchants": len(merchants), "opttyOrders": len(orders)}

    def _order_from_seed(self, session: Session, o: dict[str, Any], now: datetime) -> Order:
        state: OpttyState = session.state(PROVIDER)
        created = parse_instant(o["created"]) if o.get("created") else now
        updated = parse_instant(o["updatedAt"]) if o.get("updatedAt") else created
        rules = state.rules(o["bnplProvider"])
        captured, _authorised, _voided = seed_money(o, rules)
        status = o.get("status", STATUS_SUCCESSFUL)
        order = Order(
            reference=o["orderReference"], merchant_id=o["merchantId"],
            provider=o["bnplProvider"], amount=parse_amount(o["amount"]),
            surcharge=parse_amount(o["surcharge"]) if "surcharge" in o else Decimal(0),
            captured=captured, currency=o["currency"],
            status=status, created=created, updated=updated,
            bnpl_order_id=o.get("bnplOrderId") or session.ids.uuid(),
            transaction_reference=o.get("transactionReference") or session.ids.hex(24),
            order_token=o.get("orderToken") or session.ids.uuid(),
            failure_reason=o.get("failureReason"), reject_reason=o.get("rejectReason"),
            cancelled_by=o.get("cancelledBy"), redirect_url=o.get("dynamicRedirectUrl"),
            callback_url=o.get("dynamicCallbackUrl"))
        if status == STATUS_INITIATED:
            order.expires = created + rules.order_ttl
            state.callbacks.add_timer(order.expires, (order.merchant_id, order.reference))
        for item in o.get("captures") or []:
            order.captures.append(capture_record(
                item["captureReference"], parse_amount(item["amount"]),
                parse_instant(item["createdAt"]) if item.get("createdAt") else updated))
        for item in o.get("voids") or []:
            order.voids.append(void_record(
                item["voidReference"], parse_amount(item["amount"]),
                parse_instant(item["createdAt"]) if item.get("createdAt") else updated))
        return order

    @staticmethod
    def _schedule(state: OpttyState, order: Order, entry: RefundEntry, now: datetime) -> None:
        rules = state.rules(order.provider)
        merchant = state.merchants.get(order.merchant_id)
        state.callbacks.schedule(PendingRefund(
            due=now + rules.callback_after, account=order.account, refund_id=entry.refund_id,
            merchant_id=order.merchant_id, order_reference=order.reference,
            refund_reference=str(entry.details.get("refundReference", "")),
            amount=entry.amount, currency=order.currency,
            transaction_id=order.transaction_reference, final_status=rules.final_status,
            url=merchant.webhook_url if merchant else None))


class ReferenceBusy(Exception):
    """Another request holds this refundReference right now; wait for it, then ask again."""

    def __init__(self, key: tuple[Hashable, ...]) -> None:
        super().__init__(key)
        self.key = key


@dataclass(slots=True)
class RefundClaim:
    """A refundReference held by a request between its checks and its record."""

    key: tuple[Hashable, ...]
    rules: ProviderRules
    done: bool = False


@dataclass(frozen=True, slots=True)
class RefundResult:
    body: dict[str, Any]
    warnings: tuple[str, ...]


class OpttyModel(OpttySeeding):
    """Token issue and verification, order look-up and the refund rules."""

    error_codes = errors.ERROR_CODE_NAMES

    def __init__(self, jwt_secret: str) -> None:
        self.jwt_secret = jwt_secret

    def issue_token(self, session: Session, form: Any) -> dict[str, Any]:
        request = validate_token_request(form)
        state: OpttyState = session.state(PROVIDER)
        merchant = state.by_client_id.get(request.client_id)
        expected = merchant.client_secret if merchant else "\0"
        matches = hmac.compare_digest(request.client_secret.encode("utf-8", "surrogatepass"),
                                      expected.encode("utf-8", "surrogatepass"))
        if merchant is None or not matches:
            raise errors.Unauthorized()
        return token_response(issue_token(merchant.merchant_id, secret=self.jwt_secret,
                                          now=session.clock.now()))

    def authenticate(self, session: Session, authorization: str | None) -> Merchant:
        """passport-jwt + the strategy's validate(): every refusal is a bare 401."""
        found = auth_header_parts(authorization or "")
        if found is None or found[0].lower() != "bearer":
            raise errors.Unauthorized()
        try:
            claims = verify_token(found[1], secret=self.jwt_secret,
                                  now=session.clock.now())
        except InvalidToken:
            raise errors.Unauthorized() from None
        state: OpttyState = session.state(PROVIDER)
        merchant = state.merchants.get(claims.merchant_id)
        if merchant is None:
            raise errors.Unauthorized()
        return merchant

    def order(self, session: Session, merchant: Merchant, reference: str) -> Order:
        state: OpttyState = session.state(PROVIDER)
        order = state.orders.get((merchant.merchant_id, reference))
        if order is None:
            raise errors.NotFound()
        return order

    def begin_refund(self, session: Session, merchant: Merchant, order: Order,
                     refund: OrderRefund) -> RefundClaim:
        """The checks made before any money moves, with the refundReference claimed first.

        A reference held by a request still in flight raises ReferenceBusy: like an insert
        meeting a unique index, the second request waits for the first to commit (then it is a
        duplicate) or to roll back (then it goes ahead), so "already exists" always means that
        a refund with that reference exists.

        Order of checks (Decision): reference already used, order not refundable, currency,
        partial refund on a full-refund-only provider; what is left is checked when recording.
        """
        state: OpttyState = session.state(PROVIDER)
        key = reference_key(merchant.merchant_id, refund.refund_reference)
        if (merchant.merchant_id, refund.refund_reference) in state.seeded_references:
            raise errors.duplicate_reference()
        held = session.ledger.claim(key, session.clock.now())
        if isinstance(held, InFlight):
            raise ReferenceBusy(key)
        if held is not None:
            raise errors.duplicate_reference()
        claim = RefundClaim(key, state.rules(order.provider))
        try:
            if order.status != STATUS_SUCCESSFUL or order.captured <= 0:
                raise errors.not_eligible()
            if refund.currency != order.currency:
                raise errors.currency_mismatch(order.currency)
            if not claim.rules.partial_refunds and refund.amount < order.captured:
                raise errors.partial_refund_not_supported(order.provider)
        except BaseException:
            self.abandon(session, claim)
            raise
        return claim

    def abandon(self, session: Session, claim: RefundClaim) -> None:
        """Gives the reference back when the request ends without recording a refund."""
        if not claim.done:
            session.ledger.release(claim.key)

    def complete_refund(self, session: Session, merchant: Merchant, order: Order,
                        refund: OrderRefund, claim: RefundClaim) -> RefundResult:
        """Records the refund, atomically against what is left; asynchronous providers answer
        PENDING and schedule the REFUND_CALLBACK."""
        state: OpttyState = session.state(PROVIDER)
        rules = claim.rules
        now = session.clock.now()
        # a FAILED asynchronous refund that fell due gives its money back before this one counts
        state.callbacks.settle_due(session, now)
        status = STATUS_PENDING if rules.async_refunds else STATUS_SUCCESSFUL
        callback_url = merchant.webhook_url if rules.async_refunds else None
        view = session.ledger.view(order.account)
        if view is not None and refund.amount > view.remaining:
            raise errors.over_refund(order.currency, view.remaining)  # before an id is taken
        refund_id = session.ids.uuid()
        body: dict[str, Any] = refund_body(order, refund, refund_id, status, now, callback_url)
        details: dict[str, Any] = {"refundReference": refund.refund_reference,
                                   "status": status, "description": refund.description}
        if callback_url is not None:
            details["callbackUrl"] = callback_url
        entry = RefundEntry(refund_id, refund.amount, now, details)
        # the reference stays taken for good: a second use is refused, never replayed
        taken = StoredAnswer(201, (), b"", refund.refund_reference, None)
        try:
            # the atomic step checks again: a concurrent refund may have taken the money since
            session.ledger.refund(order.account, entry, claim.key, taken)
        except RefundExceeded as exc:
            raise errors.over_refund(order.currency, exc.remaining) from None
        claim.done = True
        warnings: tuple[str, ...] = ()
        if rules.async_refunds:
            self._schedule(state, order, entry, now)
            if merchant.webhook_url is None:
                warnings = (WARN_NO_WEBHOOK.format(
                    merchant=merchant.merchant_id, status=rules.final_status,
                    after=_duration_text(rules.callback_after)),)
        return RefundResult(body, warnings)

    def order_body(self, session: Session, order: Order) -> dict[str, Any]:
        state: OpttyState = session.state(PROVIDER)
        state.callbacks.settle_due(session, session.clock.now())
        view = session.ledger.view(order.account)
        assert view is not None
        capture_state = capture_status(view)
        # the docs' fields in the docs' order (get-orders), then the sandbox's extensions
        return {
            "merchantReference": order.reference,
            "status": order.status,
            "amount": f"{order.amount:.2f}",
            "surcharge": f"{order.surcharge:.2f}",
            "currency": order.currency,
            "provider": order.provider,
            "updatedAt": iso_millis(order.updated),
            "failureReason": order.failure_reason,
            "bnplOrderId": order.bnpl_order_id,
            "transactionReference": order.transaction_reference,
            "rejectReason": order.reject_reason,
            "partnerConfiguration": {},
            "cancelledBy": order.cancelled_by,
            "captureStatus": capture_state,
            # sandbox extensions: the money as the sandbox tracks it
            "capturedAmount": f"{view.captured:.2f}",
            "refundedAmount": f"{view.refunded:.2f}",
            "refundableAmount": f"{view.remaining:.2f}",
            "refunds": [stored_refund_body(order, e) for e in view.refunds],
            "authorisedAmount": f"{view.authorised:.2f}",
            "voidedAmount": f"{view.voided:.2f}",
            "openToCaptureAmount": f"{view.open_to_capture:.2f}",
            "captures": list(order.captures),
            "voids": list(order.voids),
        }

    def dashboard(self, session: Session) -> list[dict[str, Any]]:
        """The session's orders as the dashboard lists them (admin/ui.py): money as text."""
        state: OpttyState = session.state(PROVIDER)
        state.callbacks.settle_due(session, session.clock.now())  # as GET /orders/{ref} does
        rows: list[dict[str, Any]] = []
        for order in list(state.orders.values()):
            view = session.ledger.view(order.account)
            if view is None:
                continue
            rows.append({
                "provider": PROVIDER, "kind": "order", "id": order.reference,
                "merchant": order.merchant_id, "state": order.status,
                "currency": order.currency, "amount": f"{order.amount + order.surcharge:.2f}",
                "captured": f"{view.captured:.2f}", "refunded": f"{view.refunded:.2f}",
                "left": f"{view.remaining:.2f}",
                "refunds": [{"id": e.refund_id, "at": iso_millis(e.at),
                             "amount": f"{e.amount:.2f}",
                             "reference": e.details.get("refundReference", ""),
                             "status": e.details.get("status", STATUS_SUCCESSFUL)}
                            for e in view.refunds],
            })
        return rows


def _duration_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s of session time"


def refund_body(order: Order, refund: OrderRefund, refund_id: str, status: str,
                at: datetime, callback_url: str | None) -> dict[str, Any]:
    # Decision: the newer schema's types (strings, ISO 8601 date), reference echoed unchanged
    body = {
        "refundReference": refund.refund_reference,
        "bnplProvider": order.provider,
        "refundedAmount": f"{refund.amount:.2f}",
        "refundStatus": status,
        "description": refund.description,
        "refundDate": iso_millis(at),
        "bnplRefundId": refund_id,
    }
    if callback_url is not None:
        # Decision: where the REFUND_CALLBACK will be POSTed, i.e. the merchant's webhookUrl
        body["callbackUrl"] = callback_url
    return body


def stored_refund_body(order: Order, entry: RefundEntry) -> dict[str, Any]:
    body = {
        "refundReference": entry.details.get("refundReference", ""),
        "bnplProvider": order.provider,
        "refundedAmount": f"{entry.amount:.2f}",
        "refundStatus": entry.details.get("status", STATUS_SUCCESSFUL),
        "description": entry.details.get("description", ""),
        "refundDate": iso_millis(entry.at),
        "bnplRefundId": entry.refund_id,
    }
    if entry.details.get("callbackUrl"):
        body["callbackUrl"] = entry.details["callbackUrl"]
    return body
