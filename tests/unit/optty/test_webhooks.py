"""The callback queue: settlement on the session clock, the outbox, retries and their bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.core.clock import SessionClock
from mock_server.core.ids import IdSource
from mock_server.core.journal import Journal
from mock_server.core.ledger import InMemoryLedger, RefundEntry
from mock_server.core.world import Session
from mock_server.optty.webhooks import (
    MAX_ATTEMPTS,
    CallbackQueue,
    PendingRefund,
    callback_payload,
    retry_delay,
)
from mock_server.settings import Settings

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ACCOUNT = ("optty", "m-1", "ORD-1")


@pytest.fixture
def session() -> Session:
    session = Session("s", Settings(), SessionClock(lambda: T0), IdSource(1, "s"),
                      InMemoryLedger(), Journal(100))
    session.ledger.open(ACCOUNT, "AUD", Decimal("60.00"), [
        RefundEntry("rf-1", Decimal("25.00"), T0, {"refundReference": "r-1",
                                                    "status": "PENDING"})])
    return session


def pending(url: str | None = "http://127.0.0.1:9/hook", final: str = "SUCCESSFUL",
            due: datetime = T0 + timedelta(seconds=2), refund_id: str = "rf-1") -> PendingRefund:
    return PendingRefund(due=due, account=ACCOUNT, refund_id=refund_id, merchant_id="m-1",
                         order_reference="ORD-1", refund_reference="r-1",
                         amount=Decimal("25.00"), currency="AUD", transaction_id="TX-1",
                         final_status=final, url=url)


def test_retry_delays_double_and_are_capped() -> None:
    assert [retry_delay(n).total_seconds() for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert retry_delay(40) == timedelta(minutes=5)


def test_the_payload() -> None:
    assert callback_payload(pending()) == {"event": "REFUND_CALLBACK", "data": {
        "refundReference": "r-1", "orderReference": "ORD-1", "status": "SUCCESSFUL",
        "refundedAmount": "25.00", "currency": "AUD", "bnplRefundId": "rf-1",
        "transactionId": "TX-1", "updatedAt": "2026-11-01T09:00:02.000Z"}}


def test_nothing_settles_before_it_is_due(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending())
    assert queue.settle_due(session, T0 + timedelta(seconds=1.999)) == 0
    assert queue.next_wake() == T0 + timedelta(seconds=2)
    assert session.ledger.view(ACCOUNT).refunds[0].details["status"] == "PENDING"


def test_settling_makes_the_refund_final_and_queues_the_callback(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending())
    assert queue.settle_due(session, T0 + timedelta(seconds=5)) == 1
    view = session.ledger.view(ACCOUNT)
    assert view.refunds[0].details["status"] == "SUCCESSFUL"
    assert view.refunds[0].details["settledAt"] == "2026-11-01T09:00:02.000Z"
    assert view.refunded == Decimal("25.00")
    assert queue.settle_due(session, T0 + timedelta(seconds=9)) == 0  # only once
    [delivery] = queue.take_due(T0 + timedelta(seconds=5))
    assert delivery.in_flight
    assert queue.take_due(T0 + timedelta(seconds=5)) == []
    assert queue.next_wake() is None  # nothing to wake for while it is in flight


def test_a_failed_refund_gives_the_money_back(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending(final="FAILED"))
    queue.settle_due(session, T0 + timedelta(seconds=2))
    view = session.ledger.view(ACCOUNT)
    assert view.refunded == 0
    assert view.refunds[0].reversed
    assert view.refunds[0].details["status"] == "FAILED"


def test_without_a_url_it_is_journaled_as_not_delivered(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending(url=None))
    queue.settle_due(session, T0 + timedelta(seconds=2))
    assert queue.idle()
    _, [entry] = session.journal.query()
    assert entry.kind == "callback"
    assert entry.warnings == ("REFUND_CALLBACK not delivered: merchant m-1 has no webhookUrl",)
    assert '"event":"REFUND_CALLBACK"' in entry.body


def test_failures_back_off_until_the_attempts_run_out(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending())
    now = T0 + timedelta(seconds=2)
    queue.settle_due(session, now)
    schedule = []
    for _ in range(MAX_ATTEMPTS):
        [delivery] = queue.take_due(now)
        next_at = queue.attempted(delivery, ok=False, now=now, status=500, error="HTTP 500")
        if next_at is None:
            break
        schedule.append((next_at - now).total_seconds())
        assert queue.take_due(next_at - timedelta(milliseconds=1)) == []
        now = next_at
    assert schedule == [1, 2, 4, 8, 16]
    assert delivery.attempts == MAX_ATTEMPTS
    assert queue.idle()


def test_a_success_ends_the_delivery(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending())
    queue.settle_due(session, T0 + timedelta(seconds=2))
    [delivery] = queue.take_due(T0 + timedelta(seconds=2))
    assert queue.attempted(delivery, ok=True, now=T0, status=200, error=None) is None
    assert queue.idle()


def test_snapshot_reports_each_state(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending(due=T0 + timedelta(hours=1)))
    session.ledger.open(("optty", "m-1", "ORD-2"), "AUD", Decimal(10), [
        RefundEntry("rf-2", Decimal(5), T0, {})])
    other = pending(refund_id="rf-2")
    other.account = ("optty", "m-1", "ORD-2")
    queue.schedule(other)
    queue.settle_due(session, T0 + timedelta(seconds=2))
    [delivery] = queue.take_due(T0 + timedelta(seconds=2))
    queue.attempted(delivery, ok=False, now=T0 + timedelta(seconds=2), status=None,
                    error="ConnectError: refused")
    rows = queue.snapshot()
    assert [(r["state"], r["attempts"]) for r in rows] == [("scheduled", 0), ("retrying", 1)]
    assert rows[0]["dueAt"] == "2026-11-01T10:00:00.000Z"
    assert rows[1]["nextAttemptAt"] == "2026-11-01T09:00:03.000Z"
    assert rows[1]["lastError"] == "ConnectError: refused"


def test_forget_order_drops_its_refunds(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending())
    queue.forget_order(ACCOUNT)
    assert queue.idle()


def test_a_refund_that_no_longer_exists_is_skipped(session: Session) -> None:
    queue = CallbackQueue()
    queue.schedule(pending(refund_id="gone"))
    assert queue.settle_due(session, T0 + timedelta(seconds=2)) == 1
    assert queue.idle()
    assert len(session.journal) == 0
