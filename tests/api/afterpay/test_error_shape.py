"""Point 2: every Afterpay error has exactly the four recorded fields, in order."""

from __future__ import annotations

import json

import pytest

from mock_server.afterpay import errors


@pytest.mark.parametrize(("call", "status", "code"), [
    (lambda ap: ap.refund(raw=b"{nope"), 400, "invalid_json"),
    (lambda ap: ap.refund(headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "unauthorized"),
    (lambda ap: ap.refund("42"), 404, "not_found"),
    (lambda ap: ap.client.put("/v2/payments/42/refund", headers=ap.headers()), 405,
     "method_not_allowed"),
    (lambda ap: ap.refund(headers={"Accept": "text/html"}), 406, "error"),
    (lambda ap: ap.refund("100101785227"), 412, "precondition_failed"),
    (lambda ap: ap.refund(headers={"Content-Type": "text/plain"}), 415, "error"),
    (lambda ap: ap.refund(amount="FREE"), 422, "invalid_object"),
    (lambda ap: ap.refund(amount="500.00"), 422, "invalid_amount"),
    (lambda ap: ap.refund("100101785230"), 422, "refund_timelimit_exceeded"),
    (lambda ap: ap.refund(currency="USD"), 422, "unsupported_currency"),
    (lambda ap: ap.client.post("/v2/payments/1/refund", content=b"{}" * 600_000,
                               headers=ap.headers()), 413, "request_too_large"),
], ids=lambda v: str(v) if isinstance(v, int) else None)
def test_error_body_shape(afterpay, call, status: int, code: str) -> None:
    answer = call(afterpay)
    afterpay.assert_error(answer, status, code)


@pytest.mark.sandbox_verified
def test_recorded_not_found_layout(afterpay) -> None:
    # recorded: solidus_afterpay credit/invalid.yml, byte layout of the 404 body
    answer = afterpay.refund("INVALID_RESPONSE_CODE", raw=(
        b'{"requestId":null,"merchantReference":null,"refundMerchantReference":null,'
        b'"amount":{"amount":"10.0","currency":"AUD"}}'))
    error_id = afterpay.assert_error(answer, 404, "not_found",
                                     "Afterpay payment ID not found.")["errorId"]
    assert answer.content == (
        '{\n  "errorCode" : "not_found",\n'
        f'  "errorId" : "{error_id}",\n'
        '  "message" : "Afterpay payment ID not found.",\n  "httpStatusCode" : 404\n}').encode()


def test_error_ids_are_new_for_every_error(afterpay) -> None:
    ids = {afterpay.refund("42").json()["errorId"] for _ in range(5)}
    assert len(ids) == 5


def test_internal_error_is_rendered_in_afterpay_shape(afterpay, monkeypatch) -> None:
    # a crash inside the handler (a bug) still answers like Afterpay's recorded 500
    def boom(*_args, **_kwargs):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr("mock_server.afterpay.models.AfterpayModel.payment", boom)
    answer = afterpay.refund()
    afterpay.assert_error(answer, 500, "error", errors.INTERNAL_ERROR_MESSAGE)
    assert b"simulated" not in answer.content and b"Traceback" not in answer.content


def test_error_bodies_decode_as_json_objects(afterpay) -> None:
    body = json.loads(afterpay.refund("42").content)
    assert isinstance(body, dict) and len(body) == 4
