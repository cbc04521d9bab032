"""Real serving processes on one store: two `mock-server serve` on one SQLite file or one Redis
server keep the money exact whatever races between them, and a `kill -9` loses nothing that
was answered."""

from __future__ import annotations

import json
from decimal import Decimal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import AFTERPAY, NO_PROXY, Served
from tests.stores.conftest import redis_server  # noqa: F401 - the fixture, for this module

RACE_WORLD = """\
name: race
afterpay:
  merchants:
    - {merchantId: "100101382", secretKey: "sandbox-secret-key", currency: AUD}
  payments:
    - {id: "race-1", merchantId: "100101382", amount: "100.00"}
optty:
  merchants:
    - {merchantId: "sandbox-merchant", clientId: "sandbox-client", clientSecret: "sandbox-secret", webhookUrl: "WEBHOOK"}
  providers:
    ZIP_AU: {partialRefunds: true}
    VOLT: {asyncRefunds: true, callbackAfter: "60s", finalStatus: SUCCESSFUL}
  orders:
    - {orderReference: "ORD-1", merchantId: "sandbox-merchant", bnplProvider: ZIP_AU, amount: "100.00", currency: AUD, status: SUCCESSFUL}
    - {orderReference: "ORD-V", merchantId: "sandbox-merchant", bnplProvider: VOLT, amount: "60.00", currency: AUD, status: SUCCESSFUL}
"""


