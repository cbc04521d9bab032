"""Afterpay's declaration for the provider registry (mock_server.core.providers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mock_server.afterpay import errors
from mock_server.core import scenarios
from mock_server.core.providers import Built, ScenarioRules, fragment
from mock_server.core.scenarios import NodePath, SeedChecks, format_path

if TYPE_CHECKING:
    from mock_server.core.openapi import Spec
    from mock_server.settings import Settings


def _money(checks: SeedChecks, name: str,
           section: dict[str, Any]) -> Iterator[tuple[NodePath, str]]:
    """A payment captured no more than its amount, refunded no more than it captured."""
    for index, payment in scenarios.items(section.get("payments")):
        at: NodePath = (name, "payments", index)
        amount = scenarios.money(payment.get("amount"))
        captured = scenarios.money(payment.get("captured"))
        if amount is not None and captured is not None and captured > amount:
            yield ((*at, "captured"), f"{format_path((*at, 'captured'))}: captured "
                   f"{scenarios.text(captured)} is more than the amount {scenarios.text(amount)}")
        yield from checks.refunds_within(at, payment,
                                         captured if captured is not None else amount)


class AfterpayProvider:
    name = "afterpay"
    spec_name = "afterpay"
    # the shopper's pages write their own journal name
    journal_names = ("afterpay", "portal")
    error_codes = errors.ERROR_CODE_NAMES
    scenario_fragment = fragment(__package__ or "mock_server.afterpay")
    scenario_rules = ScenarioRules(
        text_fields=frozenset({"amount", "captured", "id", "merchantId", "merchantReference",
                               "refundId", "refundMerchantReference", "requestId", "secretKey",
                               "token"}),
        unique=(("merchants", "merchantId", "merchantId"), ("payments", "id", "payment id")),
        unique_refunds=(("payments", "refundId", lambda payment: ""),),
        money=_money,
    )

    def build(self, spec: Spec, settings: Settings) -> Built:
        from mock_server.afterpay.portal import AfterpayPortal
        from mock_server.afterpay.routes import AfterpayApp

        surface = AfterpayApp(spec)
        return Built(surface, surface.model, pages=[AfterpayPortal(surface.lifecycle)],
                     admin={"confirmAfterpayCheckout": _consumer(surface, "confirm"),
                            "cancelAfterpayCheckout": _consumer(surface, "cancel")})


def _consumer(surface: Any, action: str) -> Any:
    """POST /__admin/afterpay/checkouts/{token}/confirm|cancel: the shopper's step, headless
    (mock_server.afterpay.portal)."""
    from mock_server.afterpay.lifecycle import ConsumerActionError
    from mock_server.afterpay.portal import admin_consumer_action
    from mock_server.core.providers import AdminAnswer, AdminRefusal

    def consumer(ctx: Any, body: Any) -> AdminAnswer:
        card = body().get("card", "approved") if action == "confirm" else None
        try:
            return AdminAnswer(admin_consumer_action(surface.lifecycle, ctx, action, card))
        except ConsumerActionError as err:
            raise AdminRefusal(err.status, err.error, err.message) from None

    return consumer
