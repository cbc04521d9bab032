"""`mock-server check` validates fault rules against the scenario schema and each provider's
error catalogue, naming the line of every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_server.cli import EXIT_BAD_FILE, main

VALID = """\
name: ok
faults:
  - name: all-kinds
    match:
      provider: afterpay
      method: POST
      path: "/v2/payments/*/refund"
      params: {orderId: "1001*"}
      headers: {User-Agent: "*Python*"}
      body: {requestId: "r-*", amount.currency: AUD, "amount.amount": "10.00"}
    after: 1
    times: 2
    probability: 0.5
    delay: 250ms
    respond: {status: 503, error: service_unavailable, headers: {Retry-After: "1"}}
  - {name: reset, fault: connection_reset}
  - {name: literal, respond: {status: 200, body: {ok: true}}}
"""


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    code = main(["check", str(path)])
    out = capsys.readouterr().out.replace(f"{tmp_path}/", "")
    return code, out.splitlines()


def test_every_kind_of_rule_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(tmp_path, VALID, capsys) == (0, ["s.yaml: ok (ok)"])


@pytest.mark.parametrize(("rule", "problem"), [
    ("{name: a, match: {provider: paypal}, delay: 1s}",
     "s.yaml:3: faults[0].match.provider: unknown provider 'paypal' (known: afterpay, optty)"),
    ("{name: a, fault: socket_hangup}",
     "s.yaml:3: faults[0].fault: unknown fault 'socket_hangup' (known: connection_reset, "
     "empty_response, malformed_body, slow_body, truncated_body)"),
    ("{name: a, match: {provider: optty}, respond: {status: 409, error: conflict}}",
     "s.yaml:3: faults[0].respond.error: unknown error code 'conflict' for optty (known: "
     "bad_gateway, bad_request, gateway_timeout, internal_error, not_found, payload_too_large, "
     "service_unavailable, too_many_requests, unauthorized)"),
    ("{name: a, match: {provider: afterpay}, respond: {status: 400, error: bad_request}}",
     "s.yaml:3: faults[0].respond.error: unknown error code 'bad_request' for afterpay (known: "
     "bad_gateway, conflict, error, gateway_timeout, invalid_amount, invalid_json, "
     "invalid_object, invalid_order_transaction_status, invalid_request, invalid_state, "
     "invalid_token, method_not_allowed, not_found, payment_captured, payment_expired, "
     "payment_voided, precondition_failed, refund_timelimit_exceeded, request_too_large, "
     "service_unavailable, too_many_requests, unauthorized, unsupported_currency, "
     "unsupported_payment_type)"),
    ("{name: a, respond: {status: 200, error: service_unavailable}}",
     "s.yaml:3: faults[0].respond.status: an error needs an error status (400-599), not 200"),
    ("{name: a, respond: {status: 200, body: x, headers: {Content-Length: '5'}}}",
     "s.yaml:3: faults[0].respond.headers.Content-Length: Content-Length is set by the "
     "sandbox from the body (use a fault such as truncated_body to break the framing)"),
    ("{name: a, respond: {status: 200, headers: {'Bad Header': x}}}",
     "s.yaml:3: faults[0].respond.headers[\"Bad Header\"]: 'Bad Header' is not a valid header "
     "name"),
    ("{name: a, fault: slow_body, delay: soon}",
     "s.yaml:3: faults[0].delay: 'soon' is not a duration (a number and a unit: ms, s, m, h or "
     "d, e.g. 250ms, 2s, 1m)"),
    ("{name: a, match: {verb: GET}, delay: 1s}",
     "s.yaml:3: faults[0].match: unknown field 'verb'"),
], ids=["provider", "fault", "optty-code", "afterpay-code", "error-status", "framing-header",
        "header-name", "duration", "match-field"])
def test_a_bad_rule_is_refused_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             rule: str, problem: str) -> None:
    code, lines = check(tmp_path, f"name: bad\nfaults:\n  - {rule}\n", capsys)
    assert code == EXIT_BAD_FILE
    assert lines == [problem]


def test_a_code_for_a_rule_without_provider_must_exist_for_both(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = check(tmp_path, "faults:\n  - {name: a, respond: {status: 404, "
                                  "error: not_found}}\n  - {name: b, respond: {status: 409, "
                                  "error: conflict}}\n", capsys)
    assert code == EXIT_BAD_FILE
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:3: faults[1].respond.error: unknown error code "
                               "'conflict' for optty")


def test_every_problem_of_every_file_is_listed(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text("faults:\n  - {name: a, fault: boom}\n")
    (tmp_path / "b.yaml").write_text("faults:\n  - name: b\n    match: {provider: nope}\n"
                                     "    delay: 1s\n")
    assert main(["check", str(tmp_path)]) == EXIT_BAD_FILE
    out = capsys.readouterr().out
    assert f"{tmp_path}/a.yaml:2: faults[0].fault: unknown fault 'boom'" in out
    assert f"{tmp_path}/b.yaml:3: faults[0].match.provider: unknown provider 'nope'" in out
