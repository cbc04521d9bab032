"""Optty's declaration for the provider registry (mock_server.core.providers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mock_server.core import scenarios
from mock_server.core.providers import Built, ScenarioRules, fragment
from mock_server.core.scenarios import NodePath, SeedChecks, format_path
from mock_server.optty import errors

if TYPE_CHECKING:
    from mock_server.core.openapi import Spec
    from mock_server.settings import Settings


def _money(checks: SeedChecks, name: str,
           section: dict[str, Any]) -> Iterator[tuple[NodePath, str]]:
    """An order captured no more than amount + surcharge, refunded no more than it captured."""
    for index, order in scenarios.items(section.get("orders")):
        at: NodePath = (name, "orders", index)
        amount = scenarios.money(order.get("amount"))
        surcharge = scenarios.money(order.get("surcharge", "0"))
        captured = scenarios.money(order.get("captured"))
        total = amount + surcharge if amount is not None and surcharge is not None else None
        if total is not None and captured is not None and captured > total:
            yield ((*at, "captured"), f"{format_path((*at, 'captured'))}: captured "
                   f"{scenarios.text(captured)} is more than amount + surcharge "
                   f"{scenarios.text(total)}")
        yield from checks.refunds_within(at, order, captured if captured is not None else total,
                                         _gave_money_back)


def _gave_money_back(refund: dict[str, Any]) -> bool:
    # a FAILED refund gave no money back, so it does not count against what was captured
    return refund.get("status") != "FAILED"


class OpttyProvider:
    name = "optty"
    spec_name = "optty"
    # the shopper's pages write their own journal name
    journal_names = ("optty", "portal")
    error_codes = errors.ERROR_CODE_NAMES
    scenario_fragment = fragment(__package__ or "mock_server.optty")
    scenario_rules = ScenarioRules(
        text_fields=frozenset({"amount", "captured", "clientId", "clientSecret", "merchantId",
                               "orderReference", "refundReference", "surcharge", "refundable"}),
        unique=(("merchants", "merchantId", "merchantId"),
                ("orders", "orderReference", "orderReference")),
        # refundReference is unique per merchant at Optty (reference: optty.md)
        unique_refunds=(("orders", "refundReference", lambda order: order.get("merchantId")),),
        money=_money,
    )

    def build(self, spec: Spec, settings: Settings) -> Built:
        from mock_server.optty.portal import OpttyPortal
        from mock_server.optty.routes import OpttyApp

        surface = OpttyApp(spec, settings)
        return Built(surface, surface.model, pages=[OpttyPortal(surface)],
                     admin={"opttyOrderOutcome": _outcome(surface)})


def _outcome(surface: Any) -> Any:
    """POST /__admin/optty/orders/{orderReference}/outcome: the shopper's step, headless."""
    from mock_server.core.providers import AdminAnswer, AdminRefusal
    from mock_server.optty import admin_outcome

    def outcome(ctx: Any, body: Any) -> AdminAnswer:
        try:
            payload, result = admin_outcome.apply(surface.lifecycle, ctx.session,
                                                  ctx.params["orderReference"], body())
        except admin_outcome.OutcomeError as err:
            raise AdminRefusal(err.status, err.error, err.message) from None
        return AdminAnswer(payload, tuple(result.warnings))

    return outcome
