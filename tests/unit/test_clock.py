from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.core.clock import SessionClock, iso_millis, parse_instant

T0 = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)


def test_follows_the_source_until_moved() -> None:
    now = [T0]
    clock = SessionClock(lambda: now[0])
    now[0] += timedelta(seconds=5)
    assert clock.now() == T0 + timedelta(seconds=5)


def test_advance_adds_an_offset_to_real_time() -> None:
    now = [T0]
    clock = SessionClock(lambda: now[0])
    clock.advance(timedelta(days=121))
    now[0] += timedelta(seconds=1)
    assert clock.now() == T0 + timedelta(days=121, seconds=1)


def test_freeze_stops_time_and_advance_moves_it() -> None:
    now = [T0]
    clock = SessionClock(lambda: now[0])
    clock.freeze(datetime(2030, 1, 1, tzinfo=UTC))
    now[0] += timedelta(hours=1)
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(seconds=30))
    assert clock.now() == datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert clock.frozen


def test_reset_returns_to_real_time() -> None:
    clock = SessionClock(lambda: T0)
    clock.advance(timedelta(days=3))
    clock.reset()
    assert clock.now() == T0 and not clock.frozen


def test_cannot_go_back() -> None:
    with pytest.raises(ValueError):
        SessionClock(lambda: T0).advance(timedelta(seconds=-1))


def test_listeners_hear_every_move() -> None:
    clock = SessionClock(lambda: T0)
    heard: list[datetime] = []
    clock.subscribe(lambda: heard.append(clock.now()))
    clock.advance(timedelta(seconds=2))
    clock.freeze(T0)
    assert heard == [T0 + timedelta(seconds=2), T0]


def test_iso_millis_is_utc_with_milliseconds_and_z() -> None:
    assert iso_millis(T0) == "2026-03-04T05:06:07.891Z"


def test_parse_instant_accepts_z_offsets_and_naive() -> None:
    assert parse_instant("2026-03-04T05:06:07Z") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert parse_instant("2026-03-04T15:06:07+10:00") == datetime(2026, 3, 4, 5, 6, 7,
                                                                  tzinfo=UTC)
    assert parse_instant("2026-03-04T05:06:07") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=10)),
                                               timezone(timedelta(hours=-9, minutes=-30))])))
def test_iso_millis_is_utc_with_milliseconds_whatever_came_before(moment: datetime) -> None:
    iso_millis(moment + timedelta(seconds=1))  # another second was formatted last
    utc = moment.astimezone(UTC)
    assert iso_millis(moment) == (utc.strftime("%Y-%m-%dT%H:%M:%S.")
                                  + f"{utc.microsecond // 1000:03d}Z")
