"""The fault-rule engine: matching, first live rule wins, after/times/probability counters."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from starlette.datastructures import Headers

from mock_server.core.faults import (
    FaultRequest,
    FaultRule,
    choose,
    glob,
    lookup,
    rule_matches,
    value_matches,
)
from mock_server.core.ids import IdSource

REFUND_BODY = (b'{"requestId":"drill-409-1","merchantReference":"m.1",'
               b'"amount":{"amount":"10.50","currency":"AUD"},"lines":[{"sku":"A-1"}],'
               b'"flag":true,"count":3,"price":10.50,"none":null}')


def request(*, provider: str = "afterpay", method: str = "POST",
            path: str = "/v2/payments/100101785223/refund",
            params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
            body: bytes = REFUND_BODY) -> FaultRequest:
    raw = {"content-type": "application/json", **(headers or {})}
    return FaultRequest(provider, method, path,
                        params if params is not None else {"orderId": "100101785223"},
                        Headers(raw), body)


def rule(name: str = "r", **spec: Any) -> FaultRule:
    return FaultRule(name, "s", {"name": name, **spec})


def never() -> float:
    raise AssertionError("no draw expected")


def draws(*values: float) -> Iterator[float]:
    return iter(values)


# --- globs and dotted paths ---------------------------------------------------------------------

def test_star_matches_any_run_of_characters_including_slashes() -> None:
    assert glob("/v2/*/refund").fullmatch("/v2/payments/123/refund")
    assert glob("*").fullmatch("")


def test_question_mark_matches_exactly_one_character() -> None:
    assert glob("ORD-100?").fullmatch("ORD-1001")
    assert not glob("ORD-100?").fullmatch("ORD-10011")


def test_brackets_and_dots_are_literal() -> None:
    assert glob("a[1].b").fullmatch("a[1].b")
    assert not glob("a[1].b").fullmatch("a1xb")


def test_dotted_path_reaches_nested_fields_and_list_items() -> None:
    body = {"amount": {"currency": "AUD"}, "lines": [{"sku": "A-1"}], "a.b": {"c": 1}}
    assert lookup(body, "amount.currency") == "AUD"
    assert lookup(body, "lines.0.sku") == "A-1"
    assert lookup(body, "a.b.c") == 1  # a key that contains a dot


def test_dotted_path_to_nothing_is_missing() -> None:
    body = {"amount": {"currency": "AUD"}, "lines": []}
    for dotted in ("amount.value", "lines.0", "amount.currency.x", "nothing"):
        assert not value_matches(lookup(body, dotted), "*")


def test_a_string_pattern_globs_the_text_of_a_number_as_written() -> None:
    assert value_matches(Decimal("10.50"), "10.5*")
    assert value_matches(3, "3")
    assert value_matches(True, "true")
    assert value_matches(None, "null")


def test_a_number_pattern_must_equal_the_value() -> None:
    assert value_matches(Decimal("10.50"), 10.5)
    assert value_matches(3, 3)
    assert not value_matches(Decimal("10.51"), 10.5)


def test_booleans_and_null_match_only_themselves() -> None:
    assert value_matches(True, True)
    assert not value_matches(1, True)
    assert not value_matches(True, 1)
    assert value_matches(None, None)
    assert not value_matches("null", None)


def test_a_mapping_or_list_value_matches_no_pattern() -> None:
    assert not value_matches({"a": 1}, "*")
    assert not value_matches([1], "*")


# --- match fields -----------------------------------------------------------------------------

def test_an_empty_match_matches_every_request() -> None:
    assert rule_matches({}, request())
    assert rule_matches({}, request(provider="optty", method="GET", path="/x", body=b""))


@pytest.mark.parametrize(("match", "expected"), [
    ({"provider": "afterpay"}, True),
    ({"provider": "optty"}, False),
    ({"method": "POST"}, True),
    ({"method": "GET"}, False),
    ({"path": "/v2/payments/*/refund"}, True),
    ({"path": "/v2/payments/*"}, True),
    ({"path": "/v2/payments"}, False),
    ({"params": {"orderId": "1001017852??"}}, True),
    ({"params": {"orderId": "999*"}}, False),
    ({"params": {"orderReference": "*"}}, False),
    ({"headers": {"X-Test": "drill-*"}}, True),
    ({"headers": {"x-test": "DRILL-*"}}, False),
    ({"headers": {"X-Missing": "*"}}, False),
    ({"body": {"requestId": "drill-409-*"}}, True),
    ({"body": {"amount.currency": "AUD"}}, True),
    ({"body": {"amount.currency": "NZD"}}, False),
    ({"body": {"lines.0.sku": "A-?"}}, True),
    ({"body": {"flag": True, "count": 3, "none": None, "price": 10.5}}, True),
    ({"body": {"count": 4}}, False),
    ({"body": {"refundReference": "*"}}, False),
    ({"provider": "afterpay", "method": "POST", "body": {"requestId": "other"}}, False),
], ids=repr)
def test_each_match_field(match: dict[str, Any], expected: bool) -> None:
    assert rule_matches(match, request(headers={"X-Test": "drill-7"})) is expected


def test_header_names_are_case_insensitive() -> None:
    assert rule_matches({"headers": {"AUTHORIZATION": "Bearer *"}},
                        request(headers={"authorization": "Bearer abc"}))


def test_body_fields_of_a_form_are_matched_too() -> None:
    token = request(provider="optty", path="/token", params={},
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    body=b"client_id=sandbox-client&grant_type=client_credentials")
    assert rule_matches({"body": {"client_id": "sandbox-*"}}, token)
    assert not rule_matches({"body": {"client_id": "other"}}, token)


def test_a_body_that_is_not_json_matches_no_body_field() -> None:
    assert not rule_matches({"body": {"requestId": "*"}}, request(body=b"{not json"))
    assert rule_matches({"path": "/v2/*"}, request(body=b"{not json"))


# --- choosing a rule and its counters ----------------------------------------------------------

def test_first_live_matching_rule_wins() -> None:
    rules = [rule("optty-only", match={"provider": "optty"}, delay="1s"),
             rule("first", match={"provider": "afterpay"}, delay="1s"),
             rule("second", delay="1s")]
    assert choose(rules, request(), never) is rules[1]
    assert [r.matched for r in rules] == [0, 1, 0]


def test_times_spends_a_rule_and_the_next_one_takes_over() -> None:
    rules = [rule("twice", times=2, delay="1s"), rule("then", delay="1s")]
    chosen = [choose(rules, request(), never) for _ in range(4)]
    assert [r.name for r in chosen if r] == ["twice", "twice", "then", "then"]
    assert rules[0].remaining == 0
    assert rules[0].to_json()["matched"] == 2
    assert rules[0].seen == 2  # a spent rule is asked no more
    assert rules[1].remaining is None


def test_after_lets_the_first_matches_through_to_later_rules() -> None:
    rules = [rule("third-only", after=2, times=1, delay="1s")]
    chosen = [choose(rules, request(), never) for _ in range(5)]
    assert [r is not None for r in chosen] == [False, False, True, False, False]
    assert rules[0].to_json() | {"outcome": ""} == {
        "name": "third-only", "provider": None, "matched": 1, "remaining": 0, "outcome": ""}
    assert rules[0].seen == 3  # a spent rule is asked no more


def test_probability_fires_only_on_a_draw_below_it() -> None:
    rules = [rule("flaky", probability=0.25, delay="1s"), rule("fallback", delay="1s")]
    values = draws(0.5, 0.1, 0.25, 0.2499)
    chosen = [choose(rules, request(), lambda: next(values)) for _ in range(4)]
    assert [r.name for r in chosen if r] == ["fallback", "flaky", "fallback", "flaky"]
    assert (rules[0].seen, rules[0].matched) == (4, 2)


def test_probability_is_drawn_only_after_the_after_count() -> None:
    rules = [rule("flaky", after=1, probability=0.5, delay="1s")]
    values = draws(0.0)
    assert choose(rules, request(), never) is None
    assert choose(rules, request(), lambda: next(values)) is rules[0]


def test_a_rule_that_does_not_match_counts_nothing() -> None:
    rules = [rule("optty", match={"provider": "optty"}, times=1, delay="1s")]
    assert choose(rules, request(), never) is None
    assert (rules[0].seen, rules[0].matched, rules[0].remaining) == (0, 0, 1)


def test_seeded_draws_repeat_exactly_and_depend_on_the_seed() -> None:
    def run(seed: int) -> list[bool]:
        chances = IdSource(seed, "ci-1/faults")
        rules = [rule("flaky", probability=0.1, fault="connection_reset")]
        return [choose(rules, request(), chances.chance) is not None for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 5 < sum(first) < 40  # about one in ten


def test_outcome_text_and_journal_record_say_what_the_rule_does() -> None:
    r = FaultRule("slow", "drills", {"name": "slow", "delay": "2s",
                                     "respond": {"status": 503, "error": "service_unavailable"}})
    assert r.record() == {"rule": "slow", "action": "delay 2s, respond 503 service_unavailable"}
    literal = rule(respond={"status": 200, "body": {}})
    assert literal.outcome_text() == "respond 200 literal body"
    assert rule(fault="slow_body").outcome_text() == "fault slow_body"