def http(url: str, method: str = "GET", body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = None if body is None else (body if isinstance(body, bytes)
                                      else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=30) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.db'}"
    server = request.getfixturevalue("redis_server")
    server.client.flushdb()
    return str(server.url)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    path = tmp_path / "race.yaml"
    path.write_text(RACE_WORLD.replace("WEBHOOK", "http://127.0.0.1:9/nobody"))
    return path


def refund(server: Served, amount: str, **extra: str) -> tuple[int, bytes]:
    return http(f"{server.url}/v2/payments/race-1/refund", "POST",
                {"amount": {"amount": amount, "currency": "AUD"}, **extra}, AFTERPAY)


def refunded(server: Served) -> list[str]:
    status, body = http(f"{server.url}/v2/payments/race-1", headers=AFTERPAY)
    assert status == 200, body
    return [r["amount"]["amount"] for r in json.loads(body)["refunds"]]


def race(servers: list[Served], count: int, call: Callable[[Served], Any]) -> list[Any]:
    """`count` calls spread over the servers, as many at once as 16 threads make them."""
    start = threading.Barrier(16)

    def one(index: int) -> Any:
        if index < 16:
            start.wait(30)
        return call(servers[index % len(servers)])

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("topology", ["two servers", "--workers 2"])
def test_200_racing_refunds_over_two_processes_make_exactly_100(
        serve: Any, store_url: str, world: Path, topology: str) -> None:
    if topology == "two servers":
        servers = [serve("--store", store_url, "--scenario", str(world)) for _ in range(2)]
    else:
        servers = [serve("--store", store_url, "--scenario", str(world), "--workers", "2")]
    pids: set[int] = set()

    def call(server: Served) -> tuple[int, bytes]:
        answer = refund(server, "1.00")
        pids.add(json.loads(http(f"{server.url}/__admin/health")[1])["pid"])
        return answer

    answers = race(servers, 200, call)
    statuses = [status for status, _ in answers]
    assert len(pids) == 2  # both processes served
    assert statuses.count(201) == 100
    assert statuses.count(422) == 100  # the rest: more than what is left
    made = {json.loads(body)["refundId"] for status, body in answers if status == 201}
    assert len(made) == 100  # a hundred distinct refunds
    for server in servers:  # every process reads back exactly those, 100.00 in all
        status, body = http(f"{server.url}/v2/payments/race-1", headers=AFTERPAY)
        listed = json.loads(body)["refunds"]
        assert {r["refundId"] for r in listed} == made
        assert sum(Decimal(r["amount"]["amount"]) for r in listed) == Decimal("100.00")


def test_60_racing_identical_idempotent_refunds_make_one_with_identical_replays(
        serve: Any, store_url: str, world: Path) -> None:
    servers = [serve("--store", store_url, "--scenario", str(world)) for _ in range(2)]
    answers = race(servers, 60, lambda server: refund(
        server, "7.00", requestId="same-1", merchantReference="same-ref-1"))
    assert {status for status, _ in answers} == {201}
    assert len({body for _, body in answers}) == 1
    assert refunded(servers[0]) == ["7.00"]


def test_an_optty_refund_reference_is_taken_once_across_processes(
        serve: Any, store_url: str, world: Path) -> None:
    servers = [serve("--store", store_url, "--scenario", str(world)) for _ in range(2)]
    tokens = {}
    for server in servers:
        status, body = http(f"{server.url}/token", "POST",
                            b"client_id=sandbox-client&client_secret=sandbox-secret"
                            b"&grant_type=client_credentials&scope=api-user",
                            {"content-type": "application/x-www-form-urlencoded"})
        assert status == 201, body
        tokens[server.url] = json.loads(body)["access_token"]

    def call(server: Served) -> int:
        return http(f"{server.url}/orders/ORD-1/refund", "POST", {
            "refundReference": "one-ref", "refundAmount": {"amount": 1, "currency": "AUD"},
            "refundDescription": "race"}, {"authorization": f"Bearer {tokens[server.url]}",
                                           "content-type": "application/json"})[0]

    answers = race(servers, 40, call)
    assert answers.count(201) == 1
    assert set(answers) <= {201, 400, 409}


def test_a_reset_through_one_process_is_seen_by_the_other(
        serve: Any, store_url: str, world: Path) -> None:
    one, two = (serve("--store", store_url, "--scenario", str(world)) for _ in range(2))
    assert refund(one, "10.00")[0] == 201
    assert refunded(two) == ["10.00"]
    assert http(f"{one.url}/__admin/reset", "POST")[0] == 200
    assert refunded(two) == []


class Hook:
    """A webhook receiver on loopback: records the bodies it is sent."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        got = self.got = []  # type: list[dict[str, Any]]
        self.arrived = threading.Event()
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_kill_9_loses_nothing_that_was_answered(serve: Any, tmp_path: Path) -> None:
    hook = Hook()
    world = tmp_path / "durable.yaml"
    world.write_text(RACE_WORLD.replace("WEBHOOK", hook.url))
    try:
        _killed_and_restarted(serve, tmp_path, world, hook)
    finally:
        hook.close()


def _killed_and_restarted(serve: Any, tmp_path: Path, world: Path, hook: Hook) -> None:
    url = f"sqlite:{tmp_path / 'durable.db'}"
    server = serve("--store", url, "--scenario", str(world))
    first = refund(server, "4.00", requestId="k-1", merchantReference="k-ref-1")
    assert first[0] == 201
    assert refund(server, "6.00")[0] == 201
    fault = {"name": "twice", "faults": [{
        "name": "two-503", "times": 2, "respond": {"status": 503},
        "match": {"provider": "afterpay", "method": "GET", "path": "/v2/payments/race-1"}}]}
    assert http(f"{server.url}/__admin/scenarios", "POST", fault,
                {"content-type": "application/json"})[0] == 201
    assert http(f"{server.url}/v2/payments/race-1", headers=AFTERPAY)[0] == 503
    assert http(f"{server.url}/__admin/clock/advance", "POST", {"seconds": 3600},
                {"content-type": "application/json"})[0] == 200
    _, clock = http(f"{server.url}/__admin/clock")
    # an Optty refund whose callback is pending (due in 60 s of session time)
    status, body = http(f"{server.url}/token", "POST",
                        b"client_id=sandbox-client&client_secret=sandbox-secret"
                        b"&grant_type=client_credentials&scope=api-user",
                        {"content-type": "application/x-www-form-urlencoded"})
    token = json.loads(body)["access_token"]
    status, body = http(f"{server.url}/orders/ORD-V/refund", "POST", {
        "refundReference": "pending-1", "refundAmount": {"amount": 5, "currency": "AUD"},
        "refundDescription": "x"}, {"authorization": f"Bearer {token}",
                                    "content-type": "application/json"})
    assert status == 201 and json.loads(body)["refundStatus"] == "PENDING"

    server.kill()  # SIGKILL: no shutdown hook, no flush
    again = serve("--store", url, "--scenario", str(world))
    assert refund(again, "4.00", requestId="k-1", merchantReference="k-ref-1") == first
    _, clock_after = http(f"{again.url}/__admin/clock")
    assert json.loads(clock_after)["offsetSeconds"] == json.loads(clock)["offsetSeconds"]
    # the fault rule fired once before: once more, then it is spent
    assert http(f"{again.url}/v2/payments/race-1", headers=AFTERPAY)[0] == 503
    assert refunded(again) == ["4.00", "6.00"]
    # the journal: every answered request before the kill is listed (oldest first)
    _, listed = http(f"{again.url}/__admin/requests?limit=100")
    paths = [(e["method"], e["path"], e["status"]) for e in reversed(json.loads(listed)["requests"])]
    assert paths[:3] == [("POST", "/v2/payments/race-1/refund", 201)] * 2 + [
        ("GET", "/v2/payments/race-1", 503)]
    status, order = http(f"{again.url}/orders/ORD-V", headers={
        "authorization": f"Bearer {token}"})
    assert status == 200
    assert [r["refundStatus"] for r in json.loads(order)["refunds"]] == ["PENDING"]
    # the pending callback is still pending: when its time comes, the new process sends it
    assert not hook.got
    assert http(f"{again.url}/__admin/clock/advance", "POST", {"seconds": 60},
                {"content-type": "application/json"})[0] == 200
    assert hook.arrived.wait(30)
    assert [(c["event"], c["data"]["refundReference"]) for c in hook.got] == [
        ("REFUND_CALLBACK", "pending-1")]
