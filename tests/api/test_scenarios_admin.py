"""Scenario documents POSTed to the admin API: seeding, listing, removing, refusing bad ones."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from tests.conftest import AFTERPAY_HEADERS, basic

SCENARIO = """\
name: extra
afterpay:
  merchants:
    - {merchantId: "200200200", secretKey: "k2", currency: USD}
  payments:
    - {id: "900000001", merchantId: "200200200", amount: "30.00"}
faults:
  - name: outage
    match: {provider: afterpay, method: POST}
    times: 2
    respond: {status: 503, error: service_unavailable}
"""


def test_post_yaml_seeds_the_session(client: TestClient) -> None:
    answer = client.post("/__admin/scenarios", content=SCENARIO,
                         headers={"Content-Type": "application/yaml", "X-Sandbox-Session": "s"})
    assert answer.status_code == 201
    assert answer.json() == {"session": "s", "name": "extra",
                             "seeded": {"afterpayMerchants": 1, "afterpayPayments": 1,
                                        "opttyMerchants": 0, "opttyOrders": 0},
                             "faults": 1}
    headers = {**AFTERPAY_HEADERS, "Authorization": basic("200200200", "k2"),
               "X-Sandbox-Session": "s"}
    payment = client.get("/v2/payments/900000001", headers=headers)
    assert payment.status_code == 200
    assert payment.json()["originalAmount"] == {"amount": "30.00", "currency": "USD"}
    # the default session is untouched
    assert client.get("/v2/payments/900000001", headers={
        **headers, "X-Sandbox-Session": "default"}).status_code == 401


def test_post_json_works_too(client: TestClient) -> None:
    document = {"name": "j", "afterpay": {"payments": [
        {"id": "900000002", "merchantId": "100101382", "amount": "5.00"}]}}
    answer = client.post("/__admin/scenarios", content=json.dumps(document),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 201
    assert client.get("/v2/payments/900000002", headers=AFTERPAY_HEADERS).status_code == 200


def test_list_and_delete(client: TestClient) -> None:
    client.post("/__admin/scenarios", content=SCENARIO)
    listed = client.get("/__admin/scenarios").json()["scenarios"]
    assert [s["name"] for s in listed] == ["default", "extra"]
    assert listed[1]["faults"] == [{"name": "outage", "provider": "afterpay", "matched": 0,
                                    "remaining": 2,
                                    "outcome": "respond 503 service_unavailable"}]
    deleted = client.delete("/__admin/scenarios/extra").json()
    assert deleted == {"session": "default", "name": "extra", "removedFaults": 1,
                       "kept": {"afterpayMerchants": 1, "afterpayPayments": 1,
                                "opttyMerchants": 0, "opttyOrders": 0}}
    assert [s["name"] for s in client.get("/__admin/scenarios").json()["scenarios"]] == \
        ["default"]
    assert client.delete("/__admin/scenarios/extra").status_code == 404


def test_bad_document_gets_400_with_lines_and_changes_nothing(client: TestClient) -> None:
    bad = SCENARIO.replace('amount: "30.00"', 'amount: "30.001"')
    answer = client.post("/__admin/scenarios", content=bad,
                         headers={"X-Scenario-Source": "drill.yaml"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_scenario"
    assert body["problems"] == [
        "drill.yaml:6: afterpay.payments[0].amount: '30.001' is not a money amount "
        "(digits with at most 2 decimals)"]
    assert body["message"] == "\n".join(body["problems"])
    assert [s["name"] for s in client.get("/__admin/scenarios").json()["scenarios"]] == \
        ["default"]


def test_apply_time_problem_leaves_the_session_untouched(client: TestClient) -> None:
    # the first payment is fine, the second names a merchant nobody seeded: nothing is applied
    document = ("name: half\nafterpay:\n  payments:\n"
                '    - {id: "900000003", merchantId: "100101382", amount: "5.00"}\n'
                '    - {id: "900000004", merchantId: "404404404", amount: "5.00"}\n')
    answer = client.post("/__admin/scenarios", content=document)
    assert answer.status_code == 400
    assert answer.json()["problems"] == [
        "<request>:5: unknown Afterpay merchant '404404404'"]
    assert client.get("/v2/payments/900000003", headers=AFTERPAY_HEADERS).status_code == 404


def test_syntax_error_is_400(client: TestClient) -> None:
    answer = client.post("/__admin/scenarios", content="name: [unclosed\n")
    assert answer.status_code == 400
    assert answer.json()["problems"][0].startswith("<request>:")


def test_same_name_replaces_the_earlier_faults(client: TestClient) -> None:
    client.post("/__admin/scenarios", content=SCENARIO)
    client.post("/__admin/scenarios", content=SCENARIO.replace("times: 2", "times: 5"))
    listed = client.get("/__admin/scenarios").json()["scenarios"]
    assert [s["name"] for s in listed] == ["default", "extra"]
    assert listed[1]["faults"][0]["remaining"] == 5
