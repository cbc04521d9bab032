"""One contract for every ledger store: memory, an SQLite file, a real Redis server. The same
money rules, idempotency records and re-seed rule; and for the shared stores, the same guarantee
between processes that the in-memory ledger gives between threads."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mock_server.core.ledger import (
    IN_FLIGHT,
    CaptureExceeded,
    ReferenceTaken,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
    UnknownAccount,
)
from tests.stores.conftest import LedgerMaker, open_ledger

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
KEY = ("afterpay", "100101382", "100101785223")
IDEM = ("afterpay", "100101382", "req-1", "ref-1")


def entry(refund_id: str, amount: str, **details: str) -> RefundEntry:
    return RefundEntry(refund_id, Decimal(amount), NOW, details)


def answer(body: bytes = b'{"refundId":"1"}', ttl: timedelta | None = timedelta(days=7)
           ) -> StoredAnswer:
    return StoredAnswer(201, (("content-type", "application/json"),), body,
                        ("100101785223", "10.00", "AUD", "req-1", "ref-1", None),
                        NOW + ttl if ttl else None)


def test_a_refund_is_recorded_exactly(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("120.00"))
    ledger.refund(KEY, entry("1", "10.01", requestId="r", status="SUCCESSFUL"))
    view = make_ledger().view(KEY)  # read back through another handle on the same store
    assert view is not None
    assert (view.currency, view.captured, view.refunded, view.remaining) == (
        "AUD", Decimal("120.00"), Decimal("10.01"), Decimal("109.99"))
    assert view.refunds == (entry("1", "10.01", requestId="r", status="SUCCESSFUL"),)
    assert view.refunds[0].at == NOW


def test_a_refund_above_what_is_left_records_nothing(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("10.00"), [entry("s", "4.00")])
    with pytest.raises(RefundExceeded) as caught:
        ledger.refund(KEY, entry("1", "6.01"), IDEM, answer())
    assert caught.value.remaining == Decimal("6.00")
    view = ledger.view(KEY)
    assert view is not None and [e.refund_id for e in view.refunds] == ["s"]
    assert ledger.claim(IDEM, NOW) is None  # no answer was kept for the refused refund


def test_unknown_accounts(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    assert ledger.view(KEY) is None
    with pytest.raises(UnknownAccount):
        ledger.refund(KEY, entry("1", "1.00"))
    with pytest.raises(UnknownAccount):
        ledger.capture(KEY, Decimal("1.00"))


def test_claim_answer_replay_and_expiry(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("100"))
    assert ledger.claim(IDEM, NOW) is None
    assert make_ledger().claim(IDEM, NOW) is IN_FLIGHT
    kept = answer(b'{"refundId":"1","amount":{"amount":"10.00","currency":"AUD"}}')
    ledger.refund(KEY, entry("1", "10.00"), IDEM, kept)
    replay = make_ledger().claim(IDEM, NOW + timedelta(days=6))
    assert replay == kept  # byte for byte, fingerprint and expiry included
    assert make_ledger().claim(IDEM, NOW + timedelta(days=7)) is None  # expired: claimed anew


def test_an_answer_without_expiry_never_expires(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("100"))
    ledger.claim(("optty", "m", "ref"), NOW)
    kept = StoredAnswer(201, (), b"", "ref", None)
    ledger.refund(KEY, entry("1", "1.00"), ("optty", "m", "ref"), kept)
    assert ledger.claim(("optty", "m", "ref"), NOW + timedelta(days=3650)) == kept


def test_release_frees_a_failed_claim(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    assert ledger.claim(IDEM, NOW) is None
    ledger.release(IDEM)
    assert make_ledger().claim(IDEM, NOW) is None


def test_settle_and_reverse(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("10.00"))
    ledger.refund(KEY, entry("x", "10.00", status="PENDING"))
    settled = ledger.settle(KEY, "x", {"status": "FAILED"}, reverse=True)
    assert settled.reversed and settled.details == {"status": "FAILED"}
    again = ledger.settle(KEY, "x", {"status": "FAILED"}, reverse=True)  # only once
    assert again.reversed
    view = make_ledger().view(KEY)
    assert view is not None and view.remaining == Decimal("10.00")
    with pytest.raises(UnknownAccount):
        ledger.settle(KEY, "nope", {})


def test_capture_in_parts_then_void_the_rest(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("0"), authorised=Decimal("100.00"))
    assert ledger.capture(KEY, Decimal("30.00")).open_to_capture == Decimal("70.00")
    with pytest.raises(CaptureExceeded) as caught:
        ledger.capture(KEY, Decimal("70.01"))
    assert caught.value.open_to_capture == Decimal("70.00")
    view = ledger.void(KEY)
    assert (view.captured, view.voided, view.open_to_capture) == (
        Decimal("30.00"), Decimal("70.00"), Decimal("0"))
    with pytest.raises(CaptureExceeded):
        ledger.void(KEY, Decimal("0.01"))
    with pytest.raises(RefundExceeded):
        ledger.refund(KEY, entry("1", "30.01"))
    ledger.refund(KEY, entry("1", "30.00"))


def test_reopening_an_account_forgets_its_refunds_and_their_answers(
        make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("100"))
    ledger.claim(IDEM, NOW)
    ledger.refund(KEY, entry("1", "10.00"), IDEM, answer())
    ledger.open(KEY, "AUD", Decimal("50"))
    view = ledger.view(KEY)
    assert view is not None and view.refunds == () and view.remaining == Decimal("50")
    assert ledger.claim(IDEM, NOW) is None


OTHER = ("afterpay", "100101382", "100101785224")


def test_a_reference_is_taken_once_across_accounts(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("100"))
    ledger.open(OTHER, "AUD", Decimal("100"), [entry("7", "1.00")], references=["id:7"])
    ledger.refund(KEY, entry("8", "1.00"), reference="id:8")
    for account, taken in ((KEY, "id:8"), (OTHER, "id:8"), (KEY, "id:7")):
        with pytest.raises(ReferenceTaken) as refused:
            ledger.refund(account, entry("dup", "1.00"), IDEM, answer(), reference=taken)
        assert refused.value.reference == taken
    # nothing of a refused refund was recorded: not the money, not its answer
    assert [e.refund_id for e in ledger.view(KEY).refunds] == ["8"]
    assert ledger.view(KEY).refunded == Decimal("1.00")
    assert ledger.claim(IDEM, NOW) is None
    # a refund refused for its amount takes no reference
    with pytest.raises(RefundExceeded):
        ledger.refund(KEY, entry("9", "500.00"), reference="id:9")
    ledger.refund(KEY, entry("9", "1.00"), reference="id:9")
    # an opening cannot take another account's reference, and changes nothing when refused
    with pytest.raises(ReferenceTaken):
        ledger.open(OTHER, "AUD", Decimal("5"), references=["id:9"])
    assert ledger.view(OTHER).captured == Decimal("100")


def test_reopening_an_account_gives_back_its_references(make_ledger: LedgerMaker) -> None:
    ledger = make_ledger()
    ledger.open(KEY, "AUD", Decimal("100"), [entry("7", "1.00")], references=["id:7"])
    ledger.refund(KEY, entry("8", "1.00"), reference="id:8")
    ledger.open(KEY, "AUD", Decimal("100"), [entry("7", "2.00")], references=["id:7"])
    ledger.open(OTHER, "AUD", Decimal("100"))
    ledger.refund(OTHER, entry("8", "1.00"), reference="id:8")
    with pytest.raises(ReferenceTaken):
        ledger.refund(OTHER, entry("7", "1.00"), reference="id:7")


def test_namespaces_do_not_see_each_other(store_url: str, namespace: str) -> None:
    if store_url == "memory":
        pytest.skip("an in-memory ledger is one session's by construction")
    one, other = open_ledger(store_url, namespace), open_ledger(store_url, namespace + "-b")
    one.open(KEY, "AUD", Decimal("10"))
    assert other.view(KEY) is None
    other.open(KEY, "AUD", Decimal("20"))
    assert one.view(KEY).captured == Decimal("10")


# -- between processes -------------------------------------------------------------------------

def _refund_many(url: str, namespace: str, worker: int, count: int, start: Any,
                 results: Any) -> None:
    ledger = open_ledger(url, namespace)
    start.wait()
    made = 0
    for n in range(count):
        try:
            ledger.refund(KEY, entry(f"w{worker}-{n}", "1.00"))
            made += 1
        except RefundExceeded:
            pass
    results.put(made)


def _claim_once(url: str, namespace: str, start: Any, results: Any) -> None:
    ledger = open_ledger(url, namespace)
    start.wait()
    held = ledger.claim(IDEM, NOW)
    if held is None:
        ledger.refund(KEY, entry("only", "1.00"), IDEM, answer())
        results.put("made")
    else:
        results.put("in-flight" if held is IN_FLIGHT else "replay")


def _take_reference(url: str, namespace: str, worker: int, start: Any, results: Any) -> None:
    ledger = open_ledger(url, namespace)
    start.wait()
    made = 0
    for n in range(20):
        try:
            ledger.refund(KEY if n % 2 else OTHER, entry(f"w{worker}-{n}", "1.00"),
                          reference=f"id:{n}")
            made += 1
        except ReferenceTaken:
            pass
    results.put(made)


@pytest.fixture
def shared_store(store_url: str) -> str:
    if store_url == "memory":
        pytest.skip("the in-memory store is one process's (its threads: tests/unit/test_ledger.py)")
    return store_url


def test_racing_processes_never_refund_more_than_was_captured(shared_store: str,
                                                              namespace: str) -> None:
    # 4 processes, 60 refunds of 1.00 each, on 100.00: exactly 100 succeed
    open_ledger(shared_store, namespace).open(KEY, "AUD", Decimal("100.00"))
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_refund_many,
                               args=(shared_store, namespace, w, 60, start, results))
               for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    made = sum(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    view = open_ledger(shared_store, namespace).view(KEY)
    assert made == 100
    assert view is not None and view.refunded == Decimal("100.00") and len(view.refunds) == 100


def test_racing_identical_claims_in_processes_make_one_refund(shared_store: str,
                                                              namespace: str) -> None:
    open_ledger(shared_store, namespace).open(KEY, "AUD", Decimal("100.00"))
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_claim_once, args=(shared_store, namespace, start, results))
               for _ in range(6)]
    for process in workers:
        process.start()
    start.set()
    outcomes = sorted(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
    assert outcomes.count("made") == 1
    assert set(outcomes) <= {"made", "in-flight", "replay"}
    view = open_ledger(shared_store, namespace).view(KEY)
    assert view is not None and [e.refund_id for e in view.refunds] == ["only"]


def _race_rounds(url: str, namespace: str, worker: int, rounds: int, barrier: Any,
                 results: Any) -> None:
    ledger = open_ledger(url, namespace)
    made = 0
    for n in range(rounds):
        barrier.wait()  # the account was just opened with 1.00 to refund
        try:
            ledger.refund(KEY, entry(f"w{worker}-{n}", "1.00"))
            made += 1
        except RefundExceeded:
            pass
        barrier.wait()
    results.put(made)


def test_processes_racing_for_the_last_unit_get_it_once(shared_store: str,
                                                        namespace: str) -> None:
    # every round, 4 processes released together ask for the one 1.00 left: one gets it
    rounds = 40
    ledger = open_ledger(shared_store, namespace)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(5), context.Queue()
    workers = [context.Process(target=_race_rounds,
                               args=(shared_store, namespace, w, rounds, barrier, results))
               for w in range(4)]
    for process in workers:
        process.start()
    per_round: list[int] = []
    for _ in range(rounds):
        ledger.open(KEY, "AUD", Decimal("1.00"))
        barrier.wait(timeout=120)
        barrier.wait(timeout=120)
        view = ledger.view(KEY)
        assert view is not None
        per_round.append(len(view.refunds))
    made = sum(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
    assert per_round == [1] * rounds
    assert made == rounds


def test_racing_processes_take_each_reference_once(shared_store: str, namespace: str) -> None:
    # 4 processes each try references id:0..id:19 on two accounts: each is taken once
    ledger = open_ledger(shared_store, namespace)
    ledger.open(KEY, "AUD", Decimal("100.00"))
    ledger.open(OTHER, "AUD", Decimal("100.00"))
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_take_reference,
                               args=(shared_store, namespace, w, start, results))
               for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    made = sum(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert made == 20
    assert len(ledger.view(KEY).refunds) + len(ledger.view(OTHER).refunds) == 20
