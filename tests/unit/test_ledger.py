from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.core.ledger import (
    IN_FLIGHT,
    CaptureExceeded,
    InMemoryLedger,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
)
from tests.interleave import ExclusionProbe, probe_ledger

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("afterpay", "m1", "p1")


def _refund(amount: str) -> RefundEntry:
    return RefundEntry("r", Decimal(amount), NOW)


def test_refund_records_and_reduces_what_is_left() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("100.00"))
    ledger.refund(KEY, _refund("30.00"))
    view = ledger.view(KEY)
    assert view is not None
    assert view.refunded == Decimal("30.00")
    assert view.remaining == Decimal("70.00")
    assert len(view.refunds) == 1


def test_refund_above_what_is_left_records_nothing() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("10.00"))
    with pytest.raises(RefundExceeded) as caught:
        ledger.refund(KEY, _refund("10.01"))
    assert caught.value.remaining == Decimal("10.00")
    view = ledger.view(KEY)
    assert view is not None and view.refunds == () and view.refunded == 0


def test_seeded_refunds_count_against_captured() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("50"), [RefundEntry("a", Decimal("20"), NOW)])
    with pytest.raises(RefundExceeded):
        ledger.refund(KEY, _refund("30.01"))


def test_claim_then_store_then_replay() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("100"))
    idem = ("afterpay", "m1", "req", "ref")
    assert ledger.claim(idem, NOW) is None
    assert ledger.claim(idem, NOW) is IN_FLIGHT
    answer = StoredAnswer(201, (), b"{}", "fp", NOW + timedelta(days=7))
    ledger.refund(KEY, _refund("1"), idem, answer)
    assert ledger.claim(idem, NOW) == answer


def test_stored_answer_expires() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("100"))
    idem = ("k",)
    ledger.claim(idem, NOW)
    answer = StoredAnswer(201, (), b"{}", "fp", NOW + timedelta(days=7))
    ledger.refund(KEY, _refund("1"), idem, answer)
    assert ledger.claim(idem, NOW + timedelta(days=7)) is None


def test_release_frees_a_failed_claim() -> None:
    ledger = InMemoryLedger()
    ledger.claim(("k",), NOW)
    ledger.release(("k",))
    assert ledger.claim(("k",), NOW) is None


def test_settle_reverse_gives_the_money_back() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("10"))
    ledger.refund(KEY, RefundEntry("x", Decimal("10"), NOW))
    ledger.settle(KEY, "x", {"status": "FAILED"}, reverse=True)
    view = ledger.view(KEY)
    assert view is not None and view.remaining == Decimal("10")
    assert view.refunds[0].details["status"] == "FAILED"


def test_threads_racing_never_exceed_captured() -> None:
    # every refund stays inside the atomic step until another thread has been turned away by the
    # ledger's lock (or, were the step not atomic, has come in too: an overlap)
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("100.00"))
    probe = ExclusionProbe(workers=8)
    probe_ledger(ledger, probe)
    successes: list[int] = []

    def worker() -> None:
        with probe.worker():
            for _ in range(45):
                try:
                    ledger.refund(KEY, _refund("0.30"))
                    successes.append(1)
                except RefundExceeded:
                    pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view = ledger.view(KEY)
    assert view is not None
    assert probe.overlaps == 0 and probe.visits == 333
    assert len(successes) == 333  # floor(100 / 0.30)
    assert view.refunded == Decimal("99.90") <= view.captured
    assert len(view.refunds) == 333


def test_the_probe_sees_an_atomic_step_that_is_not_atomic() -> None:
    # the same race on a ledger whose lock does nothing: the probe forces the overlap every time,
    # so the test above cannot pass by luck
    ledger = InMemoryLedger()
    ledger._lock = contextlib.nullcontext()  # type: ignore[assignment]
    ledger.open(KEY, "AUD", Decimal("0.60"))
    probe = ExclusionProbe(workers=3)
    probe_ledger(ledger, probe)
    successes: list[int] = []

    def worker() -> None:
        with probe.worker():
            try:
                ledger.refund(KEY, _refund("0.30"))
                successes.append(1)
            except RefundExceeded:
                pass

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert probe.overlaps >= 1


