"""Capture, void and refund of one Optty order racing in threads, through the model's own
steps (the checks, then the ledger's atomic record): each thread is held inside the ledger's
atomic step until another has been turned away by its lock (tests/interleave.py), so a step
that is not atomic, or a record that bypasses the ledger's step, is caught every run."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from mock_server.app import create_app
from mock_server.optty import errors
from mock_server.optty.lifecycle import CAPTURE, VOID
from mock_server.optty.models import PROVIDER, ReferenceBusy
from mock_server.optty.order_dtos import Movement
from mock_server.optty.validation import OrderRefund
from mock_server.settings import Settings
from tests.conftest import ManualTime
from tests.interleave import ExclusionProbe, probe_ledger

WORKERS = 6
ROUNDS = 12


def _world() -> tuple[Any, Any, Any, Any]:
    app = create_app(Settings(seed=5), time_source=ManualTime())
    optty = next(p for p in app.providers if p.name == "optty")
    session = app.world.session("races")
    from mock_server.core.scenarios import parse_scenario

    app.world.load(session, parse_scenario(b"""
name: races
optty:
  providers: {ZIP_AU: {capture: deferred}}
  orders:
    - {orderReference: RACE, merchantId: sandbox-merchant, bnplProvider: ZIP_AU,
       amount: "60.00", currency: AUD, status: SUCCESSFUL}
""", "races.yaml", error_codes=app.world.error_codes))
    state = session.state(PROVIDER)
    merchant = state.merchants["sandbox-merchant"]
    return optty, session, merchant, state.orders[("sandbox-merchant", "RACE")]


def test_captures_voids_and_refunds_of_one_order_racing_keep_the_books() -> None:
    optty, session, merchant, order = _world()
    lifecycle, model = optty.lifecycle, optty.model
    probe = ExclusionProbe(workers=WORKERS)
    probe_ledger(session.ledger, probe)
    done: list[str] = []

    def worker(n: int) -> None:
        with probe.worker():
            for k in range(ROUNDS):
                reference = f"{n}-{k}"
                try:
                    if n % 3 == 0:
                        move = Movement(f"c-{reference}", Decimal("1.00"), "")
                        claim = lifecycle.begin(session, merchant, order, CAPTURE, move)
                        try:
                            lifecycle.capture(session, order, move, claim)
                        finally:
                            lifecycle.abandon(session, claim)
                        done.append("capture")
                    elif n % 3 == 1:
                        move = Movement(f"v-{reference}", Decimal("1.00"), "")
                        claim = lifecycle.begin(session, merchant, order, VOID, move)
                        try:
                            lifecycle.void(session, order, move, claim)
                        finally:
                            lifecycle.abandon(session, claim)
                        done.append("void")
                    else:
                        refund = OrderRefund(f"r-{reference}", Decimal("1.00"), "AUD", "", False)
                        claim = model.begin_refund(session, merchant, order, refund)
                        try:
                            model.complete_refund(session, merchant, order, refund, claim)
                        finally:
                            model.abandon(session, claim)
                        done.append("refund")
                except (errors.BadRequest, ReferenceBusy):
                    pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view = session.ledger.view(order.account)
    assert probe.overlaps == 0
    # every success went through one of the ledger's atomic steps, and only those
    assert probe.visits == len(done)
    assert view.captured == done.count("capture") == len(order.captures)
    assert view.voided == done.count("void") == len(order.voids)
    assert view.refunded == done.count("refund") == len(view.refunds)
    assert view.captured + view.voided <= view.authorised == Decimal("60.00")
    assert view.refunded <= view.captured
    assert order.captured == view.captured
