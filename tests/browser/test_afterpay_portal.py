"""The shopper's step in a real browser: Debian's headless Chromium, through its chromedriver,
opens redirectCheckoutUrl on a live sandbox (loopback only), presses a button and lands on the
merchant's URL in Afterpay's format; the merchant then captures. Skipped only where Chromium is
missing and CI is not set (tests/browser/conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import basic

HEADERS = {"Authorization": basic(), "User-Agent": "BrowserTest/1.0", "Accept": "application/json",
           "Content-Type": "application/json"}


@pytest.fixture
def sandbox(live_server: Any) -> Any:
    return live_server(create_app(Settings(seed=3)))


def _checkout(url: str, session: str) -> tuple[str, str]:
    body = {"amount": {"amount": "42.50", "currency": "AUD"},
            "consumer": {"email": "browser@example.com", "givenNames": "Bea", "surname": "Rowser"},
            # the merchant's pages: the sandbox's own /ping, so the browser stays on loopback
            "merchant": {"redirectConfirmUrl": f"{url}/ping?shop=confirm",
                         "redirectCancelUrl": f"{url}/ping?shop=cancel"},
            "items": [{"name": "Umbrella", "quantity": 1,
                       "price": {"amount": "42.50", "currency": "AUD"}}]}
    answer = httpx.post(f"{url}/v2/checkouts", content=json.dumps(body),
                        headers={**HEADERS, "X-Sandbox-Session": session})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"], answer.json()["redirectCheckoutUrl"]


def _arrives(browser: Any, part: str) -> None:
    """Waits for the navigation a click started (the browser's own event, not a sleep); the
    bound only stops a hung browser from hanging the suite."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda driver: part in driver.current_url)


@pytest.mark.parametrize(("button", "status", "paid"), [
    ("confirm-approved", "SUCCESS", ("APPROVED", "CAPTURED")),
    ("confirm-declined", "SUCCESS", ("DECLINED", "CAPTURE_DECLINED")),
    ("cancel", "CANCELLED", None),
])
def test_the_shopper_presses_a_button_in_chromium(browser: Any, sandbox: Any, button: str,
                                                  status: str, paid: Any) -> None:
    from selenium.webdriver.common.by import By

    session = f"browser-{button}"
    token, checkout_url = _checkout(sandbox.url, session)
    # the session is in the page's path: the browser sends no session header
    assert f"/sessions/{session}/__portal/afterpay/au/checkout/" in checkout_url
    browser.get(checkout_url)
    assert "42.50 AUD" in browser.find_element(By.ID, "amount").text
    assert "Umbrella" in browser.find_element(By.ID, "items").text
    browser.find_element(By.ID, button).click()
    shop = "confirm" if status == "SUCCESS" else "cancel"
    expected = f"{sandbox.url}/ping?shop={shop}&status={status}&orderToken={token}"
    _arrives(browser, "orderToken=")
    assert browser.current_url == expected
    assert "pong" in browser.page_source
    capture = httpx.post(f"{sandbox.url}/v2/payments/capture",
                         content=json.dumps({"token": token}),
                         headers={**HEADERS, "X-Sandbox-Session": session})
    if paid is None:
        assert capture.status_code == 412
        assert capture.json()["errorCode"] == "invalid_order_transaction_status"
        # reopened after cancel, and confirmed this time
        browser.get(checkout_url)
        browser.find_element(By.ID, "confirm-approved").click()
        _arrives(browser, "status=SUCCESS")
    else:
        assert capture.status_code == 201, capture.text
        assert (capture.json()["status"], capture.json()["paymentState"]) == paid
    journal = httpx.get(f"{sandbox.url}/__admin/requests?operation=afterpayPortalPage",
                        headers={"X-Sandbox-Session": session}).json()
    assert journal["total"] >= 1
