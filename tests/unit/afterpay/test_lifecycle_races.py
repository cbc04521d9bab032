"""Capture, void and refund racing on one Afterpay payment: each thread is held inside the
ledger's atomic step until another has been turned away by its lock (tests/interleave.py), so a
step that is not atomic overlaps every time. Never more captured than authorised, never more
refunded than captured, and the payment record (state, events, voids) agrees with the books."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from mock_server.afterpay import errors
from mock_server.afterpay.checkout import CaptureRequest, VoidRequest
from mock_server.afterpay.lifecycle import Lifecycle
from mock_server.afterpay.requests import RefundRequest
from mock_server.app import create_app
from mock_server.core.scenarios import parse_scenario
from mock_server.settings import Settings
from tests.interleave import ExclusionProbe, probe_ledger

ORDER = "100101799001"
SCENARIO = f"""
name: race
afterpay:
  payments:
    - {{id: "{ORDER}", merchantId: "100101382", amount: "50.00", state: AUTH_APPROVED}}
"""
WORKERS = 8


def _setup() -> tuple[Any, Any, Lifecycle, Any]:
    app = create_app(Settings(seed=11))
    session = app.world.session("race")
    app.world.load(session, parse_scenario(SCENARIO, "race.yaml"))
    afterpay = next(p for p in app.providers if hasattr(p, "lifecycle"))
    payment = session.state("afterpay").payments[ORDER]
    return session, afterpay.model, afterpay.lifecycle, payment


def _race(session: Any, model: Any, lifecycle: Lifecycle, payment: Any, probe: ExclusionProbe,
          rounds: int = 10) -> list[str]:
    done: list[str] = []
    one = Decimal("1.00")

    def worker(n: int) -> None:
        with probe.worker():
            for _ in range(rounds):
                try:
                    if n % 4 == 3:
                        lifecycle.void(session, payment, VoidRequest(one, "AUD", None, None),
                                       None)
                        done.append("void")
                    elif n % 4 == 2:
                        model.refund(session, payment,
                                     RefundRequest(one, "AUD", None, None, None), None)
                        done.append("refund")
                    else:
                        lifecycle.capture(session, payment,
                                          CaptureRequest(one, "AUD", None, None, None), None)
                        done.append("capture")
                except errors.AfterpayError:
                    pass  # refused: more than is open / left, or nothing captured yet

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def test_capture_void_and_refund_racing_on_one_payment_keep_the_books() -> None:
    session, model, lifecycle, payment = _setup()
    probe = ExclusionProbe(workers=WORKERS)
    probe_ledger(session.ledger, probe)
    done = _race(session, model, lifecycle, payment, probe)
    view = session.ledger.view(payment.account)
    assert probe.overlaps == 0 and probe.visits > 0
    # 40 captures and 20 voids of 1.00 were tried against 50.00 authorised
    assert view.captured + view.voided <= view.authorised == Decimal("50.00")
    assert view.captured == done.count("capture") and view.voided == done.count("void")
    assert view.refunded == done.count("refund") <= view.captured
    assert done.count("capture") + done.count("void") == 50  # everything open was used
    # the payment record agrees with the books
    events = [e["type"] for e in payment.events]
    assert events.count("CAPTURED") == done.count("capture")
    assert events.count("VOIDED") == done.count("void") == len(payment.voids)
    assert payment.captured == view.captured
    assert payment.state == ("CAPTURED" if view.captured else "VOIDED")
    body = model.payment_body(session, payment)
    assert body["openToCaptureAmount"]["amount"] == "0.00"
    assert Decimal(body["openToRefundAmount"]["amount"]) == view.captured - view.refunded


def test_the_race_catches_a_capture_step_that_is_not_atomic() -> None:
    # the same race on a ledger whose lock does nothing: the probe forces the overlap that the
    # test above forbids (so that test fails when the step is not atomic)
    session, model, lifecycle, payment = _setup()
    ledger = session.ledger

    class NoLock:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    ledger._lock = NoLock()
    probe = ExclusionProbe(workers=3)
    probe_ledger(ledger, probe)
    done: list[str] = []

    def worker() -> None:
        with probe.worker():
            try:
                lifecycle.capture(session, payment,
                                  CaptureRequest(Decimal("10.00"), "AUD", None, None, None),
                                  None)
                done.append("capture")
            except errors.AfterpayError:
                pass

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert probe.overlaps >= 1


def test_a_late_update_from_an_older_view_never_moves_the_state_back() -> None:
    # two captures answer in the other order than the ledger recorded them: the one whose view
    # still had money open writes last, and must not undo the CAPTURED of the final one
    from mock_server.afterpay.lifecycle import _advance

    _session, _model, _lifecycle, payment = _setup()
    _advance(payment, "CAPTURED")
    _advance(payment, "PARTIALLY_CAPTURED")
    assert payment.state == "CAPTURED"
    _advance(payment, "VOIDED")  # equal rank: the void that closed an uncaptured auth
    assert payment.state == "VOIDED"
