"""Journal entries as JSON bytes and back (what the sqlite: and redis:// stores keep): exact."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.core.journal import Journal, JournalEntry, finish
from mock_server.core.journal_store import decode_entry, encode_entry
from mock_server.core.ledger_codec import StoreFormatError


def _fields(entry: JournalEntry) -> dict[str, object]:
    fields = {
        f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    fields.pop("journal")
    return fields


def _assert_round_trip(entry: JournalEntry) -> None:
    raw = encode_entry(entry)
    assert isinstance(raw, bytes)
    again = decode_entry(raw)
    assert again.to_json() == entry.to_json()
    assert again.to_json(16) == entry.to_json(16)
    assert _fields(again) == _fields(entry)
    # and the types of each header part, bytes or text, as they were
    for kept, original in ((again.raw_headers, entry.raw_headers),
                           (again.raw_response_headers, entry.raw_response_headers)):
        assert [tuple(map(type, h)) for h in kept] == [tuple(map(type, h)) for h in original]
    assert again.journal is None
    assert encode_entry(again) == raw


def test_a_finished_request_round_trips() -> None:
    journal = Journal()
    entry = journal.record(at=datetime(2026, 1, 1, 9, 30, 1, 123456, tzinfo=UTC),
                           provider="afterpay", operation="createRefund", method="POST",
                           path="/v2/payments/1/refund", query="a=1&b=%C3%A9",
                           headers=[(b"authorization", b"Basic eA=="), (b"x-\xe9", b"\xff\x00")],
                           body="{\"amount\":\"1.00\",\"note\":\"caf\u00e9\"}".encode())
    entry.warnings = ("one", "two \u2713")
    entry.fault = {"rule": "s/r", "action": "answered 503 after the provider answered 201"}
    finish(entry, status=201, headers=[("content-type", "application/json"), (b"x", "y")],
           body=b"\x00\x01binary\xff", duration_ms=0.1 + 0.2)
    _assert_round_trip(entry)


def test_a_callback_entry_not_finished_round_trips() -> None:
    entry = Journal().record(at=datetime(2026, 2, 3, tzinfo=timezone(timedelta(hours=10))),
                             provider=None, operation=None, method="POST", path="",
                             query="", headers=[("X-Optty-Signature", "abc")], body=b"",
                             kind="callback")
    _assert_round_trip(entry)


def test_what_is_not_an_entry_is_refused_in_one_line() -> None:
    good = encode_entry(Journal().record(at=datetime(2026, 1, 1, tzinfo=UTC), provider="a",
                                         operation="o", method="GET", path="/", query="",
                                         headers=[], body=b""))
    for raw in (b"", b"[]", b"{}", good.replace(b'"body":"', b'"body":"*'), b"\xff",
                good.replace(b'"at":"2026', b'"at":"x')):
        with pytest.raises(StoreFormatError) as caught:
            decode_entry(raw)
        assert "\n" not in str(caught.value)


_text = st.text(max_size=20)
_part = st.one_of(st.binary(max_size=12), _text)
_json = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | _text
                     | st.floats(allow_nan=False),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=3), max_leaves=8)


@given(st.builds(
    JournalEntry,
    id=st.integers(1, 2**63 - 1),
    at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))]))
    | st.datetimes(),
    provider=st.none() | _text, operation=st.none() | _text, method=_text, path=_text,
    query=_text, raw_headers=st.lists(st.tuples(_part, _part), max_size=4).map(tuple),
    raw_body=st.binary(max_size=64), status=st.integers(0, 599),
    raw_response_headers=st.lists(st.tuples(_part, _part), max_size=4).map(tuple),
    raw_response_body=st.binary(max_size=64),
    duration_ms=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    warnings=st.lists(_text, max_size=3).map(tuple),
    fault=st.none() | st.dictionaries(_text, _json, max_size=3),
    kind=st.sampled_from(["request", "callback"]), body_size=st.integers(0, 2**40),
    response_body_size=st.integers(0, 2**40), request_cut=st.booleans(),
    response_cut=st.booleans(), size=st.integers(0, 2**40), secrets_sent=st.booleans(),
    journal=st.none()))
def test_any_entry_round_trips(entry: JournalEntry) -> None:
    raw = encode_entry(entry)
    again = decode_entry(raw)
    assert _fields(again) == _fields(entry)
    if entry.at.tzinfo is not None or entry.at.year > 1970:  # iso_millis needs a real instant
        try:
            shown = entry.to_json()
        except (OverflowError, ValueError, OSError):
            return  # an instant to_json cannot show, either way
        assert again.to_json() == shown
