"""The dashboard's pages as the server renders them (the browser tests drive them whole)."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from mock_server.admin.ui import pretty_body
from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, ManualTime


def test_json_bodies_are_indented_and_anything_else_kept() -> None:
    assert pretty_body('{"a":{"b":[1]}}') == '{\n  "a": {\n    "b": [\n      1\n    ]\n  }\n}'
    assert pretty_body("not json {") == "not json {"
    assert pretty_body('{"cut": "off') == '{"cut": "off'
    assert pretty_body("[" * 100_000) == "[" * 100_000  # too deep to parse: as it came


def test_what_a_client_sent_is_escaped_never_run(client: TestClient) -> None:
    hostile = "<script>alert(1)</script>"
    client.post(f"/v2/payments/{hostile}/refund", headers=AFTERPAY_HEADERS,
                content=('{"note": "</pre>' + hostile + '"}').encode())
    page = client.get("/__admin/ui/session").text
    entry = client.get("/__admin/ui/requests/1").text
    for html in (page, entry):
        assert hostile not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("path, ui_root, site_root", [
    ("/__admin/ui/", "./", "../../"),
    ("/__admin/ui/session", "./", "../../"),
    ("/__admin/ui/requests/1", "../", "../../../"),
    ("/sessions/s-1/__admin/ui/session", "./", "../../../../"),
    ("/sessions/s-1/__admin/ui/requests/1", "../", "../../../../../"),
])
def test_links_are_relative_to_where_the_page_is(client: TestClient, path: str, ui_root: str,
                                                  site_root: str) -> None:
    html = client.get(path).text
    assert f'data-ui-root="{ui_root}"' in html
    assert f'href="{ui_root}static/dashboard.css"' in html
    if path.endswith("/ui/"):
        assert f'href="{site_root}sessions/default/__admin/ui/session"' in html


def test_an_unknown_entry_is_a_404_page(client: TestClient) -> None:
    answer = client.get("/__admin/ui/requests/99")
    assert answer.status_code == 404
    assert "No entry 99" in answer.text


def test_without_the_token_a_page_holds_no_data() -> None:
    app = create_app(Settings(seed=7, admin_token="t"), time_source=ManualTime())
    with TestClient(app) as client:
        client.post("/v2/payments/100101785223/refund", headers=AFTERPAY_HEADERS,
                    json={"amount": {"amount": "1.00", "currency": "AUD"}})
        for path in ("/__admin/ui/", "/__admin/ui/session", "/__admin/ui/requests/1"):
            locked = client.get(path)
            assert locked.status_code == 401
            assert 'id="token-form"' in locked.text
            assert not re.search(r"1001017852|ORD-1|createRefund|journal-rows", locked.text)
            wrong = client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            opened = client.get(path, headers={"Authorization": "Bearer t"})
            assert opened.status_code == 200 and 'id="token-form"' not in opened.text
        # the assets hold no data and need no token
        assert client.get("/__admin/ui/static/dashboard.js").status_code == 200


def test_an_unknown_asset_is_an_admin_404(client: TestClient) -> None:
    answer = client.get("/__admin/ui/static/..%2Fui.py")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
