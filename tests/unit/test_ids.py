from __future__ import annotations

import re

from mock_server.core.ids import IdSource


def test_same_seed_and_session_give_the_same_ids() -> None:
    a, b = IdSource(42, "s"), IdSource(42, "s")
    assert [a.hex(16), a.alnum(26), a.uuid(), a.sequence("r", 100)] == \
           [b.hex(16), b.alnum(26), b.uuid(), b.sequence("r", 100)]


def test_sessions_get_different_ids() -> None:
    assert IdSource(42, "s1").hex(16) != IdSource(42, "s2").hex(16)


def test_shapes() -> None:
    ids = IdSource(1, "x")
    assert re.fullmatch(r"[0-9a-f]{16}", ids.hex(16))
    assert re.fullmatch(r"[a-z0-9]{26}", ids.alnum(26))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        ids.uuid())


def test_sequence_increases() -> None:
    ids = IdSource(1, "x")
    first = ids.sequence("refund", 10_000_000)
    assert ids.sequence("refund", 10_000_000) == first + 1
    assert first > 10_000_000


def test_ksuids_carry_their_second_and_mixed_case_base62() -> None:
    from datetime import UTC, datetime
    source = IdSource(3, "s")
    at = datetime(2021, 6, 1, 10, 57, 49, 981000, tzinfo=UTC)
    ids = [source.ksuid(at) for _ in range(50)]
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for ksuid in ids:
        assert len(ksuid) == 27 and set(ksuid) <= set(alphabet)
        number = 0
        for char in ksuid:
            number = number * 62 + alphabet.index(char)
        assert (number >> 128) + 1_400_000_000 == int(at.timestamp())
    assert ids[0].startswith("1tLO")  # the recorded ids of that minute begin so
    assert any(c.isupper() for c in "".join(ids)) and any(c.islower() for c in "".join(ids))
    assert len(set(ids)) == 50
    assert IdSource(3, "s").ksuid(at) == ids[0]  # seeded
    assert source.ksuid(datetime(2021, 6, 2, tzinfo=UTC)) > ids[0]  # time-ordered
