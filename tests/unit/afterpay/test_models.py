"""Tests for mock_server.afterpay.models (seeding checks, eligibility, ids, idempotency keys)
and the small HTTP helpers in handlers (media types, body parsing)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from textwrap import dedent

import pytest

from mock_server.afterpay import errors
from mock_server.afterpay.handlers import accepts_json, is_json, parse_body
from mock_server.afterpay.models import AfterpayModel, Merchant, fingerprint
from mock_server.afterpay.requests import JsonNumber, RefundRequest
from mock_server.app import create_app
from mock_server.core.scenarios import ScenarioError, parse_scenario
from mock_server.settings import Settings

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MERCHANT = Merchant("100101382", "sandbox-secret-key", ("AUD",))


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(seed=1), time_source=lambda: START)


@pytest.fixture(scope="module")
def model(app) -> AfterpayModel:
    return next(p for p in app.providers if p.name == "afterpay").model


def _scenario(app, text: str):
    return parse_scenario(dedent(text), "test.yaml", error_codes=app.world.error_codes)


def _request(amount: str = "10.00", currency: str = "AUD", request_id: str | None = "r",
             merchant_reference: str | None = "m", note: str | None = None) -> RefundRequest:
    return RefundRequest(Decimal(amount), currency, request_id, merchant_reference, note)


# -- seeding checks: a scenario is applied whole or not at all ---------------------------

@pytest.mark.parametrize(("payment", "problem"), [
    ('{id: "1", merchantId: "999", amount: "10.00"}',
     "test.yaml:4: unknown Afterpay merchant '999'"),
    ('{id: "1", merchantId: "100101382", amount: "10.00", currency: USD}',
     "test.yaml:4: merchant 100101382 does not take USD"),
    ('{id: "1", merchantId: "100101382", amount: "10.00", captured: "1.00", state: AUTH_DECLINED}',
     "test.yaml:4: a declined payment (AUTH_DECLINED) cannot have captured money"),
    # a state without capture captures nothing, so its refunds exceed what was captured
    ('{id: "1", merchantId: "100101382", amount: "10.00", state: VOIDED, '
     'refunds: [{amount: "0.01"}]}',
     "test.yaml:4: refunds total 0.01, more than the 0.00 captured (nothing else is "
     "refundable)"),
    ('{id: "1", merchantId: "100101382", amount: "10.00", state: AUTH_APPROVED, '
     'refunds: [{amount: "5.00"}]}',
     "test.yaml:4: refunds total 5.00, more than the 0.00 captured (nothing else is "
     "refundable)"),
    ('{id: "1", merchantId: "100101382", amount: "10.00", refunds: [{amount: "1.00", '
     'refundId: "10000001"}]}',  # the default world's payment 100101785224 has it
     "test.yaml:4: refundId 10000001 is already used by another refund"),
])
def test_check_seed_problems(app, model, payment: str, problem: str) -> None:
    scenario = _scenario(app, f"""\
        name: bad
        afterpay:
          payments:
            - {payment}
        """)
    session = app.world.session("seed-check")
    assert model.check_seed(session, scenario) == [problem]
    with pytest.raises(ScenarioError):
        app.world.load(session, scenario)
    assert "1" not in session.state("afterpay").payments  # nothing applied


def test_reseeding_a_payment_may_keep_its_refund_ids(app, model) -> None:
    scenario = _scenario(app, """\
        name: reseed
        afterpay:
          payments:
            - {id: "100101785224", merchantId: "100101382", amount: "100.00", refunds: [{amount: "1.00", refundId: "10000001"}]}
        """)  # noqa: E501
    session = app.world.session("reseed")
    assert model.check_seed(session, scenario) == []
    app.world.load(session, scenario)
    view = session.ledger.view(("afterpay", "100101382", "100101785224"))
    assert view is not None and view.remaining == Decimal("99.00")


def test_generated_refund_ids_skip_ids_already_used(app, model, monkeypatch) -> None:
    session = app.world.session("ids")
    state = session.state("afterpay")
    assert "10000001" in state.refund_ids  # seeded by the default world
    numbers = iter([10000001, 10000001, 12345678])
    monkeypatch.setattr(session.ids, "sequence", lambda name, start: next(numbers))
    assert model._new_refund_id(session, state) == "12345678"
    assert "12345678" in state.refund_ids


def test_seeded_payment_fields(app, model) -> None:
    session = app.world.session("fields")
    payment = session.state("afterpay").payments["100101785223"]
    assert payment.token.startswith("002.") and len(payment.token) == 52
    assert payment.created == START
    body = model.payment_body(session, payment)
    # recorded (solidus_afterpay immediate/capture/valid): an immediate capture is one CAPTURED
    # event, no expiry, reference null
    assert [(e["type"], e["expires"], e["paymentEventMerchantReference"])
            for e in body["events"]] == [("CAPTURED", None, None)]


# -- eligibility -----------------------------------------------------------------------

@pytest.mark.parametrize(("state", "captured", "eligible"), [
    ("CAPTURED", "10.00", True), ("PARTIALLY_CAPTURED", "5.00", True),
    ("VOIDED", "5.00", True), ("CAPTURE_DECLINED", "5.00", True),
    ("AUTH_APPROVED", "0", False), ("VOIDED", "0", False), ("CAPTURE_DECLINED", "0", False),
    ("AUTH_DECLINED", "0", False),
])
def test_eligibility(app, model, state: str, captured: str, eligible: bool) -> None:
    session = app.world.session("eligibility")
    payment = session.state("afterpay").payments["100101785223"]
    payment.state, payment.captured = state, Decimal(captured)
    if eligible:
        model.check_refundable(session, payment, _request())
    else:
        with pytest.raises(errors.PreconditionFailed):
            model.check_refundable(session, payment, _request())


# -- idempotency keys and fingerprints ---------------------------------------------------

@pytest.mark.parametrize(("request_id", "reference", "keyed"), [
    ("r", "m", True), ("r", None, False), (None, "m", False), (None, None, False),
    ("", "", True)])
def test_idempotency_needs_both_keys(model, request_id, reference, keyed: bool) -> None:
    key = model.idempotency_key(MERCHANT, _request(request_id=request_id,
                                                   merchant_reference=reference))
    assert (key is not None) == keyed
    if keyed:
        assert key == ("afterpay", "100101382", request_id, reference)


def test_fingerprint() -> None:
    base = fingerprint("1", _request())
    assert fingerprint("1", _request()) == base
    assert fingerprint("2", _request()) != base
    assert fingerprint("1", _request(amount="10.01")) != base
    assert fingerprint("1", _request(note="x")) != base
    assert fingerprint("1", _request(currency="NZD")) != base


# -- media types and body parsing ------------------------------------------------------

@pytest.mark.parametrize(("accept", "ok"), [
    (None, True), ("", True), ("*/*", True), ("application/*", True),
    ("application/json", True), ("application/hal+json", True), ("text/html", False),
    ("application/json;q=0", False), ("application/json; q=0.001", True),
    ("text/html, */*;q=0.1", True), ("*/*;q=0", False), ("application/json;q=x", True)])
def test_accepts_json(accept, ok: bool) -> None:
    assert accepts_json(accept) is ok


@pytest.mark.parametrize(("content_type", "ok"), [
    (None, False), ("", False), ("application/json", True), ("application/json;charset=UTF-8",
                                                             True),
    ("application/problem+json", True), ("text/json", False), ("text/plain", False)])
def test_is_json(content_type, ok: bool) -> None:
    assert is_json(content_type) is ok


def test_parse_body_keeps_numbers_as_written() -> None:
    body = parse_body(b'{"a":10.50,"b":1e2,"c":-0,"d":' + b"9" * 5000 + b"}")
    assert body["a"] == JsonNumber("10.50") and body["b"] == JsonNumber("1e2")
    assert body["c"] == JsonNumber("-0") and body["d"] == JsonNumber("9" * 5000)


@pytest.mark.parametrize("raw", [b"", b"{", b"NaN", b'{"a":Infinity}', b"\xff", b"[" * 50_000,
                                 b"{} {}", b'{"a":01}'])
def test_parse_body_refuses_what_jackson_refuses(raw: bytes) -> None:
    with pytest.raises(errors.InvalidJson):
        parse_body(raw)


def test_parse_body_skips_a_byte_order_mark() -> None:
    assert parse_body(b"\xef\xbb\xbf{}") == {}


def test_a_refund_id_another_process_took_is_skipped_in_the_ledger_step(
        app, model, monkeypatch) -> None:
    # the ledger (shared by processes) holds the refund id this process has not seen: the
    # atomic step refuses it and the next id is drawn; the refund is recorded once
    from mock_server.afterpay.models import refund_reference
    from mock_server.afterpay.requests import RefundRequest
    from mock_server.core.ledger import RefundEntry

    session = app.world.session("taken-elsewhere")
    state = session.state("afterpay")
    payment = state.payments["100101785223"]
    other = state.payments["100101785224"]
    session.ledger.refund(other.account, RefundEntry("20000000", Decimal("1.00"), START),
                          reference=refund_reference("20000000"))
    numbers = iter([20000000, 20000001])
    monkeypatch.setattr(session.ids, "sequence", lambda name, start: next(numbers))
    monkeypatch.setattr(model, "check_refundable", lambda *a, **k: None)
    request = RefundRequest(Decimal("2.00"), payment.currency, None, None, None)
    entry, _ = model.refund(session, payment, request, None)
    assert entry.refund_id == "20000001"
    view = session.ledger.view(payment.account)
    assert [e.refund_id for e in view.refunds][-1:] == ["20000001"]
