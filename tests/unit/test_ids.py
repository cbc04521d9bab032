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
