"""Many fault rules: matched through an index, so a request meets only the rules that can apply
to it (and a clean session none at all), with a limit per session."""

from __future__ import annotations

import json
import random

import pytest

from mock_server.app import create_app
from mock_server.core import faults
from mock_server.core.faults import FaultIndex, FaultRequest, FaultRule
from mock_server.settings import Settings
from tests.reliability.conftest import AFTERPAY, PAYMENT, run


def rule(order: int, match: dict[str, object]) -> FaultRule:
    return FaultRule(f"r{order}", "test", {"name": f"r{order}", "match": match,
                                            "respond": {"status": 503}})


def request(provider: str, method: str, path: str) -> FaultRequest:
    return FaultRequest(provider, method, path, {}, {}, b"")


def test_the_index_picks_the_same_first_rule_as_a_scan() -> None:
    draw = random.Random(17)
    providers = ["afterpay", "optty", None]
    methods = ["GET", "POST", "get", None]
    paths = ["/ping", "/v2/payments/1", "/v2/payments/2", "/v2/*", "/orders/?/refund", None,
             "/orders/A/refund"]
    for _ in range(200):
        rules = []
        for order in range(draw.randint(0, 12)):
            match = {key: value for key, value in (
                ("provider", draw.choice(providers)), ("method", draw.choice(methods)),
                ("path", draw.choice(paths))) if value is not None}
            rules.append(rule(order, match))
        index = FaultIndex(rules)
        for _ in range(10):
            req = request(draw.choice(["afterpay", "optty"]), draw.choice(["GET", "POST"]),
                          draw.choice(["/ping", "/v2/payments/1", "/v2/payments/2",
                                       "/orders/A/refund", "/orders/B/refund", "/other"]))
            scanned = next((r for r in rules if r.matches(req)), None)
            indexed = next((r for r in index.candidates(req) if r.matches(req)), None)
            assert indexed is scanned, (req.provider, req.method, req.path,
                                        [r.spec["match"] for r in rules])


def scenario(name: str, count: int, path: str = "/v2/payments/{i}/refund") -> bytes:
    return json.dumps({"name": name, "faults": [
        {"name": f"{name}-{i}", "match": {"provider": "afterpay", "method": "POST",
                                          "path": path.format(i=i)},
         "respond": {"status": 503, "error": "service_unavailable"}}
        for i in range(count)]}).encode()


def count_matching(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked = [0]
    matches = FaultRule.matches

    def counting(self: FaultRule, req: FaultRequest) -> bool:
        asked[0] += 1
        return matches(self, req)

    monkeypatch.setattr(FaultRule, "matches", counting)
    return asked


def test_a_request_meets_only_the_rules_that_can_match_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(Settings(seed=1, max_fault_rules=1000))
    headers = {"x-sandbox-session": "loaded", "content-type": "application/json"}
    assert run(app, "POST", "/__admin/scenarios", headers, scenario("many", 999)).status == 201
    glob = json.dumps({"name": "glob", "faults": [
        {"name": "all-pings", "match": {"path": "/pi*"}, "respond": {"status": 418}}]}).encode()
    assert run(app, "POST", "/__admin/scenarios", headers, glob).status == 201
    asked = count_matching(monkeypatch)
    # a path one rule names: that rule (plus the glob one, which every request must be asked)
    answer = run(app, "POST", "/v2/payments/17/refund", {**AFTERPAY, **headers}, b"{}")
    assert answer.status == 503
    assert asked[0] <= 2
    asked[0] = 0
    assert run(app, "GET", "/ping", {"x-sandbox-session": "loaded"}).status == 418
    assert asked[0] == 1
    # a clean session asks no rule at all, whatever another session loaded
    asked[0] = 0
    assert run(app, "GET", f"/v2/payments/{PAYMENT}",
               {**AFTERPAY, "x-sandbox-session": "clean"}).status == 200
    assert asked[0] == 0


def test_rules_still_fire_in_load_order_and_are_spent() -> None:
    app = create_app(Settings(seed=1))
    doc = json.dumps({"name": "order", "faults": [
        {"name": "first", "match": {"path": "/pi*"}, "times": 1, "respond": {"status": 418}},
        {"name": "second", "match": {"provider": "afterpay", "method": "GET", "path": "/ping"},
         "respond": {"status": 503}}]}).encode()
    headers = {"x-sandbox-session": "o", "content-type": "application/json"}
    assert run(app, "POST", "/__admin/scenarios", headers, doc).status == 201
    assert [run(app, "GET", "/ping", headers).status for _ in range(3)] == [418, 503, 503]
    # deleting the scenario takes its rules out of the index
    assert run(app, "DELETE", "/__admin/scenarios/order", headers).status == 200
    assert run(app, "GET", "/ping", headers).status == 200


def test_more_rules_than_the_limit_are_refused_whole() -> None:
    app = create_app(Settings(seed=1, max_fault_rules=100))
    headers = {"x-sandbox-session": "limited", "content-type": "application/json"}
    assert run(app, "POST", "/__admin/scenarios", headers, scenario("a", 60)).status == 201
    refused = run(app, "POST", "/__admin/scenarios", headers, scenario("b", 41))
    assert refused.status == 422
    body = refused.json()
    assert body["error"] == "invalid_scenario"
    assert body["problems"] == ["<request>:1: the session would have 101 fault rules; at most "
                                "100 are allowed (--max-fault-rules)"]
    # the session is untouched; loading `a` again replaces its rules rather than adding
    listed = run(app, "GET", "/__admin/scenarios", headers).json()["scenarios"]
    assert [s["name"] for s in listed] == ["default", "a"]
    assert run(app, "POST", "/__admin/scenarios", headers, scenario("a", 100)).status == 201


def test_the_index_is_used_by_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(Settings(seed=1))
    headers = {"x-sandbox-session": "idx", "content-type": "application/json"}
    assert run(app, "POST", "/__admin/scenarios", headers, scenario("x", 3)).status == 201
    built: list[int] = []
    original = faults.FaultIndex.__init__

    def tracking(self: FaultIndex, rules: object) -> None:
        original(self, rules)  # type: ignore[arg-type]
        built.append(len(self))

    monkeypatch.setattr(faults.FaultIndex, "__init__", tracking)
    for _ in range(5):
        run(app, "GET", "/ping", headers)
    assert built == [3]  # built once for the session, not per request
