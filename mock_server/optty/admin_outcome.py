"""`POST /__admin/optty/orders/{orderReference}/outcome`: the shopper's step without a browser
(reference/optty-lifecycle.md, Decision 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_server.core.scenarios import parse_duration
from mock_server.core.world import Session
from mock_server.optty.lifecycle import OrderLifecycle, OutcomeRefused, OutcomeResult
from mock_server.optty.models import PROVIDER, OpttyState, Order


@dataclass
class OutcomeError(Exception):
    status: int
    error: str
    message: str


def find_order(session: Session, reference: str, merchant_id: str | None) -> Order:
    state: OpttyState = session.state(PROVIDER)
    if merchant_id is not None:
        found = [o for o in (state.orders.get((merchant_id, reference)),) if o is not None]
    else:
        found = [o for (_m, ref), o in state.orders.items() if ref == reference]
    if not found:
        raise OutcomeError(404, "not_found",
                           f"no Optty order {reference!r} in session {session.name!r}"
                           + (f" for merchant {merchant_id!r}" if merchant_id else ""))
    if len(found) > 1:
        merchants = ", ".join(sorted(o.merchant_id for o in found))
        raise OutcomeError(409, "ambiguous_order",
                           f"order {reference!r} exists for several merchants ({merchants}); "
                           "name one with merchantId")
    return found[0]


def apply(lifecycle: OrderLifecycle, session: Session, reference: str,
          body: dict[str, Any]) -> tuple[dict[str, Any], OutcomeResult]:
    """The body is already valid against openapi/admin.yaml (status enum, field types)."""
    order = find_order(session, reference, body.get("merchantId"))
    after = None
    if "after" in body:
        try:
            after = parse_duration(body["after"])
        except ValueError as exc:
            raise OutcomeError(400, "invalid_request", f"after: {exc}") from None
    if ("after" in body or "finalStatus" in body) and body["status"] != "PENDING":
        raise OutcomeError(400, "invalid_request",
                           "after and finalStatus go with status PENDING only")
    if order.status in ("INITIATED", "PENDING"):
        lifecycle.advance(session, order)
    try:
        result = lifecycle.outcome(session, order, body["status"],
                                   final_status=body.get("finalStatus"), after=after,
                                   reason=body.get("reason"))
    except OutcomeRefused as refused:
        raise OutcomeError(409, "order_final",
                           f"order {reference!r} is already {refused.status}; its outcome "
                           "cannot change") from None
    return {"orderReference": order.reference, "merchantId": order.merchant_id,
            "status": order.status, "redirectUrl": result.redirect_url}, result
