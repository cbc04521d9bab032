"""The Optty shopper's page in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium): the browser opens the order's redirectUrl, clicks a
button, follows the 303 to a real shop server on loopback, and the shop checks the hash the way
Optty's own plugin does. Skipped only where no Chromium is installed and CI is not set."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.api.optty.test_lifecycle import plugin_order

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HASH_SECRET = "plugin-hash-secret"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class Shop:
    """The merchant's site on loopback: records where the shopper lands and answers a page."""

    def __init__(self) -> None:
        self.landed: list[str] = []
        self.arrived = threading.Event()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/favicon.ico":
                    self.send_error(404)
                    return
                shop.landed.append(self.path)
                shop.arrived.set()
                body = b"<!DOCTYPE html><title>Shop</title><h1 id='thanks'>Back at the shop</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop() -> Iterator[Shop]:
    running = Shop()
    yield running
    running.stop()


def _order(sandbox: str, shop: Shop, session: str, reference: str) -> dict[str, Any]:
    admin = {"X-Sandbox-Session": session, "Content-Type": "application/json"}
    scenario = ('{"name": "portal", "optty": {"merchants": [{"merchantId": "sandbox-merchant", '
                '"clientId": "sandbox-client", "clientSecret": "sandbox-secret", '
                f'"redirectUrl": "{shop.url}/?wc-api=optty_gateway", '
                f'"hashSecret": "{HASH_SECRET}"}}]}}}}')
    with httpx.Client(base_url=sandbox, timeout=10) as http:
        assert http.post("/__admin/scenarios", content=scenario, headers=admin
                         ).status_code == 201
        token = http.post("/token", data={
            "client_id": "sandbox-client", "client_secret": "sandbox-secret",
            "grant_type": "client_credentials", "scope": "api-user"},
            headers={"X-Sandbox-Session": session}).json()["access_token"]
        created = http.post("/orders/", json=plugin_order(reference), headers={
            "Authorization": f"Bearer {token}", "X-Sandbox-Session": session})
        assert created.status_code == 201, created.text
        body = dict(created.json())
        body["token"] = token
        return body


def _read_order(sandbox: str, session: str, token: str, reference: str) -> dict[str, Any]:
    with httpx.Client(base_url=sandbox, timeout=10) as http:
        answer = http.get(f"/orders/{reference}", headers={
            "Authorization": f"Bearer {token}", "X-Sandbox-Session": session})
        return dict(answer.json())


@pytest.mark.parametrize(("button", "status"), [("approve", "SUCCESSFUL"),
                                                ("decline", "DECLINED"),
                                                ("cancel", "CANCELLED")])
def test_a_shopper_decides_in_a_real_browser_and_lands_back_at_the_shop_signed(
        button: str, status: str, live_server: Any, shop: Shop, browser: Any) -> None:
    server = live_server(create_app(Settings(seed=9)))
    session = f"browser-{button}"
    created = _order(server.url, shop, session, "77-1700000000wxyz")
    # the page's address names the session: the browser sends no header
    assert f"/sessions/{session}/__portal/optty/ZIP_AU/" in created["redirectUrl"]
    browser.get(created["redirectUrl"])
    assert browser.title == "Pay with ZIP_AU"
    assert browser.find_element(By.ID, "order").text == "77-1700000000wxyz"
    assert browser.find_element(By.ID, "amount").text == "AUD 110.00"
    labels = [b.text for b in browser.find_elements(By.TAG_NAME, "button")]
    assert labels == ["Approve", "Decline", "Cancel", "Fail", "Leave pending"]
    assert _read_order(server.url, session, created["token"],
                       "77-1700000000wxyz")["status"] == "PENDING"
    browser.find_element(By.ID, button).click()
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located(
        (By.ID, "thanks")))
    assert shop.arrived.is_set() and len(shop.landed) == 1
    landed = urlsplit(shop.landed[0])
    query = {k: v[0] for k, v in parse_qs(landed.query).items()}
    assert query["wc-api"] == "optty_gateway"
    assert query["status"] == status and query["reference"] == "77-1700000000wxyz"
    # Optty's plugin: hash_hmac('sha512', status . '|' . reference, hash_secret), lowercase hex
    expected = hmac.new(HASH_SECRET.encode(), f"{status}|77-1700000000wxyz".encode(),
                        hashlib.sha512).hexdigest()
    assert query["hash"] == expected
    order = _read_order(server.url, session, created["token"], "77-1700000000wxyz")
    assert order["status"] == status and query["providerReference"] == order["bnplOrderId"]
