"""The session ledger of a shared store (core/ledger_log.py): a replay of its ops, on a
checkpoint, gives the same ledger; a claim left in flight by a killed process is free again
after STALE_CLAIM_SECONDS of wall-clock time, in every process that replayed it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mock_server.core import snapshot
from mock_server.core.ledger import (
    IN_FLIGHT,
    STALE_CLAIM_SECONDS,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
)
from mock_server.core.ledger_log import LoggedLedger, decode_ops, encode_ops

KEY = ("afterpay", "m", "1")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_checkpoint_and_the_ops_after_it_give_the_writer_s_ledger() -> None:
    writer = LoggedLedger()
    writer.open(KEY, "AUD", Decimal("10.00"))
    checkpoint = snapshot.dumps("ledger", writer)
    writer.take_ops()
    assert writer.claim(("k",), NOW) is None
    answer = StoredAnswer(201, (), b"{}", ("p",), None)
    writer.refund(KEY, RefundEntry("r1", Decimal("4.00"), NOW), ("k",), answer, "ref-1")
    writer.capture(("afterpay", "m", "1"), Decimal("0"))
    writer.settle(KEY, "r1", {"status": "done"})
    with pytest.raises(RefundExceeded):
        writer.refund(KEY, RefundEntry("r2", Decimal("7.00"), NOW))  # logs nothing
    reader = snapshot.loads(checkpoint, "ledger")
    reader.replay(decode_ops(encode_ops(writer.take_ops())))
    assert reader.view(KEY) == writer.view(KEY)
    assert reader.claim(("k",), NOW) == answer  # the stored answer replays
    assert reader.stats() == writer.stats()
    assert reader.ops == []  # a replay logs nothing again


def test_a_claim_left_in_flight_is_free_again_after_the_stale_time_in_every_process() -> None:
    wall = Wall()
    writer = LoggedLedger(wall)
    assert writer.claim(("k",), NOW) is None
    reader = LoggedLedger(wall)
    reader.replay(writer.take_ops())
    wall.now += STALE_CLAIM_SECONDS - 1
    assert writer.claim(("k",), NOW) is IN_FLIGHT
    assert reader.claim(("k",), NOW) is IN_FLIGHT
    wall.now += 1
    assert reader.claim(("k",), NOW) is None  # its request never answered: free again
    writer.replay(reader.take_ops())
    assert writer.claim(("k",), NOW) is IN_FLIGHT  # taken again, by the reader, just now
