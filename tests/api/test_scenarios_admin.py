"""Scenario documents POSTed to the admin API: seeding, listing, removing, refusing bad ones."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import AFTERPAY_HEADERS, basic, optty_token

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
    # the published schema allows the document; the session refuses it: 422
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "<request>:5: unknown Afterpay merchant '404404404'"]
    assert client.get("/v2/payments/900000003", headers=AFTERPAY_HEADERS).status_code == 404


@pytest.mark.parametrize("depth", [100, 30_000])
def test_a_deeply_nested_document_is_refused_and_applies_nothing(client: TestClient,
                                                                 depth: int) -> None:
    # a valid first half (a merchant and a payment) before the nesting: none of it may land
    document = SCENARIO + "optty:\n  providers: " + "[" * depth + "]" * depth + "\n"
    answer = client.post("/__admin/scenarios", content=document,
                         headers={"X-Scenario-Source": "deep.yaml"})

    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert len(problems) == 1 and re.fullmatch(r"deep\.yaml:[0-9]+: \S[^\n]*", problems[0])
    assert [s["name"] for s in client.get("/__admin/scenarios").json()["scenarios"]] == \
        ["default"]
    headers = {**AFTERPAY_HEADERS, "Authorization": basic("200200200", "k2")}
    assert client.get("/v2/payments/900000001", headers=headers).status_code == 401
    assert client.get("/__admin/health").status_code == 200


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


# -- re-seeding an order that has refunds ------------------------------------------------------
# The rule (docs/fidelity.md): a payment or order seeded again is the new one, whole. Its earlier
# refunds and the idempotency records they left are forgotten together, so a read-back and a
# replay never disagree.

RESEED = """\
name: reseed
afterpay:
  payments:
    - {id: "100101785223", merchantId: "100101382", amount: "50.00"}
"""


def test_reseeding_a_payment_forgets_its_refunds_and_their_replays(client: TestClient) -> None:
    refund = {"requestId": "rs-1", "merchantReference": "rs-ref",
              "amount": {"amount": "10.00", "currency": "AUD"}}
    first = client.post("/v2/payments/100101785223/refund", json=refund,
                        headers=AFTERPAY_HEADERS)
    assert first.status_code == 201
    assert client.post("/__admin/scenarios", content=RESEED).status_code == 201

    payment = client.get("/v2/payments/100101785223", headers=AFTERPAY_HEADERS).json()
    assert payment["refunds"] == []
    assert payment["openToRefundAmount"] == {"amount": "50.00", "currency": "AUD"}
    again = client.post("/v2/payments/100101785223/refund", json=refund,
                        headers=AFTERPAY_HEADERS)
    # not a replay of a refund the payment no longer lists: a new refund of the new payment
    assert again.status_code == 201
    assert again.json()["refundId"] != first.json()["refundId"]
    listed = client.get("/v2/payments/100101785223", headers=AFTERPAY_HEADERS).json()["refunds"]
    assert [r["refundId"] for r in listed] == [again.json()["refundId"]]


def test_reseeding_an_order_frees_the_references_of_its_refunds(client: TestClient) -> None:
    token = optty_token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    body = {"refundReference": "rs-opt", "refundAmount": {"amount": 5, "currency": "AUD"},
            "refundDescription": "x"}
    assert client.post("/orders/ORD-1001/refund", json=body, headers=bearer).status_code == 201
    reseed = ("name: reseed-o\noptty:\n  orders:\n"
              "    - {orderReference: ORD-1001, merchantId: sandbox-merchant, "
              "bnplProvider: ZIP_AU, amount: '40.00', currency: AUD, status: SUCCESSFUL}\n")
    assert client.post("/__admin/scenarios", content=reseed).status_code == 201

    order = client.get("/orders/ORD-1001", headers=bearer).json()
    assert order["refunds"] == []
    again = client.post("/orders/ORD-1001/refund", json=body, headers=bearer)
    assert again.status_code == 201, again.text
    assert [r["refundReference"] for r in
            client.get("/orders/ORD-1001", headers=bearer).json()["refunds"]] == ["rs-opt"]
@pytest.mark.parametrize(("document", "status"), [
    # breaks the published schema: 400
    (b'{"nmae": "x"}', 400),
    (b'{"afterpay": {"payments": [{"id": "1", "merchantId": "100101382"}]}}', 400),
    (b'{"faults": [{"name": "f", "times": 0, "delay": "1s"}]}', 400),
    (b"name: [unclosed\n", 400),
    # allowed by the published schema, refused by what it cannot say: 422
    (b'{"afterpay": {"payments": [{"id": "1", "merchantId": "9", "amount": "1.00"}]}}', 422),
    (b'{"afterpay": {"payments": [{"id": "1", "merchantId": "100101382", "amount": 1e2}]}}',
     422),
    (b'{"afterpay": {"payments": [{"id": "1", "merchantId": "100101382", "amount": "1.00",'
     b' "refunds": [{"amount": "2.00"}]}]}}', 422),
    (b"afterpay:\n  payments:\n    - {id: '1', merchantId: '9', amount: '1.00'}\n", 422),
])
def test_schema_problems_are_400_and_the_rest_422(client: TestClient, document: bytes,
                                                  status: int) -> None:
    answer = client.post("/__admin/scenarios", content=document)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == "invalid_scenario"
    assert answer.json()["problems"]
