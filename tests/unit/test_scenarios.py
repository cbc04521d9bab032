"""Tests for mock_server.core.scenarios: parsing, lines, schema and cross-field checks, loading."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from jsonschema import Draft202012Validator

from mock_server.core import scenarios
from mock_server.core.scenarios import (
    FAULT_NAMES,
    PROVIDERS,
    ScenarioError,
    format_path,
    load_scenario_paths,
    parse_duration,
    parse_scenario,
)

# The example from design.md ("Scenario documents"), verbatim but for one over-long comment.
DESIGN_EXAMPLE = """\
name: checkout-refunds
afterpay:
  merchants:
    - {merchantId: "100101382", secretKey: "sandbox-secret-key", currency: AUD}
  payments:
    - id: "100101785223"          # the orderId in the URL
      merchantId: "100101382"
      amount: "120.00"             # original amount, in the merchant's currency
      captured: "120.00"           # default: the whole amount
      state: CAPTURED              # default: derived from captured
      created: "2026-09-01T10:00:00Z"   # default: now (the 120-day rule counts from here)
optty:
  merchants:
    - {merchantId: "m-1", clientId: "sandbox-client", clientSecret: "sandbox-secret",
       webhookUrl: "http://127.0.0.1:9000/optty"}      # webhookUrl optional
  providers:
    KLARNA_AU: {partialRefunds: false}
    VOLT: {asyncRefunds: true, callbackAfter: "2s", finalStatus: SUCCESSFUL}
  orders:
    - {orderReference: "ORD-1001", merchantId: "m-1", bnplProvider: KLARNA_AU,
       amount: "100.00", surcharge: "2.50", currency: AUD, status: SUCCESSFUL}
faults:
  - name: afterpay-outage
    match: {provider: afterpay, method: POST, path: "/v2/payments/100101785223/refund"}
    times: 2                       # the first two matching requests, then it is spent
    respond: {status: 503, error: service_unavailable}   # provider-shaped error body
  - name: slow-optty
    match: {provider: optty, body: {refundReference: "slow-*"}}   # globs on fields
    delay: "75s"                   # then answer normally
  - name: flaky
    match: {provider: afterpay}
    probability: 0.1               # reproducible with --seed
    fault: connection_reset
