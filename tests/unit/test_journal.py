from __future__ import annotations

from datetime import UTC, datetime

from mock_server.core.journal import REDACTED, Journal, finish

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(journal: Journal, provider: str = "afterpay", path: str = "/x") -> None:
    entry = journal.record(at=NOW, provider=provider, operation="op", method="POST", path=path,
                           query="", headers=[("Authorization", "Basic abc"), ("A", "b")],
                           body=b"{}")
    finish(entry, status=201, headers=[(b"set-cookie", b"s=1")], body=b"ok", duration_ms=1.0)


def test_bounded_keeps_the_newest() -> None:
    journal = Journal(max_entries=3)
    for i in range(5):
        _record(journal, path=f"/{i}")
    total, entries = journal.query(limit=10)
    assert total == 3
    assert [e.path for e in entries] == ["/4", "/3", "/2"]


def test_authorization_is_redacted() -> None:
    journal = Journal()
    _record(journal)
    entry = journal.query()[1][0]
    assert entry.headers["authorization"] == REDACTED
    assert entry.response_headers["set-cookie"] == REDACTED
    assert "abc" not in str(entry.to_json())


def test_filters_and_limit() -> None:
    journal = Journal()
    _record(journal, provider="afterpay")
    _record(journal, provider="optty")
    _record(journal, provider="optty")
    total, entries = journal.query(provider="optty", limit=1)
    assert total == 2 and len(entries) == 1 and entries[0].provider == "optty"
    assert journal.query(status=404)[0] == 0


def test_clear_counts() -> None:
    journal = Journal()
    _record(journal)
    assert journal.clear() == 1
    assert len(journal) == 0


def test_a_large_body_is_kept_only_up_to_the_limit() -> None:
    from mock_server.core.journal import MAX_BODY_CHARS

    journal = Journal()
    entry = journal.record(at=NOW, provider="afterpay", operation="op", method="POST",
                           path="/x", query="", headers=[], body=b"a" * (MAX_BODY_CHARS * 4))
    finish(entry, status=201, headers=[], body=b"b" * (MAX_BODY_CHARS + 1), duration_ms=1.0)
    assert entry.body == "a" * MAX_BODY_CHARS
    assert entry.response_body == "b" * MAX_BODY_CHARS
    shown = entry.to_json()
    assert shown["bodyTruncated"] and shown["bodyBytes"] == MAX_BODY_CHARS * 4
    assert shown["responseBodyTruncated"] and shown["responseBodyBytes"] == MAX_BODY_CHARS + 1
    small = journal.record(at=NOW, provider="afterpay", operation="op", method="POST",
                           path="/x", query="", headers=[], body=b"{}")
    assert small.body == "{}" and small.to_json()["body"] == "{}"
    assert small.to_json()["bodyTruncated"] is False