def test_stored_refunds_add_nothing_for_the_garbage_collector_to_walk() -> None:
    """What a refund leaves in the ledger (entry, details, idempotent answer, key, fingerprint)
    is untracked once collected, so a large ledger does not lengthen collections."""
    import gc

    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("1000000.00"))

    def add(start: int, count: int) -> None:
        for i in range(start, start + count):
            details = {"requestId": f"req-{i}", "merchantReference": f"ref-{i}"}
            answer = StoredAnswer(201, (), b"{}", ("p1", "1.00", "AUD", f"req-{i}", None), NOW)
            ledger.refund(KEY, RefundEntry(f"r{i}", Decimal("1.00"), NOW, details),
                          ("afterpay", "m1", f"req-{i}", f"ref-{i}"), answer)

    add(0, 10)
    for _ in range(3):
        gc.collect()
    before = len(gc.get_objects())
    add(10, 2000)
    for _ in range(3):
        gc.collect()
    assert len(gc.get_objects()) - before < 100
    view = ledger.view(KEY)
    assert view is not None and len(view.refunds) == 2010
    assert view.refunds[-1].details == {"requestId": "req-2009", "merchantReference": "ref-2009"}
    replay = ledger.claim(("afterpay", "m1", "req-5", "ref-5"), NOW - timedelta(days=1))
    assert isinstance(replay, StoredAnswer) and replay.fingerprint[3] == "req-5"


# -- capture and void ----------------------------------------------------------------------------

def test_an_authorised_account_captures_in_parts_and_voids_the_rest() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("0"), authorised=Decimal("100.00"))
    with pytest.raises(RefundExceeded):  # nothing captured: nothing to refund
        ledger.refund(KEY, _refund("0.01"))
    view = ledger.capture(KEY, Decimal("30.00"))
    assert (view.captured, view.open_to_capture, view.remaining) == (
        Decimal("30.00"), Decimal("70.00"), Decimal("30.00"))
    view = ledger.void(KEY)
    assert (view.captured, view.voided, view.open_to_capture) == (
        Decimal("30.00"), Decimal("70.00"), Decimal("0.00"))
    with pytest.raises(CaptureExceeded) as caught:
        ledger.capture(KEY, Decimal("0.01"))
    assert caught.value.open_to_capture == 0
    ledger.refund(KEY, _refund("30.00"))  # voided money is never refundable, captured money is
    with pytest.raises(RefundExceeded):
        ledger.refund(KEY, _refund("0.01"))


def test_a_capture_or_void_above_what_is_open_records_nothing() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("0"), authorised=Decimal("10.00"))
    idem = ("capture", "k")
    with pytest.raises(CaptureExceeded):
        ledger.capture(KEY, Decimal("10.01"), idem, StoredAnswer(201, (), b"{}", "fp", None))
    with pytest.raises(CaptureExceeded):
        ledger.void(KEY, Decimal("10.01"))
    view = ledger.view(KEY)
    assert view is not None and (view.captured, view.voided) == (0, 0)
    assert ledger.claim(idem, NOW) is None  # no answer was kept for the refused capture


def test_a_capture_keeps_its_answer_for_replay() -> None:
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("0"), authorised=Decimal("10.00"))
    idem = ("capture", "k")
    assert ledger.claim(idem, NOW) is None
    answer = StoredAnswer(201, (), b'{"captured":"4.00"}', "fp", None)
    ledger.capture(KEY, Decimal("4.00"), idem, answer)
    assert ledger.claim(idem, NOW) == answer


def test_an_account_cannot_be_opened_with_more_captured_and_voided_than_authorised() -> None:
    with pytest.raises(CaptureExceeded):
        InMemoryLedger().open(KEY, "AUD", Decimal("60"), authorised=Decimal("100"),
                              voided=Decimal("40.01"))


def test_captures_voids_and_refunds_racing_keep_the_books() -> None:
    # 8 threads capture, void and refund one account at once, each forced to stay inside the
    # atomic step until another is turned away by the lock
    ledger = InMemoryLedger()
    ledger.open(KEY, "AUD", Decimal("0"), authorised=Decimal("50.00"))
    probe = ExclusionProbe(workers=8)
    probe_ledger(ledger, probe)
    done: list[str] = []

    def worker(n: int) -> None:
        with probe.worker():
            for _ in range(10):
                try:
                    if n % 4 == 3:
                        ledger.void(KEY, Decimal("1.00"))
                        done.append("void")
                    elif n % 4 == 2:
                        ledger.refund(KEY, _refund("1.00"))
                        done.append("refund")
                    else:
                        ledger.capture(KEY, Decimal("1.00"))
                        done.append("capture")
                except (CaptureExceeded, RefundExceeded):
                    pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view = ledger.view(KEY)
    assert view is not None
    assert probe.overlaps == 0
    assert view.captured == done.count("capture") and view.voided == done.count("void")
    assert view.refunded == done.count("refund")
    assert view.captured + view.voided <= view.authorised
    assert view.refunded <= view.captured