"""

ERROR_CODES = {"afterpay": {"not_found", "service_unavailable"},
               "optty": {"not_found", "bad_request"}}


def problems_of(text: str | bytes, **kwargs: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def doc(text: str) -> str:
    return dedent(text).lstrip("\n")


# --- parsing ----------------------------------------------------------------------------------

def test_design_example_parses() -> None:
    scenario = parse_scenario(DESIGN_EXAMPLE, "scenarios/checkout.yaml", error_codes=ERROR_CODES)

    assert scenario.name == "checkout-refunds"
    assert scenario.source == "scenarios/checkout.yaml"
    assert scenario.document["afterpay"]["payments"][0]["amount"] == "120.00"
    assert scenario.document["optty"]["providers"]["VOLT"] == {
        "asyncRefunds": True, "callbackAfter": "2s", "finalStatus": "SUCCESSFUL"}
    assert [rule["name"] for rule in scenario.document["faults"]] == [
        "afterpay-outage", "slow-optty", "flaky"]
    assert scenario.document["faults"][2]["probability"] == 0.1


def test_json_document_parses_to_the_same_document_as_yaml() -> None:
    from_yaml = parse_scenario(DESIGN_EXAMPLE).document

    from_json = parse_scenario(json.dumps(from_yaml, indent="\t")).document

    assert from_json == from_yaml


def test_json_problems_carry_json_lines() -> None:
    text = json.dumps({"afterpay": {"payments": [
        {"id": "1", "merchantId": "2", "amount": "1.234"}]}}, indent=2)

    assert problems_of(text) == [
        "s.yaml:7: afterpay.payments[0].amount: '1.234' is not a money amount "
        "(digits with at most 2 decimals)"]


def test_bytes_are_parsed_like_text() -> None:
    scenario = parse_scenario("\ufeffname: caf\u00e9\n".encode())

    assert scenario.name == "caf\u00e9"


def test_unquoted_money_keeps_the_text_as_written() -> None:
    scenario = parse_scenario(doc("""
        afterpay:
          payments:
            - {id: "1", merchantId: "2", amount: 120.00, captured: 120, refunds: [{amount: 0.50}]}
        optty:
          orders:
            - {orderReference: O, merchantId: m, bnplProvider: VOLT, amount: 100.10,
               surcharge: 2.5, currency: AUD, status: SUCCESSFUL}
        """))

    payment = scenario.document["afterpay"]["payments"][0]
    order = scenario.document["optty"]["orders"][0]
    assert (payment["amount"], payment["captured"], payment["refunds"][0]["amount"]) == (
        "120.00", "120", "0.50")
    assert (order["amount"], order["surcharge"]) == ("100.10", "2.5")


def test_json_money_written_as_a_number_keeps_the_text_as_written() -> None:
    scenario = parse_scenario(
        '{"afterpay": {"payments": [{"id": "1", "merchantId": "2", "amount": 120.10}]}}')

    assert scenario.document["afterpay"]["payments"][0]["amount"] == "120.10"


def test_bare_number_identifiers_stay_text() -> None:
    scenario = parse_scenario(doc("""
        afterpay:
          merchants: [{merchantId: 100101382, secretKey: 12345, currency: AUD}]
        """))

    assert scenario.document["afterpay"]["merchants"][0] == {
        "merchantId": "100101382", "secretKey": "12345", "currency": "AUD"}


def test_numbers_outside_the_seed_sections_stay_numbers() -> None:
    scenario = parse_scenario(doc("""
        faults:
          - name: r
            match: {body: {refundAmount.amount: 10.50}}
            respond: {status: 200, body: {amount: 10.50}}
        """))

    rule = scenario.document["faults"][0]
    assert rule["match"]["body"]["refundAmount.amount"] == 10.5
    assert rule["respond"]["body"] == {"amount": 10.5}


def test_timestamps_stay_strings() -> None:
    scenario = parse_scenario(doc("""
        afterpay:
          payments:
            - {id: "1", merchantId: "2", amount: "1.00", created: 2026-09-01T10:00:00Z}
        """))

    assert scenario.document["afterpay"]["payments"][0]["created"] == "2026-09-01T10:00:00Z"


def test_yes_is_not_a_boolean() -> None:
    assert problems_of("optty:\n  providers:\n    VOLT: {asyncRefunds: yes}\n") == [
        "s.yaml:3: optty.providers.VOLT.asyncRefunds: must be true or false, not 'yes'"]


def test_explicit_tags_other_than_json_types_are_refused() -> None:
    assert problems_of("name: a\nx-when: !!timestamp 2026-09-01\n") == [
        "s.yaml:2: x-when: unsupported YAML tag 'tag:yaml.org,2002:timestamp'"]


def test_duplicate_key_is_reported_at_the_second_key() -> None:
    text = doc("""
        name: a
        faults:
          - name: r
            delay: 1s
            delay: 2s
        """)

    assert problems_of(text) == ["s.yaml:5: faults[0]: duplicate key 'delay' (first at line 4)"]


def test_syntax_error_names_its_line() -> None:
    text = 'name: a\nfaults:\n  - name: "r\n    delay: 1s\n'

    assert problems_of(text) == [
        "s.yaml:5: invalid YAML: while scanning a quoted scalar, found unexpected end of stream"]


def test_more_than_one_document_is_a_syntax_error() -> None:
    assert problems_of("name: a\n---\nname: b\n") == [
        "s.yaml:2: invalid YAML: expected a single document in the stream, "
        "but found another document"]


def test_bytes_that_are_not_utf8_are_a_syntax_error_on_their_line() -> None:
    assert problems_of(b"name: a\nfaults: \xff\n") == [
        "s.yaml:2: invalid YAML: invalid leading UTF-8 octet"]


def test_a_list_is_not_a_scenario_document() -> None:
    assert problems_of("- name: a\n") == ["s.yaml:1: a scenario document must be a mapping"]


def test_an_empty_document_is_not_a_scenario_document() -> None:
    assert problems_of("# nothing here\n") == ["s.yaml:1: a scenario document must be a mapping"]


def test_merge_keys_and_x_fields_let_a_document_share_values() -> None:
    scenario = parse_scenario(doc("""
        x-payment: &payment {merchantId: "2", amount: 10.00}
        afterpay:
          payments:
            - {<<: *payment, id: "1"}
            - {<<: *payment, id: "2", amount: "5.00"}
        """))

    assert scenario.document["afterpay"]["payments"] == [
        {"merchantId": "2", "amount": "10.00", "id": "1"},
        {"merchantId": "2", "amount": "5.00", "id": "2"}]


def test_aliases_cannot_expand_without_bound() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 7):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")

    # a4 is the first to expand past the bound: 10 * 11 + 100 * 11 + ... > 100000
    assert problems_of("\n".join(lines)) == ["s.yaml:5: aliases expand to more than 100000 values"]


DEEP_DOCUMENTS = [
    "[" * 30_000 + "]" * 30_000,         # libyaml's C composer would overflow the stack
    "- " * 30_000 + "x",                 # compact block sequences nest too
    "{a: " * 30_000 + "1" + "}" * 30_000,
    "name: deep\nafterpay: " + "{a: " * 65 + "1" + "}" * 65,
]
# one line: the file, the line, what is wrong; never a traceback or a second line
ONE_PROBLEM_LINE = re.compile(r"s\.yaml:[1-9][0-9]*: \S[^\n]*")


@pytest.mark.parametrize("text", DEEP_DOCUMENTS)
def test_deep_nesting_is_refused_with_one_line(text: str) -> None:
    # libyaml (PyYAML >= 6.0.4) may refuse the deepest documents itself before the project's own
    # depth check sees them; either way the promise is one `file:line: problem` line
    problems = problems_of(text)
    assert len(problems) == 1
    assert ONE_PROBLEM_LINE.fullmatch(problems[0]), problems[0]


@pytest.mark.parametrize("text", DEEP_DOCUMENTS)
def test_deep_nesting_is_named_as_such_whoever_notices_it(text: str) -> None:
    # the project's check, or libyaml's own limit translated: the user reads what is wrong
    assert "the document is nested too deeply" in problems_of(text)[0]


@pytest.mark.parametrize("depth", [65, 200, 900])
def test_nesting_past_the_projects_own_limit_is_refused_in_its_words(depth: int) -> None:
    # below any library's limit, the project's check answers, and says what its limit is
    text = "name: deep\nafterpay: " + "[" * depth + "]" * depth

    assert problems_of(text) == [
        "s.yaml:2: the document is nested too deeply (more than 64 levels)"]


def test_nesting_at_the_limit_is_not_refused_for_its_depth() -> None:
    text = "name: deep\nafterpay: " + "[" * 63 + "]" * 63

    problems = problems_of(text)
    assert not any("nested" in problem for problem in problems), problems


def test_deep_nesting_does_not_crash_the_process() -> None:
    # a stack overflow in C kills the interpreter: only a separate process can show it does not
    program = (
        "import sys\n"
        "from mock_server.core.scenarios import ScenarioError, parse_scenario\n"
        "from tests.unit.test_scenarios import DEEP_DOCUMENTS\n"
        "for text in DEEP_DOCUMENTS:\n"
        "    try:\n"
        "        parse_scenario(text, 's.yaml')\n"
        "    except ScenarioError as err:\n"
        "        print(err.problems[0][:40])\n"
        "    else:\n"
        "        sys.exit('accepted')\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(DEEP_DOCUMENTS)


# --- schema -----------------------------------------------------------------------------------

def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(scenarios._SCHEMA)


def test_fault_and_provider_names_match_the_schema() -> None:
    definitions = scenarios._SCHEMA["$defs"]

    assert set(definitions["faultRule"]["properties"]["fault"]["enum"]) == FAULT_NAMES
    assert set(definitions["faultMatch"]["properties"]["provider"]["enum"]) == PROVIDERS


def test_money_with_three_decimals_is_refused() -> None:
    text = doc("""
        afterpay:
          payments:
            - id: "1"
              merchantId: "2"
              amount: "12.345"
        """)

    assert problems_of(text) == [
        "s.yaml:5: afterpay.payments[0].amount: '12.345' is not a money amount "
        "(digits with at most 2 decimals)"]


def test_unknown_field_is_reported_at_its_line_with_a_suggestion() -> None:
    text = doc("""
        faults:
          - name: a
            delay: 1s
          - name: b
            respnd: {status: 500}
            fault: connection_reset
        """)

    assert problems_of(text) == [
        "s.yaml:5: faults[1]: unknown field 'respnd' (did you mean 'respond'?)"]


def test_missing_required_field_is_reported_at_its_mapping() -> None:
    text = "afterpay:\n  merchants:\n    - {merchantId: \"1\", currency: AUD}\n"

    assert problems_of(text) == [
        "s.yaml:3: afterpay.merchants[0]: missing required field 'secretKey'"]


def test_wrong_type_names_what_was_expected() -> None:
    assert problems_of("faults: {name: a}\n") == ["s.yaml:1: faults: must be a list, not a mapping"]


def test_every_violation_is_reported_sorted_by_line() -> None:
    text = doc("""
        optty:
          orders:
            - orderReference: O
              merchantId: m
              bnplProvider: volt
              amount: "1.00"
              currency: AUD
              status: DONE
        afterpay:
          merchants:
            - {merchantId: "x1", secretKey: k, currency: AUD}
        """)

    assert problems_of(text) == [
        "s.yaml:5: optty.orders[0].bnplProvider: 'volt' is not a provider name "
        "(capital letters, digits and _, e.g. KLARNA_AU)",
        "s.yaml:8: optty.orders[0].status: unknown order status 'DONE' "
        "(known: CANCELLED, DECLINED, ERROR, INITIATED, PENDING, SUCCESSFUL)",
        "s.yaml:11: afterpay.merchants[0].merchantId: 'x1' is not a string of digits",
    ]


def test_provider_names_in_the_providers_map_are_checked_at_their_line() -> None:
    text = "optty:\n  providers:\n    VOLT: {}\n    klarna: {}\n"

    assert problems_of(text) == [
        "s.yaml:4: optty.providers: 'klarna' is not a provider name "
        "(capital letters, digits and _, e.g. KLARNA_AU)"]


def test_unknown_fault() -> None:
    assert problems_of("faults:\n  - name: a\n    fault: boom\n") == [
        "s.yaml:3: faults[0].fault: unknown fault 'boom' (known: connection_reset, "
        "empty_response, malformed_body, slow_body, truncated_body)"]


def test_unknown_provider() -> None:
    assert problems_of("faults:\n  - {name: a, match: {provider: admin}, delay: 1s}\n") == [
        "s.yaml:2: faults[0].match.provider: unknown provider 'admin' (known: afterpay, optty)"]


def test_respond_and_fault_cannot_be_used_together() -> None:
    text = "faults:\n  - {name: a, respond: {status: 500}, fault: empty_response}\n"

    assert problems_of(text) == [
        "s.yaml:2: faults[0]: 'respond' and 'fault' cannot be used together"]


def test_respond_body_and_error_cannot_be_used_together() -> None:
    text = "faults:\n  - name: a\n    respond: {status: 500, body: {}, error: not_found}\n"

    assert problems_of(text) == [
        "s.yaml:3: faults[0].respond: 'body' and 'error' cannot be used together"]


def test_a_rule_needs_an_outcome() -> None:
    assert problems_of("faults:\n  - {name: a, times: 1}\n") == [
        "s.yaml:2: faults[0]: a rule needs at least one of 'respond', 'fault' or 'delay'"]


def test_respond_status_must_be_an_http_status() -> None:
    assert problems_of("faults:\n  - {name: a, respond: {status: 700}}\n") == [
        "s.yaml:2: faults[0].respond.status: must be at most 599, not 700"]


def test_times_must_be_a_whole_number() -> None:
    assert problems_of("faults:\n  - {name: a, delay: 1s, times: 2.0}\n") == [
        "s.yaml:2: faults[0].times: must be an integer, not 2.0"]


def test_probability_must_be_above_zero() -> None:
    assert problems_of("faults:\n  - {name: a, delay: 1s, probability: 0}\n") == [
        "s.yaml:2: faults[0].probability: must be more than 0, not 0"]


def test_duration_needs_a_unit() -> None:
    assert problems_of("faults:\n  - {name: a, delay: 75}\n") == [
        "s.yaml:2: faults[0].delay: 75 is not a duration "
        "(a number and a unit: ms, s, m, h or d, e.g. 250ms, 2s, 1m)"]


def test_date_time_needs_a_zone() -> None:
    text = "optty:\n  orders:\n    - {orderReference: O, merchantId: m, bnplProvider: V,\n" \
           "       amount: 1, currency: AUD, status: SUCCESSFUL, updatedAt: 2026-09-01T10:00:00}\n"

    assert problems_of(text) == [
        "s.yaml:4: optty.orders[0].updatedAt: '2026-09-01T10:00:00' is not an ISO 8601 date-time "
        "with Z or an offset (e.g. 2026-09-01T10:00:00Z)"]


def test_date_time_must_exist_on_the_calendar() -> None:
    text = "afterpay:\n  payments:\n    - id: \"1\"\n      merchantId: \"2\"\n" \
           "      amount: \"1.00\"\n      created: 2026-02-30T10:00:00Z\n"

    assert problems_of(text) == [
        "s.yaml:6: afterpay.payments[0].created: '2026-02-30T10:00:00Z' is not a valid date-time "
        "(day is out of range for month)"]


def test_webhook_url_must_be_http() -> None:
    text = "optty:\n  merchants:\n    - {merchantId: m, clientId: c, clientSecret: s, " \
           "webhookUrl: ftp://host/x}\n"

    assert problems_of(text) == [
        "s.yaml:3: optty.merchants[0].webhookUrl: 'ftp://host/x' is not an http or https URL"]


def test_a_payment_id_cannot_contain_a_slash() -> None:
    assert problems_of("afterpay:\n  payments: [{id: a/b, merchantId: \"1\", amount: 1}]\n") == [
        "s.yaml:2: afterpay.payments[0].id: 'a/b' is not a name without '/' "
        "(it is used in URL paths)"]


# --- checks beyond the schema -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    ("afterpay:\n  merchants:\n    - {merchantId: \"1\", secretKey: k, currency: AUD}\n"
     "    - {merchantId: \"1\", secretKey: k, currency: NZD}\n",
     "s.yaml:4: afterpay.merchants[1].merchantId: duplicate merchantId '1' (first at line 3)"),
    ("afterpay:\n  payments:\n    - {id: \"9\", merchantId: \"1\", amount: 1}\n"
     "    - {id: \"9\", merchantId: \"1\", amount: 2}\n",
     "s.yaml:4: afterpay.payments[1].id: duplicate payment id '9' (first at line 3)"),
    ("optty:\n  merchants:\n    - {merchantId: m, clientId: a, clientSecret: s}\n"
     "    - {merchantId: m, clientId: b, clientSecret: s}\n",
     "s.yaml:4: optty.merchants[1].merchantId: duplicate merchantId 'm' (first at line 3)"),
    ("optty:\n  orders:\n"
     "    - {orderReference: O, merchantId: m, bnplProvider: V, amount: 1, currency: AUD,"
     " status: SUCCESSFUL}\n"
     "    - {orderReference: O, merchantId: n, bnplProvider: V, amount: 1, currency: AUD,"
     " status: SUCCESSFUL}\n",
     "s.yaml:4: optty.orders[1].orderReference: duplicate orderReference 'O' (first at line 3)"),
    ("faults:\n  - {name: r, delay: 1s}\n  - {name: r, delay: 2s}\n",
     "s.yaml:3: faults[1].name: duplicate fault name 'r' (first at line 2)"),
], ids=["afterpay-merchant", "payment", "optty-merchant", "order", "fault"])
def test_duplicates_within_a_document_are_refused(text: str, problem: str) -> None:
    assert problems_of(text) == [problem]


def test_duplicate_seeded_refund_ids_are_refused() -> None:
    text = doc("""
        afterpay:
          payments:
            - {id: "1", merchantId: "2", amount: 10, refunds: [{amount: 1, refundId: "7"}]}
            - {id: "2", merchantId: "2", amount: 10, refunds: [{amount: 1, refundId: "7"}]}
        """)

    assert problems_of(text) == [
        "s.yaml:4: afterpay.payments[1].refunds[0].refundId: duplicate refundId '7' "
        "(first at line 3)"]


def test_refund_references_are_unique_per_optty_merchant() -> None:
    text = doc("""
        optty:
          orders:
            - {orderReference: A, merchantId: m, bnplProvider: V, amount: 10, currency: AUD,
               status: SUCCESSFUL, refunds: [{refundReference: R, amount: 1}]}
            - {orderReference: B, merchantId: n, bnplProvider: V, amount: 10, currency: AUD,
               status: SUCCESSFUL, refunds: [{refundReference: R, amount: 1}]}
            - {orderReference: C, merchantId: m, bnplProvider: V, amount: 10, currency: AUD,
               status: SUCCESSFUL, refunds: [{refundReference: R, amount: 1}]}
        """)

    assert problems_of(text) == [
        "s.yaml:8: optty.orders[2].refunds[0].refundReference: duplicate refundReference 'R' "
        "(first at line 4)"]


def test_captured_above_the_payment_amount_is_refused() -> None:
    text = "afterpay:\n  payments:\n    - id: \"1\"\n      merchantId: \"2\"\n" \
           "      amount: 120.00\n      captured: 120.01\n"

    assert problems_of(text) == [
        "s.yaml:6: afterpay.payments[0].captured: captured 120.01 is more than the amount 120.00"]


def test_captured_above_the_order_amount_plus_surcharge_is_refused() -> None:
    text = doc("""
        optty:
          orders:
            - {orderReference: O, merchantId: m, bnplProvider: V, currency: AUD,
               status: SUCCESSFUL, amount: 100, surcharge: 2.5, captured: 102.51}
        """)

    assert problems_of(text) == [
        "s.yaml:4: optty.orders[0].captured: captured 102.51 is more than "
        "amount + surcharge 102.50"]


def test_seeded_refunds_above_what_was_captured_are_refused() -> None:
    text = doc("""
        afterpay:
          payments:
            - id: "1"
              merchantId: "2"
              amount: "100.00"
              captured: "50.00"
              refunds:
                - {amount: "30.00"}
                - {amount: "20.01"}
        """)

    assert problems_of(text) == [
        "s.yaml:7: afterpay.payments[0].refunds: refunds total 50.01, more than the 50.00 captured"]


def test_seeded_refunds_count_against_the_whole_amount_when_captured_is_not_given() -> None:
    text = doc("""
        optty:
          orders:
            - orderReference: O
              merchantId: m
              bnplProvider: V
              currency: AUD
              status: SUCCESSFUL
              amount: "10.00"
              surcharge: "1.00"
              refunds: [{refundReference: a, amount: "11.01"}]
        """)

    assert problems_of(text) == [
        "s.yaml:10: optty.orders[0].refunds: refunds total 11.01, more than the 11.00 captured"]


def test_failed_optty_refunds_do_not_count_against_what_was_captured() -> None:
    scenario = parse_scenario(doc("""
        optty:
          orders:
            - orderReference: O
              merchantId: m
              bnplProvider: V
              currency: AUD
              status: SUCCESSFUL
              amount: "10.00"
              refunds:
                - {refundReference: a, amount: "10.00", status: FAILED}
                - {refundReference: b, amount: "10.00", status: SUCCESSFUL}
        """))

    assert len(scenario.document["optty"]["orders"][0]["refunds"]) == 2


def test_a_merchant_defined_elsewhere_is_not_a_problem_here() -> None:
    scenario = parse_scenario(doc("""
        afterpay:
          payments: [{id: "1", merchantId: "999", amount: "1.00"}]
        optty:
          orders:
            - {orderReference: O, merchantId: other, bnplProvider: V, amount: 1,
               currency: AUD, status: SUCCESSFUL}
        """))

    assert scenario.document["afterpay"]["payments"][0]["merchantId"] == "999"


def test_header_names_in_a_match_are_case_insensitive() -> None:
    text = "faults:\n  - name: a\n    delay: 1s\n    match:\n      headers:\n" \
           "        X-Request-Id: \"1\"\n        x-request-id: \"2\"\n"

    assert problems_of(text) == [
        "s.yaml:7: faults[0].match.headers.x-request-id: repeats header 'X-Request-Id' "
        "(header names are case-insensitive)"]


def test_error_code_must_be_known_to_the_rules_provider() -> None:
    text = "faults:\n  - {name: a, match: {provider: optty}, respond: {status: 503, " \
           "error: service_unavailable}}\n"

    assert problems_of(text, error_codes=ERROR_CODES) == [
        "s.yaml:2: faults[0].respond.error: unknown error code 'service_unavailable' for optty "
        "(known: bad_request, not_found)"]


def test_error_code_of_a_rule_without_provider_must_be_known_to_every_provider() -> None:
    text = "faults:\n  - name: a\n    respond: {status: 503, error: nope}\n"

    assert problems_of(text, error_codes=ERROR_CODES) == [
        "s.yaml:3: faults[0].respond.error: unknown error code 'nope' for afterpay "
        "(known: not_found, service_unavailable)",
        "s.yaml:3: faults[0].respond.error: unknown error code 'nope' for optty "
        "(known: bad_request, not_found)",
    ]


def test_error_code_known_to_every_provider_is_accepted_without_a_provider() -> None:
    scenario = parse_scenario("faults:\n  - {name: a, respond: {status: 404, error: not_found}}\n",
                              error_codes=ERROR_CODES)

    assert scenario.document["faults"][0]["respond"]["error"] == "not_found"


def test_error_codes_are_not_checked_without_a_list_of_them() -> None:
    scenario = parse_scenario("faults:\n  - {name: a, respond: {status: 500, error: nope}}\n")

    assert scenario.document["faults"][0]["respond"]["error"] == "nope"


# --- Scenario ---------------------------------------------------------------------------------

LINES_EXAMPLE = doc("""
    name: lines
    afterpay:
      payments:
        - id: "1"
          merchantId: "2"
          amount: "1.00"
          refunds:
            - amount: "0.50"

              refundId: "77"
    """)


@pytest.mark.parametrize(("path", "line"), [
    ((), 1),
    (("afterpay",), 2),
    (("afterpay", "payments", 0), 4),
    (("afterpay", "payments", 0, "amount"), 6),
    (("afterpay", "payments", 0, "refunds", 0), 8),
    (("afterpay", "payments", 0, "refunds", 0, "refundId"), 10),
    (("afterpay", "payments", 0, "currency"), 4),
    (("afterpay", "payments", 3, "id"), 3),
    (("optty", "orders"), 1),
])
def test_line_of_finds_the_node_or_its_nearest_parent(path: tuple[str | int, ...],
                                                       line: int) -> None:
    assert parse_scenario(LINES_EXAMPLE).line_of(*path) == line


def test_problem_formats_source_and_line_of_a_node() -> None:
    scenario = parse_scenario(LINES_EXAMPLE, "scenarios/lines.yaml")

    assert scenario.problem(("afterpay", "payments", 0, "merchantId"), "unknown merchant '2'") == (
        "scenarios/lines.yaml:5: unknown merchant '2'")


def test_name_defaults_to_the_file_stem() -> None:
    assert parse_scenario("afterpay: {}\n", "scenarios/examples/outage.yaml").name == "outage"


def test_name_defaults_to_scenario_for_a_request() -> None:
    assert parse_scenario("afterpay: {}\n").name == "scenario"


def test_format_path_quotes_keys_that_are_not_identifiers() -> None:
    assert format_path(("faults", 0, "match", "body", "refundAmount.amount")) == (
        'faults[0].match.body["refundAmount.amount"]')


def test_scenario_error_text_is_its_problems_one_per_line() -> None:
    error = ScenarioError(["a.yaml:1: one", "a.yaml:2: two"])

    assert str(error) == "a.yaml:1: one\na.yaml:2: two"


def test_scenario_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ScenarioError(["a.yaml:1: one", "a.yaml:2: two"])))

    assert error.problems == ["a.yaml:1: one", "a.yaml:2: two"]


# --- durations --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("250ms", timedelta(milliseconds=250)),
    ("2s", timedelta(seconds=2)),
    ("75s", timedelta(seconds=75)),
    ("1.5s", timedelta(seconds=1.5)),
    ("1m", timedelta(minutes=1)),
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("0s", timedelta(0)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "s", "2 s", "2S", "-1s", "1.s", "1w", "2sec",
                                  "1e3s", "1234567890s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- loading files ----------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_directory_loads_its_scenario_files_sorted_by_path(tmp_path: Path) -> None:
    write(tmp_path / "b.yml", "name: b\n")
    write(tmp_path / "a" / "z.json", '{"name": "a/z"}'.replace("/", "-"))
    write(tmp_path / "a.yaml", "name: a\n")
    write(tmp_path / "notes.md", "not a scenario")
    write(tmp_path / ".hidden.yaml", "not: [valid\n")

    loaded = load_scenario_paths([tmp_path])

    assert [(s.name, s.source) for s in loaded] == [
        ("a-z", str(tmp_path / "a" / "z.json")),
        ("a", str(tmp_path / "a.yaml")),
        ("b", str(tmp_path / "b.yml")),
    ]


def test_files_and_directories_load_in_the_order_given(tmp_path: Path) -> None:
    write(tmp_path / "dir" / "one.yaml", "name: one\n")
    single = write(tmp_path / "zero.yaml", "name: zero\n")

    loaded = load_scenario_paths([str(single), tmp_path / "dir"])

    assert [s.name for s in loaded] == ["zero", "one"]


def test_problems_of_all_files_are_collected(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "name: a\nfaults:\n  - {name: r, fault: boom}\n")
    write(tmp_path / "b.yaml", "name: b\n")
    write(tmp_path / "c.yaml", "name: c\nname: d\n")

    with pytest.raises(ScenarioError) as caught:
        load_scenario_paths([tmp_path, tmp_path / "missing.yaml"])

    assert caught.value.problems == [
        f"{tmp_path / 'a.yaml'}:3: faults[0].fault: unknown fault 'boom' (known: "
        "connection_reset, empty_response, malformed_body, slow_body, truncated_body)",
        f"{tmp_path / 'c.yaml'}:2: duplicate key 'name' (first at line 1)",
        f"{tmp_path / 'missing.yaml'}:1: cannot read: No such file or directory",
    ]


def test_a_directory_without_scenario_files_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "README.md", "nothing")

    with pytest.raises(ScenarioError) as caught:
        load_scenario_paths([tmp_path])

    assert caught.value.problems == [
        f"{tmp_path}:1: no scenario files (*.yaml, *.yml, *.json) in this directory"]
