"""Point 7: idempotent refunds (requestId + merchantReference): byte-identical replays, the
retention period on the session clock, differing bodies, 409 while in flight, and refunds
without both keys. Plus hundreds of concurrent refunds on one payment."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from starlette.testclient import TestClient

from mock_server.afterpay import handlers
from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import basic
from tests.interleave import ExclusionProbe, probe_ledger

KEYS = {"requestId": "req-1", "merchantReference": "refund-1"}
CONFLICT = ("conflict", "Request is still being processed. Retry with the same requestId.")
WARNING = handlers.WARN_REPLAY_BODY_DIFFERS
TIMEOUT = 10  # seconds; a broken 409 must fail the test, not hang it


def _refunds(afterpay, order_id: str = "100101785223") -> list[dict]:
    return afterpay.payment_json(order_id)["refunds"]


def test_replay_is_byte_identical_and_moves_no_money(afterpay, time_source) -> None:
    first = afterpay.refund(amount="10.00", **KEYS)
    assert first.status_code == 201
    time_source.advance(hours=5)
    second = afterpay.refund(amount="10.00", **KEYS)
    assert second.status_code == 201
    assert second.content == first.content  # same refundId, refundedAt, body, bytes
    assert second.headers["content-type"] == first.headers["content-type"]
    assert "x-sandbox-warning" not in second.headers
    assert len(_refunds(afterpay)) == 1
    assert afterpay.open_to_refund() == Decimal("110.00")


def test_replay_after_the_money_is_gone_still_answers_the_original(afterpay) -> None:
    first = afterpay.refund(amount="120.00", **KEYS)
    assert first.status_code == 201
    assert afterpay.refund(amount="120.00", **KEYS).content == first.content


def test_replay_after_120_days_still_answers_the_original(afterpay, settings) -> None:
    session = afterpay.in_session("late-replay")
    session.advance(days=119)
    first = session.refund(amount="5.00", **KEYS)
    session.advance(days=2)  # the payment is now past 120 days, the record 2 days old
    assert session.refund(amount="5.00", **KEYS).content == first.content


def test_equivalent_body_is_not_a_different_body(afterpay) -> None:
    first = afterpay.refund(raw=b'{"requestId":"req-1","merchantReference":"refund-1",'
                                b'"amount":{"amount":"10.0","currency":"AUD"}}')
    second = afterpay.refund(raw=b'{ "amount" : { "currency":"AUD", "amount":10.00 },'
                                 b' "merchantReference":"refund-1", "requestId":"req-1",'
                                 b' "refundMerchantReference": null, "unknown": 1 }')
    assert second.content == first.content
    assert "x-sandbox-warning" not in second.headers


@pytest.mark.parametrize("change", [
    {"amount": "11.00"},
    {"refundMerchantReference": "other"},
])
def test_replay_with_a_different_body_gets_the_original_and_a_warning(afterpay, change) -> None:
    first = afterpay.refund(amount="10.00", **KEYS)
    second = afterpay.refund(**{"amount": "10.00", **KEYS, **change})
    assert second.status_code == 201
    assert second.content == first.content
    assert second.headers["x-sandbox-warning"] == WARNING
    assert len(_refunds(afterpay)) == 1 and afterpay.open_to_refund() == Decimal("110.00")


def test_replay_against_another_payment_gets_the_original_and_a_warning(afterpay) -> None:
    first = afterpay.refund(amount="10.00", **KEYS)
    second = afterpay.refund("100101785224", amount="10.00", **KEYS)
    assert second.content == first.content
    assert second.headers["x-sandbox-warning"] == WARNING
    assert len(_refunds(afterpay, "100101785224")) == 1  # only its seeded refund


def test_the_warning_is_kept_in_the_journal(afterpay) -> None:
    afterpay.refund(amount="10.00", **KEYS)
    afterpay.refund(amount="12.00", **KEYS)
    entries = afterpay.client.get("/__admin/requests", params={"limit": 1}).json()
    assert WARNING in json.dumps(entries)


def test_kept_seven_days_of_session_time_by_default(afterpay) -> None:
    session = afterpay.in_session("ttl")
    first = session.refund(amount="10.00", **KEYS)
    session.advance(seconds=7 * 86400 - 0.001)
    assert session.refund(amount="10.00", **KEYS).content == first.content
    session.advance(seconds=0.001)  # exactly 7 days: the record has expired
    third = session.refund(amount="10.00", **KEYS)
    assert third.status_code == 201
    assert third.json()["refundId"] != first.json()["refundId"]
    assert len(_refunds(session)) == 2
    # ... and the new answer is the one kept from now on
    assert session.refund(amount="10.00", **KEYS).content == third.content


@pytest.mark.parametrize("settings", [Settings(seed=7, idempotency_ttl=timedelta(hours=1))])
def test_retention_is_configurable(afterpay, settings) -> None:
    first = afterpay.refund(amount="10.00", **KEYS)
    afterpay.advance(minutes=59)
    assert afterpay.refund(amount="10.00", **KEYS).content == first.content
    afterpay.advance(minutes=1)
    assert afterpay.refund(amount="10.00", **KEYS).json()["refundId"] != first.json()["refundId"]


def test_sessions_do_not_share_idempotency_records(afterpay) -> None:
    first = afterpay.refund(amount="10.00", **KEYS)
    other = afterpay.in_session("other").refund(amount="10.00", **KEYS)
    assert other.json()["refundId"] != first.json()["refundId"]


def test_merchants_do_not_share_idempotency_records(afterpay) -> None:
    nz = afterpay.as_merchant("100101400", "sandbox-secret-key-nz")
    afterpay.refund(amount="10.00", **KEYS)
    answer = nz.refund("100101785300", amount="10.00", currency="NZD", **KEYS)
    assert answer.status_code == 201 and answer.json()["amount"]["currency"] == "NZD"


def test_reset_forgets_idempotency_records(afterpay) -> None:
    afterpay.refund(amount="10.00", **KEYS)
    assert afterpay.client.post("/__admin/reset").status_code == 200
    assert afterpay.open_to_refund() == Decimal("120.00")
    # a new refund (the money moves again), not a replay of the forgotten answer
    assert afterpay.refund(amount="10.00", **KEYS).status_code == 201
    assert afterpay.open_to_refund() == Decimal("110.00")


@pytest.mark.parametrize("keys", [
    {}, {"requestId": "req-1"}, {"merchantReference": "refund-1"},
    {"requestId": None, "merchantReference": None},
    {"requestId": "req-1", "merchantReference": None},
], ids=["none", "requestId-only", "merchantReference-only", "both-null", "one-null"])
def test_without_both_keys_every_request_is_a_new_refund(afterpay, keys) -> None:
    answers = [afterpay.refund(amount="10.00", **keys) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["refundId"] for a in answers}) == 3
    assert afterpay.open_to_refund() == Decimal("90.00")


@pytest.mark.sandbox_verified
def test_recorded_null_keys_each_create_a_refund(afterpay) -> None:
    # recorded (solidus_afterpay credit/valid.yml): null keys sent, a new refund each time
    raw = (b'{"requestId":null,"merchantReference":null,"refundMerchantReference":null,'
           b'"amount":{"amount":"10.0","currency":"AUD"}}')
    ids = {afterpay.refund(raw=raw).json()["refundId"] for _ in range(2)}
    assert len(ids) == 2


# -- errors are not kept -----------------------------------------------------------------

def test_a_refused_request_is_not_kept_and_can_be_corrected(afterpay) -> None:
    refused = afterpay.refund(amount="500.00", **KEYS)
    afterpay.assert_error(refused, 422, "invalid_amount")
    # the same keys, now with a possible amount: a real refund, not a replay of the 422
    answer = afterpay.refund(amount="50.00", **KEYS)
    assert answer.status_code == 201
    assert afterpay.open_to_refund() == Decimal("70.00")


def test_a_refusal_after_the_claim_releases_the_key(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("100101785227", **KEYS), 412, "precondition_failed")
    afterpay.assert_error(afterpay.refund("100101785230", **KEYS), 422,
                          "refund_timelimit_exceeded")
    assert afterpay.refund(**KEYS).status_code == 201
    stats = afterpay.client.app.world.session("default").ledger.stats()
    assert stats["idempotencyRecords"] == 1


def test_a_crash_releases_the_key(afterpay, monkeypatch) -> None:
    from mock_server.afterpay.models import AfterpayModel

    real = AfterpayModel.refund
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AfterpayModel, "refund", flaky)
    afterpay.assert_error(afterpay.refund(**KEYS), 500, "error")
    assert afterpay.refund(**KEYS).status_code == 201
    assert len(_refunds(afterpay)) == 1


# -- 409 while the original is in flight -------------------------------------------------

def _async_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


def test_repeat_while_the_original_is_in_flight_is_409(afterpay, monkeypatch) -> None:
    """The original is held inside its processing time (deterministically, by an event)."""
    app = afterpay.client.app
    headers = afterpay.headers()
    body = {"amount": {"amount": "10.00", "currency": "AUD"}, **KEYS}

    async def scenario() -> tuple[httpx.Response, ...]:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def held(ctx, **_options) -> None:
            # only the original is held; the repeats' own (no-op) processing time passes
            if not entered.is_set():
                entered.set()
                await release.wait()

        monkeypatch.setattr(handlers, "processing_time", held)
        async with _async_client(app) as client:
            url = "/v2/payments/100101785223/refund"
            original = asyncio.create_task(client.post(url, json=body, headers=headers))
            await entered.wait()
            repeat = await client.post(url, json=body, headers=headers)
            different = await client.post(url, json={**body, "amount": {
                "amount": "1.00", "currency": "AUD"}}, headers=headers)
            release.set()
            first = await original
            monkeypatch.setattr(handlers, "processing_time", _no_delay)
            replay = await client.post(url, json=body, headers=headers)
        return repeat, different, first, replay

    repeat, different, first, replay = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    afterpay.assert_error(repeat, 409, *CONFLICT)
    afterpay.assert_error(different, 409, *CONFLICT)
    assert first.status_code == 201
    assert replay.content == first.content
    assert len(_refunds(afterpay)) == 1


async def _no_delay(ctx, **_options) -> None:
    return None


def test_scripted_processing_delay_gives_409_to_a_repeat(afterpay, monkeypatch) -> None:
    """The real processing_time, with ctx.state["processing_delay"] set as the fault engine
    sets it for a `delay` rule (here by a wrapper around the handler, for one request). The
    delay is long and the original is cancelled once the repeat has its answer, so nothing
    depends on timing."""
    app = afterpay.client.app
    provider = next(p for p in app.providers if p.name == "afterpay")
    real_handler = provider.handlers["createRefund"]
    url = "/v2/payments/100101785223/refund"
    headers = afterpay.headers()
    body = {"amount": {"amount": "10.00", "currency": "AUD"}, **KEYS}

    async def scenario() -> httpx.Response:
        delayed_started = asyncio.Event()

        async def with_delay(ctx):
            if "x-test-delay" in ctx.headers:
                ctx.state["processing_delay"] = 600
                delayed_started.set()
            return await real_handler(ctx)

        monkeypatch.setitem(provider.handlers, "createRefund", with_delay)
        async with _async_client(app) as client:
            original = asyncio.create_task(client.post(
                url, json=body, headers={**headers, "X-Test-Delay": "1"}))
            await delayed_started.wait()
            # between the wrapper and the delay the handler never yields, so the original
            # already holds its key and sleeps
            repeat = await client.post(url, json=body, headers=headers)
            original.cancel()
            with pytest.raises(asyncio.CancelledError):
                await original
            return repeat

    repeat = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    afterpay.assert_error(repeat, 409, *CONFLICT)
    assert _refunds(afterpay) == []  # the cancelled original moved nothing
    assert afterpay.refund(**KEYS).status_code == 201


def test_a_cancelled_original_releases_its_key_and_moves_no_money(afterpay, monkeypatch) -> None:
    app = afterpay.client.app
    headers = afterpay.headers()
    body = {"amount": {"amount": "10.00", "currency": "AUD"}, **KEYS}

    async def scenario() -> None:
        entered = asyncio.Event()

        async def forever(ctx, **_options) -> None:
            entered.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(handlers, "processing_time", forever)
        async with _async_client(app) as client:
            task = asyncio.create_task(client.post("/v2/payments/100101785223/refund",
                                                   json=body, headers=headers))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        monkeypatch.setattr(handlers, "processing_time", _no_delay)

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    assert _refunds(afterpay) == []
    assert afterpay.refund(**KEYS).status_code == 201  # a fresh refund, not a 409


# -- concurrency: what was captured is never exceeded ------------------------------------

def test_hundreds_of_concurrent_refunds_never_exceed_what_was_captured(afterpay,
                                                                       monkeypatch) -> None:
    app = afterpay.client.app
    headers = afterpay.headers()

    async def interleave(ctx, **_options) -> None:
        # every request yields to the others between its checks and its refund
        for _ in range(3):
            await asyncio.sleep(0)

    monkeypatch.setattr(handlers, "processing_time", interleave)
    amounts = [Decimal("0.37") + Decimal(i % 11) for i in range(300)]

    async def scenario() -> list[httpx.Response]:
        async with _async_client(app) as client:
            url = "/v2/payments/100101785223/refund"
            return list(await asyncio.gather(*[
                client.post(url, headers=headers, json={
                    "amount": {"amount": str(a), "currency": "AUD"},
                    # a third idempotent, sharing 20 keys among them
                    **({"requestId": f"r{i % 20}", "merchantReference": "m"} if i % 3 == 0
                       else {})})
                for i, a in enumerate(amounts)]))

    answers = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    statuses = {a.status_code for a in answers}
    assert statuses <= {201, 409, 422}
    for answer in answers:
        if answer.status_code == 422:
            assert answer.json()["errorCode"] == "invalid_amount"
    successes = {a.json()["refundId"]: Decimal(a.json()["amount"]["amount"])
                 for a in answers if a.status_code == 201}
    # every 201 for one idempotency key is the same answer, byte for byte
    by_key: dict[str, set[bytes]] = {}
    for i, answer in enumerate(answers):
        if i % 3 == 0 and answer.status_code == 201:
            by_key.setdefault(f"r{i % 20}", set()).add(answer.content)
    assert by_key and all(len(bodies) == 1 for bodies in by_key.values())
    assert 0 < sum(successes.values()) <= Decimal("120.00")
    refunds = _refunds(afterpay)
    assert {r["refundId"]: Decimal(r["amount"]["amount"]) for r in refunds} == successes
    assert len(refunds) == len(successes)
    assert afterpay.open_to_refund() == Decimal("120.00") - sum(successes.values())


def test_concurrent_refunds_from_threads(afterpay) -> None:
    # each refund waits inside the ledger's atomic step until another thread is turned away
    # (a TestClient outside `with` runs each request on its own loop in the calling thread)
    app = afterpay.client.app
    probe = ExclusionProbe(workers=8)
    probe_ledger(app.world.session("default").ledger, probe)
    client = TestClient(app)
    answers: list[httpx.Response] = []

    def worker() -> None:
        with probe.worker():
            for _ in range(5):  # 80.00 captured
                answers.append(client.post("/v2/payments/100101785225/refund",
                                           headers=afterpay.headers(), json={
                                               "amount": {"amount": "3.00", "currency": "AUD"}}))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert probe.overlaps == 0 and probe.visits == 26
    assert sorted(a.status_code for a in answers) == [201] * 26 + [422] * 14
    assert afterpay.open_to_refund("100101785225") == Decimal("2.00")


def test_concurrent_sessions_on_a_fresh_app() -> None:
    # idempotency and money are per session even when the sessions run at the same time
    app = create_app(Settings(seed=3))

    async def scenario():
        async with _async_client(app) as client:
            headers = {"Authorization": basic(),
                       "User-Agent": "t", "Content-Type": "application/json"}
            return await asyncio.gather(*[
                client.post("/v2/payments/100101785223/refund",
                            headers={**headers, "X-Sandbox-Session": f"s{i % 4}"},
                            json={"amount": {"amount": "50.00", "currency": "AUD"}})
                for i in range(16)])

    answers = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    assert sorted(a.status_code for a in answers) == [201] * 8 + [422] * 8


def test_seeded_refunds_are_history_not_idempotency_records(afterpay) -> None:
    # the default world's payment 100101785224 has a 40.00 refund seeded with these keys
    answer = afterpay.refund("100101785224", amount="40.00", requestId="seed-req-1",
                             merchantReference="seed-refund-1")
    assert answer.status_code == 201
    assert answer.json()["refundId"] != "10000001"
    assert afterpay.open_to_refund("100101785224") == Decimal("20.00")


def _processing_moments(afterpay, monkeypatch, call) -> int:
    """How often the request reached its processing moment (after one stored refund)."""
    afterpay.refund(**KEYS)
    seen: list[int] = []

    async def spy(ctx, **_options) -> None:
        seen.append(id(ctx))

    monkeypatch.setattr(handlers, "processing_time", spy)
    call(afterpay)
    return len(seen)


@pytest.mark.parametrize("call", [
    lambda ap: ap.refund(),
    lambda ap: ap.refund("100101785227"),  # business rules are part of processing
    lambda ap: ap.payment(),
    lambda ap: ap.client.get("/ping"),
], ids=["201", "412", "get", "ping"])
def test_a_scripted_delay_is_taken_at_the_processing_moment(afterpay, monkeypatch,
                                                            call) -> None:
    """processing_time is where a `delay` rule takes effect: making a refund, reading a
    payment, answering ping."""
    assert _processing_moments(afterpay, monkeypatch, call) == 1


@pytest.mark.parametrize("call", [
    lambda ap: ap.refund(amount="FREE"),
    lambda ap: ap.refund("404404"),
    lambda ap: ap.refund(**KEYS),  # a replay (the first call below stored it)
    lambda ap: ap.payment("404404"),
], ids=["422", "404", "replay", "get-404"])
def test_refusals_and_replays_answer_before_the_processing_moment(afterpay, monkeypatch,
                                                                  call) -> None:
    """Refused or replayed before processing: no scripted delay, so the retry of a delayed
    refund is told at once (409) and a replay is not slowed down."""
    assert _processing_moments(afterpay, monkeypatch, call) == 0
