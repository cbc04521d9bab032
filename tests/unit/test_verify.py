"""assert_requests: which entries match, and what the AssertionError says when too few do."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from mock_server.client import JournalEntry
from mock_server.verify import RequestMatch, mismatch_report


def entry(id: int, status: int = 201, body: Any = None, **fields: Any) -> JournalEntry:
    raw = {"id": id, "at": "2026-11-01T09:00:00.000Z", "kind": "request",
           "provider": "afterpay", "operation": "createRefund", "method": "POST",
           "path": "/v2/payments/1/refund", "query": "", "status": status,
           "headers": {"content-type": "application/json", "authorization": "[REDACTED]"},
           "body": body if isinstance(body, str) else json.dumps(body or {}),
           "responseHeaders": {}, "responseBody": "", "durationMs": 1.0, "warnings": [],
           "fault": None, **fields}
    return JournalEntry.of(raw)


def refund_body(amount: str, reference: str = "r-1") -> dict[str, Any]:
    return {"requestId": reference, "amount": {"amount": amount, "currency": "AUD"}}


JOURNAL = [entry(3, 422, refund_body("20.00", "r-3")), entry(2, 201, refund_body("10.00")),
           entry(1, 200, operation="getPayment", method="GET", path="/v2/payments/1")]


def check(count: int | None = None, **criteria: Any) -> tuple[list[JournalEntry], str | None]:
    return mismatch_report(RequestMatch(**criteria), JOURNAL, count=count)


def test_a_partial_body_match_compares_only_the_keys_given() -> None:
    matched, report = check(operation="createRefund", body={"amount": {"amount": "10.00"}},
                            count=1)
    assert report is None and [e.id for e in matched] == [2]


def test_money_given_as_decimal_matches_any_spelling_of_the_amount() -> None:
    assert check(body={"amount": {"amount": Decimal("10")}}, count=1)[1] is None
    assert check(body={"amount": {"amount": "10"}})[1] is not None


def test_the_error_lists_the_nearest_requests_and_what_differed() -> None:
    _, report = check(operation="createRefund", status=201,
                      body={"amount": {"amount": "20.00"}}, count=1)
    assert report is not None
    lines = report.splitlines()
    assert lines[0] == ('expected exactly 1 request matching operation=createRefund '
                        'status=201 body={"amount": {"amount": "20.00"}}; 0 matched, '
                        'of 3 in the journal')
    assert lines[1] == "nearest requests that did not match:"
    # one difference each: the 422 with the right amount, the 201 with the wrong one
    assert lines[2] == "  #3 POST /v2/payments/1/refund -> 422 (createRefund)"
    assert lines[3] == "      status: expected 201, got 422"
    assert lines[4] == "  #2 POST /v2/payments/1/refund -> 201 (createRefund)"
    assert lines[5] == '      body.amount.amount: expected "20.00", got "10.00"'
    assert "#1 GET" in report and "operation: expected" in report


def test_too_many_matches_are_listed() -> None:
    _, report = check(provider="afterpay", count=2)
    assert report is not None and report.startswith("expected exactly 2 requests")
    assert "3 matched" in report and "  #1 GET /v2/payments/1 -> 200 (getPayment)" in report


def test_headers_paths_and_missing_keys() -> None:
    assert check(path="/v2/payments/*/refund", headers={"Content-Type": "application/*"},
                 count=2)[1] is None
    _, report = check(headers={"X-Missing": "*"}, body={"refundId": "1"}, count=1)
    assert report is not None
    assert "header X-Missing: missing" in report and "body.refundId: missing" in report


def test_count_zero_is_a_real_check() -> None:
    assert check(status=500, count=0)[1] is None
    assert check(status=201, count=0)[1] is not None


def test_an_empty_journal_is_said_so() -> None:
    _, report = mismatch_report(RequestMatch(operation="createRefund"), [])
    assert report is not None and "journal of this session is empty" in report


def test_a_form_body_is_matched_by_its_fields() -> None:
    token = entry(9, 201, "client_id=c&grant_type=client_credentials", provider="optty")
    matched, report = mismatch_report(RequestMatch(body={"client_id": "c"}), [token], count=1)
    assert report is None and matched == [token]


def test_count_and_at_least_together_are_refused() -> None:
    with pytest.raises(ValueError):
        mismatch_report(RequestMatch(), JOURNAL, count=1, at_least=1)
