"""The ready-made drills in scenarios/drills/: each is loaded as shipped into a session of a real
server on a loopback port and shown through a real HTTP client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.afterpay.errors import CONFLICT_MESSAGE, SERVICE_UNAVAILABLE_MESSAGE
from mock_server.app import SandboxApp, create_app
from mock_server.core.scenarios import parse_duration
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, LiveServer, ManualTime

DRILLS = Path(__file__).resolve().parents[2] / "scenarios" / "drills"
AFTERPAY_READ_TIMEOUT_SECONDS = 70  # reference/afterpay.md: the real clients' read timeout
TOKEN_FORM = {"client_id": "sandbox-client", "client_secret": "sandbox-secret",
              "grant_type": "client_credentials", "scope": "api-user"}


class Drill:
    """A live server with one drill loaded into its own session."""

    def __init__(self, server: LiveServer, session: str) -> None:
        self.url = server.url
        self.session = session
        self.client = httpx.Client(base_url=server.url, timeout=10,
                                   headers={"X-Sandbox-Session": session})

    def afterpay(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers=AFTERPAY_HEADERS, **kwargs)

    def token(self) -> str:
        answer = self.client.post("/token", data=TOKEN_FORM)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["access_token"])

    def rules(self) -> dict[str, dict[str, Any]]:
        listing = self.client.get("/__admin/scenarios").json()
        return {rule["name"]: rule for s in listing["scenarios"] for rule in s["faults"]}

    def journal(self, **query: str) -> list[dict[str, Any]]:
        return list(self.client.get("/__admin/requests", params=query).json()["requests"])

    def refunds(self, order_id: str) -> list[str]:
        payment = self.afterpay("GET", f"/v2/payments/{order_id}").json()
        return [r["amount"]["amount"] for r in payment["refunds"]]


@pytest.fixture
def drill(live_server: Callable[[SandboxApp], LiveServer]) -> Iterator[Callable[[str], Drill]]:
    clients: list[httpx.Client] = []

    def load(name: str) -> Drill:
        server = live_server(create_app(Settings(seed=7), time_source=ManualTime()))
        loaded = Drill(server, f"drill-{name}")
        clients.append(loaded.client)
        path = DRILLS / f"{name}.yaml"
        answer = loaded.client.post("/__admin/scenarios", content=path.read_bytes(),
                                    headers={"X-Scenario-Source": str(path)})
        assert answer.status_code == 201, answer.text
        return loaded

    yield load
    for client in clients:
        client.close()


def refund(request_id: str, amount: str = "10.00") -> dict[str, Any]:
    return {"requestId": request_id, "merchantReference": f"ref-{request_id}",
            "amount": {"amount": amount, "currency": "AUD"}}


def in_parallel(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    for result in results:
        if not isinstance(result, httpx.Response):
            raise AssertionError(f"a parallel call failed: {result!r}")
    return [r for r in results if isinstance(r, httpx.Response)]


def test_every_drill_is_a_valid_scenario() -> None:
    from mock_server.cli import main

    assert sorted(p.stem for p in DRILLS.glob("*.yaml")) == [
        "afterpay-auth-expiry", "afterpay-declined-card", "afterpay-read-timeout",
        "afterpay-shopper-cancels", "flaky-network", "idempotency-409", "optty-abandoned-order",
        "optty-declined", "optty-shopper-cancels", "optty-token-expiry", "over-refund-race",
        "provider-outage"]
    assert main(["check", str(DRILLS)]) == 0


def test_provider_outage_then_recovery(drill: Callable[[str], Drill]) -> None:
    d = drill("provider-outage")
    statuses = []
    for number in range(4):
        answer = d.afterpay("POST", "/v2/payments/100101785223/refund",
                            json=refund(f"outage-{number}"))
        statuses.append(answer.status_code)
        if answer.status_code == 503:
            assert answer.json()["errorCode"] == "service_unavailable"
            assert answer.json()["message"] == SERVICE_UNAVAILABLE_MESSAGE
    assert statuses == [503, 503, 503, 201]
    assert d.refunds("100101785223") == ["10.00"]  # only the request after the outage

    tokens = [d.client.post("/token", data=TOKEN_FORM) for _ in range(4)]
    assert [t.status_code for t in tokens] == [503, 503, 503, 201]
    assert tokens[0].content == b'{"statusCode":503,"message":"Service Unavailable"}'
    assert {name: rule["remaining"] for name, rule in d.rules().items()} == {
        "afterpay-down": 0, "optty-down": 0}


def test_a_refund_slower_than_afterpays_read_timeout(drill: Callable[[str], Drill]) -> None:
    d = drill("afterpay-read-timeout")
    rule = d.rules()["refund-slower-than-read-timeout"]
    delay = parse_duration(rule["outcome"].removeprefix("delay "))
    assert delay.total_seconds() > AFTERPAY_READ_TIMEOUT_SECONDS
    # a client's read timeout fires long before the answer (a short one here, to stay fast)
    with pytest.raises(httpx.ReadTimeout):
        d.afterpay("POST", "/v2/payments/100101785223/refund", json=refund("slow-1"),
                   timeout=httpx.Timeout(5, read=0.5))
    # the refund is still being processed: the safe retry is told so, at once
    retry = d.afterpay("POST", "/v2/payments/100101785223/refund", json=refund("slow-1"),
                       timeout=5)
    assert retry.status_code == 409
    assert retry.json()["message"] == CONFLICT_MESSAGE
    assert d.refunds("100101785223") == []
    assert d.journal(operation="createRefund")[-1]["fault"]["action"] == "delay 75s"


def test_flaky_network_fails_the_same_requests_on_every_run(
        drill: Callable[[str], Drill]) -> None:
    d = drill("flaky-network")

    def run() -> list[int]:
        failed = []
        for number in range(60):
            try:
                d.afterpay("GET", "/v2/payments/100101785223")
            except httpx.TransportError:
                failed.append(number)
        return failed

    first = run()
    # --seed 7, session drill-flaky-network: the same six of sixty on every machine and run
    assert first == [1, 12, 24, 49, 51, 55]
    assert d.rules()["one-in-ten-reset"]["matched"] == len(first)
    # the same seed and session replay the same failures after a reset ...
    d.client.post("/__admin/reset")
    d.client.post("/__admin/scenarios", content=(DRILLS / "flaky-network.yaml").read_bytes())
    assert run() == first


def test_the_409_retry_drill(drill: Callable[[str], Drill]) -> None:
    d = drill("idempotency-409")
    body = refund("drill-409-1")
    original: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: original.update(
        answer=d.afterpay("POST", "/v2/payments/100101785223/refund", json=body)))
    thread.start()
    # the repeat arrives while the original holds the key: 409, "still processing"
    deadline = 50
    while not d.journal(operation="createRefund") and deadline:
        deadline -= 1
        threading.Event().wait(0.05)
    repeat = d.afterpay("POST", "/v2/payments/100101785223/refund", json=body)
    assert repeat.status_code == 409
    assert repeat.json()["errorCode"] == "conflict"
    assert repeat.json()["message"] == CONFLICT_MESSAGE
    thread.join(timeout=10)
    assert original["answer"].status_code == 201
    # once the original has answered, the repeat gets its stored answer, byte for byte
    replay = d.afterpay("POST", "/v2/payments/100101785223/refund", json=body)
    assert replay.status_code == 201
    assert replay.content == original["answer"].content
    assert d.refunds("100101785223") == ["10.00"]
    assert d.rules()["slow-idempotent-refund"]["matched"] == 3
    # a refund without the drill's requestId prefix is not slowed down
    assert d.afterpay("POST", "/v2/payments/100101785223/refund",
                      json=refund("other-1")).status_code == 201
    assert d.rules()["slow-idempotent-refund"]["matched"] == 3


def test_an_optty_token_that_expires_mid_run(drill: Callable[[str], Drill]) -> None:
    d = drill("optty-token-expiry")
    token = d.token()

    def refund_optty(reference: str, bearer: str) -> httpx.Response:
        return d.client.post("/orders/ORD-1001/refund", headers={
            "Authorization": f"Bearer {bearer}"}, json={
            "refundReference": reference, "refundAmount": {"amount": 5, "currency": "AUD"},
            "refundDescription": "drill"})

    assert refund_optty("exp-1", token).status_code == 201
    expired = refund_optty("exp-2", token)
    assert expired.status_code == 401
    assert expired.content == b'{"statusCode":401,"message":"Unauthorized"}'
    # the client fetches a new token and retries
    assert refund_optty("exp-2", d.token()).status_code == 201

    # the scripted answer is the one a token really past its 24 hours gets
    other = httpx.Client(base_url=d.url, headers={"X-Sandbox-Session": "real-expiry"})
    with other:
        old = other.post("/token", data=TOKEN_FORM).json()["access_token"]
        other.post("/__admin/clock/advance", json={"hours": 24})
        real = other.post("/orders/ORD-1001/refund", headers={"Authorization": f"Bearer {old}"},
                          json={"refundReference": "exp-3",
                                "refundAmount": {"amount": 5, "currency": "AUD"},
                                "refundDescription": "drill"})
    assert (real.status_code, real.content) == (expired.status_code, expired.content)


def test_two_clients_racing_to_over_refund_one_order(drill: Callable[[str], Drill]) -> None:
    d = drill("over-refund-race")
    path = "/v2/payments/100101789001/refund"
    answers = in_parallel(
        lambda: d.afterpay("POST", path, json=refund("race-a", "60.00")),
        lambda: d.afterpay("POST", path, json=refund("race-b", "60.00")))
    assert sorted(a.status_code for a in answers) == [201, 422]
    loser = next(a for a in answers if a.status_code == 422)
    assert loser.json()["errorCode"] == "invalid_amount"
    assert d.refunds("100101789001") == ["60.00"]
    # both were in flight together: each met the drill's processing delay
    assert d.rules()["slow-afterpay-refund"]["matched"] == 2

    token = d.token()

    def optty(reference: str) -> httpx.Response:
        return d.client.post("/orders/ORD-RACE-1/refund", headers={
            "Authorization": f"Bearer {token}"}, json={
            "refundReference": reference, "refundAmount": {"amount": 60, "currency": "AUD"},
            "refundDescription": "race"})

    answers = in_parallel(lambda: optty("race-a"), lambda: optty("race-b"))
    assert sorted(a.status_code for a in answers) == [201, 400]
    loser = next(a for a in answers if a.status_code == 400)
    assert json.loads(loser.content)["message"] == "You can only refund amount up to AUD 40.00"
    order = d.client.get("/orders/ORD-RACE-1", headers={"Authorization": f"Bearer {token}"})
    assert order.json()["refundableAmount"] == "40.00"


def _optty_order(d: Drill, token: str, reference: str) -> httpx.Response:
    from tests.api.optty.test_lifecycle import plugin_order

    return d.client.post("/orders", json=plugin_order(reference),
                         headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("name", "status", "field", "value"), [
    ("optty-declined", "DECLINED", "rejectReason", "Payment declined by ZIP_AU"),
    ("optty-shopper-cancels", "CANCELLED", "cancelledBy", "user"),
])
def test_the_shopper_declines_or_cancels(name: str, status: str, field: str, value: str,
                                         drill: Callable[[str], Drill]) -> None:
    d = drill(name)
    token = d.token()
    created = _optty_order(d, token, "5-1764720000drll")
    assert created.status_code == 201
    assert created.json()["paymentStatus"] == status.lower()
    auth = {"Authorization": f"Bearer {token}"}
    order = d.client.get("/orders/5-1764720000drll", headers=auth).json()
    assert order["status"] == status and order[field] == value
    assert order["capturedAmount"] == "0.00"
    refund = d.client.post("/orders/5-1764720000drll/refund", headers=auth, json={
        "refundReference": "r", "refundAmount": {"amount": 1, "currency": "AUD"},
        "refundDescription": "drill"})
    assert refund.json()["message"] == "Order is not eligible for refund"
    # the page, opened late, shows the outcome and links back with the signed status
    page = httpx.get(created.json()["redirectUrl"])  # a browser's request: no session header
    assert page.status_code == 200
    assert f"status={status}" in page.text and "hash=" in page.text


def test_an_order_nobody_opens_is_cancelled_by_the_system(
        drill: Callable[[str], Drill]) -> None:
    d = drill("optty-abandoned-order")
    token = d.token()
    url = _optty_order(d, token, "6-1764720000drll").json()["redirectUrl"]
    auth = {"Authorization": f"Bearer {token}"}
    assert d.client.get("/orders/6-1764720000drll", headers=auth).json()["status"] == "INITIATED"
    d.client.post("/__admin/clock/advance", json={"minutes": 10})
    order = d.client.get("/orders/6-1764720000drll", headers=auth).json()
    assert (order["status"], order["cancelledBy"]) == ("CANCELLED", "system")
    assert httpx.post(url, data={"status": "SUCCESSFUL"}).status_code == 409


CHECKOUT = {"amount": {"amount": "80.00", "currency": "AUD"},
            "consumer": {"email": "drill@example.com"},
            "merchant": {"redirectConfirmUrl": "https://shop.example/ok",
                         "redirectCancelUrl": "https://shop.example/no"}}


def _afterpay_checkout(d: Drill) -> str:
    answer = d.afterpay("POST", "/v2/checkouts", json=CHECKOUT)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_the_auth_expires_before_the_capture(drill: Callable[[str], Drill]) -> None:
    d = drill("afterpay-auth-expiry")
    auth = d.afterpay("POST", "/v2/payments/auth", json={"token": _afterpay_checkout(d)})
    assert auth.status_code == 201 and auth.json()["paymentState"] == "AUTH_APPROVED"
    order_id = auth.json()["id"]
    d.client.post("/__admin/clock/advance", json={"hours": 2})
    capture = d.afterpay("POST", f"/v2/payments/{order_id}/capture",
                         json={"amount": {"amount": "10.00", "currency": "AUD"}})
    assert capture.status_code == 412
    assert capture.json()["errorCode"] == "payment_expired"
    assert capture.json()["message"] == "The auth for this order has expired."
    payment = d.afterpay("GET", f"/v2/payments/{order_id}").json()
    assert payment["paymentState"] == "VOIDED" and payment["refunds"] == []
    assert [e["type"] for e in payment["events"]] == ["AUTH_APPROVED", "EXPIRED"]
    assert payment["events"][1]["amount"]["amount"] == "80.00"
    assert payment["openToCaptureAmount"]["amount"] == "0.00"


def test_the_shoppers_card_is_declined(drill: Callable[[str], Drill]) -> None:
    d = drill("afterpay-declined-card")
    auth = d.afterpay("POST", "/v2/payments/auth", json={"token": _afterpay_checkout(d)})
    assert auth.status_code == 402
    assert (auth.json()["status"], auth.json()["paymentState"]) == ("DECLINED", "AUTH_DECLINED")
    assert [e["type"] for e in auth.json()["events"]] == ["AUTH_DECLINED"]
    capture = d.afterpay("POST", "/v2/payments/capture", json={"token": _afterpay_checkout(d)})
    assert capture.status_code == 201
    assert (capture.json()["status"], capture.json()["paymentState"]) == (
        "DECLINED", "CAPTURE_DECLINED")
    refund = d.afterpay("POST", f"/v2/payments/{capture.json()['id']}/refund",
                        json={"amount": {"amount": "1.00", "currency": "AUD"}})
    assert refund.status_code == 412 and refund.json()["errorCode"] == "precondition_failed"


def test_the_shopper_cancels_the_checkout(drill: Callable[[str], Drill]) -> None:
    d = drill("afterpay-shopper-cancels")
    token = _afterpay_checkout(d)
    for path in ("/v2/payments/capture", "/v2/payments/auth"):
        answer = d.afterpay("POST", path, json={"token": token})
        assert answer.status_code == 412
        assert answer.json()["errorCode"] == "invalid_order_transaction_status"
        assert answer.json()["message"] == "Order has not been approved."
    assert d.afterpay("GET", f"/v2/payments/token:{token}").status_code == 404
