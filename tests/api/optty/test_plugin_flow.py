"""Optty's own WooCommerce plugin (WordPress.org "optty" 1.0.0), its refund flow byte for byte.

The plugin's requests as Guzzle 7 sends them: class-authentication.php posts form_params to the
auth URL (`.../token`), class-refund.php posts JSON to `{api_url}/orders/{ref}/refund` and
accepts the refund only when the status is exactly 201; class-payment.php reads the order with
GET and a Content-Type header but no body. Every answer goes through json_decode(...,
JSON_THROW_ON_ERROR).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

GUZZLE = {"User-Agent": "GuzzleHttp/7"}


def php_json_decode(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


def test_the_plugins_refund_flow(client: Any) -> None:
    # Authentication::request_access_token('api-user')
    form = urlencode({"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                      "grant_type": "client_credentials", "response_type": "token",
                      "scope": "api-user"})
    answer = client.post("/token", content=form.encode(), headers={
        **GUZZLE, "Content-Type": "application/x-www-form-urlencoded"})
    data = php_json_decode(answer.content)
    assert "message" not in data  # the plugin's test for a failed token request
    token, life_time = data["access_token"], data["expires_in"]
    assert life_time - 60 * 10 > 0  # it caches the token for expires_in - 10 minutes

    # Optty_Gateway::process_refund(): (float) amount, a uniqid()-based reference
    body = ('{"refundAmount":{"amount":10.0,"currency":"AUD"},'
            '"refundDescription":"Refund for order 123",'
            '"refundReference":"6543a1b2c3d4e512345678"}')
    answer = client.post("/orders/ORD-1001/refund", content=body.encode(), headers={
        **GUZZLE, "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 201  # `$is_successful = 201 === $response['status_code']`
    response_data = php_json_decode(answer.content)
    assert response_data["refundReference"] == "6543a1b2c3d4e512345678"
    assert response_data["refundedAmount"] == "10.00"

    # Payment::get_order_status()
    answer = client.get("/orders/ORD-1001", headers={
        **GUZZLE, "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    order = php_json_decode(answer.content)
    assert order["status"] == "SUCCESSFUL"
    assert float(order["amount"]) == 100.0


def test_a_failed_plugin_refund_is_anything_but_201(client: Any) -> None:
    form = urlencode({"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                      "grant_type": "client_credentials", "response_type": "token",
                      "scope": "api-user"})
    token = php_json_decode(client.post("/token", content=form.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded"}).content)["access_token"]
    body = ('{"refundAmount":{"amount":500.0,"currency":"AUD"},'
            '"refundDescription":"Refund for order 123","refundReference":"tooMuch1"}')
    answer = client.post("/orders/ORD-1001/refund", content=body.encode(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert php_json_decode(answer.content)["message"] == (
        "You can only refund amount up to AUD 102.50")


def test_bad_credentials_give_the_plugin_a_message(client: Any) -> None:
    form = urlencode({"client_id": "sandbox-client", "client_secret": "wrong",
                      "grant_type": "client_credentials", "response_type": "token",
                      "scope": "api-user"})
    answer = client.post("/token", content=form.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 401
    assert "message" in php_json_decode(answer.content)
