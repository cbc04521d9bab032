"""The shopper's pages of every provider, served by one app (mock_server.core.portal): what no
page handles is answered as plain HTML, and each request is journaled as provider `portal`."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.portal import PortalApp
from mock_server.settings import Settings


@pytest.fixture
def client() -> TestClient:
    with TestClient(create_app(Settings(seed=5))) as test_client:
        yield test_client


def test_one_portal_app_serves_both_providers_pages(client: TestClient) -> None:
    app = client.app
    portals = [p for p in app.providers if isinstance(p, PortalApp)]  # type: ignore[attr-defined]
    assert len(portals) == 1
    operations = set(portals[0].handlers)
    assert {"afterpayPortalPage", "afterpayPortalConfirm", "afterpayPortalCancel",
            "opttyPortalPage", "opttyPortalOutcome"} == operations


@pytest.mark.parametrize("path", ["/__portal/afterpay/au/checkout/?token=nope",
                                  "/__portal/optty/ZIP_AU/nope"])
def test_an_unknown_page_is_a_404_page(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Not found</h1>" in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_a_wrong_method_is_a_405_page_with_allow(client: TestClient) -> None:
    answer = client.delete("/__portal/afterpay/au/checkout/confirm")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert "text/html" in answer.headers["content-type"]


def test_a_request_head_over_the_limit_is_a_431_page(client: TestClient) -> None:
    answer = client.get("/__portal/optty/ZIP_AU/x", headers={"X-Big": "x" * 9000})
    assert answer.status_code == 431
    assert "text/html" in answer.headers["content-type"]


def test_pages_are_journaled_as_portal(client: TestClient) -> None:
    client.get("/__portal/afterpay/au/checkout/?token=nope")
    entries = client.get("/__admin/requests?provider=portal").json()["requests"]
    assert [e["operation"] for e in entries] == ["afterpayPortalPage"]
