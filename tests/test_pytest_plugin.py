"""The pytest plugin: a sandbox per test run, a session per test, also under pytest-xdist."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mock_server.core.world import SESSION_NAME
from mock_server.pytest_plugin import SandboxServer, session_name
from tests.conftest import basic

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[1] / "README.md"
# the inner runs need neither hypothesis nor schemathesis, whose imports take seconds
QUIET = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest")

REFUND = '''
import json
import urllib.error
import urllib.request

AUTH = {"Authorization": "<the default world's Basic credentials>",
        "User-Agent": "Shop/1.0 (Python; Merchant/100101382) https://shop.example",
        "Content-Type": "application/json"}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def refund(base_url, order_id, amount, request_id="r-1"):
    body = json.dumps({"requestId": request_id,
                       "amount": {"amount": amount, "currency": "AUD"}}).encode()
    request = urllib.request.Request(f"{base_url}/v2/payments/{order_id}/refund", body, AUTH)
    try:
        with NO_PROXY.open(request) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
'''.replace("<the default world's Basic credentials>", basic())


@pytest.fixture(autouse=True)
def in_process_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # a developer's own MOCK_SERVER_URL must not turn the inner runs' sandboxes external
    monkeypatch.delenv("MOCK_SERVER_URL", raising=False)
    monkeypatch.delenv("MOCK_SERVER_ADMIN_TOKEN", raising=False)


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert found.get("refund_mock_server") == "mock_server.pytest_plugin"


def test_loading_the_plugin_imports_no_server() -> None:
    code = ("import sys, mock_server.pytest_plugin; "
            "print(sorted(m for m in ('uvicorn', 'starlette', 'mock_server.app', 'yaml', "
            "'jsonschema', 'jwt', 'urllib.request') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_session_names_are_valid_stable_and_distinct() -> None:
    long_id = "tests/api/test_refunds.py::TestRefunds::test_many[" + "x" * 80 + "-{a}]"
    first, second = session_name(long_id.format(a=1)), session_name(long_id.format(a=2))
    assert first != second
    for name in (first, second, session_name("t.py::test_a"), session_name("t.py::[]")):
        assert SESSION_NAME.match(name), name
    assert session_name("t.py::test_a") == session_name("t.py::test_a")
    assert session_name("t.py::test_a").startswith("test_a-")


def test_a_test_gets_urls_scenarios_journal_clock_and_reset(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", drills="name: drills\nafterpay:\n  payments:\n"
                                      "    - {id: '777', merchantId: '100101382', "
                                      "amount: '30.00'}\n")
    pytester.makepyfile(REFUND + '''
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mock_server.pytest_plugin import SandboxError


def test_urls_point_at_this_tests_session(sandbox):
    assert re.fullmatch(r"http://127\\.0\\.0\\.1:\\d+", sandbox.server.url)
    own = f"{sandbox.server.url}/sessions/{sandbox.name}"
    assert sandbox.afterpay_url == sandbox.optty_url == own
    assert sandbox.optty_token_url == sandbox.optty_url + "/token"
    assert sandbox.headers == {"X-Sandbox-Session": sandbox.name}
    assert sandbox.name.startswith("test_urls_point_at_this_tests_session-")
    assert sandbox.server.app is not None


def test_scenarios_as_dict_text_and_path(sandbox, pytestconfig):
    sandbox.load_scenario({"name": "a", "afterpay": {"payments": [
        {"id": "501", "merchantId": "100101382", "amount": "10.00"}]}})
    sandbox.load_scenario("name: b\\nafterpay:\\n  payments:\\n"
                          "    - {id: '502', merchantId: '100101382', amount: '20.00'}\\n")
    loaded = sandbox.load_scenario(Path(str(pytestconfig.rootpath)) / "drills.yaml")
    assert loaded["seeded"]
    assert [s["name"] for s in sandbox.scenarios()][-3:] == ["a", "b", "drills"]
    assert refund(sandbox.afterpay_url, "501", "10.00")[0] == 201
    assert refund(sandbox.afterpay_url, "502", "20.00")[0] == 201
    assert refund(sandbox.afterpay_url, "777", "30.00")[0] == 201


def test_a_bad_scenario_is_refused_whole(sandbox):
    with pytest.raises(SandboxError) as refused:
        sandbox.load_scenario("name: bad\\nafterpay:\\n  payments:\\n"
                              "    - {id: '503', merchantId: '100101382', amount: '1.00'}\\n"
                              "    - {id: '504', merchantId: '100101382', amount: lots}\\n")
    assert refused.value.status == 400
    assert "<test>:5: " in str(refused.value)
    assert refund(sandbox.afterpay_url, "503", "1.00")[0] == 404


@pytest.mark.sandbox_scenario("drills.yaml")
def test_marker_loads_a_scenario_next_to_the_test(sandbox):
    assert refund(sandbox.afterpay_url, "777", "30.00")[0] == 201


def test_journal_with_filters(sandbox):
    assert refund(sandbox.afterpay_url, "100101785223", "1.00", "r-1")[0] == 201
    assert refund(sandbox.afterpay_url, "100101785226", "1.00", "r-2")[0] == 422
    assert [r["status"] for r in sandbox.requests()] == [422, 201]
    assert [r["status"] for r in sandbox.requests(status=201)] == [201]
    assert sandbox.requests(provider="optty") == []
    assert len(sandbox.requests(operation="createRefund", limit=1)) == 1
    assert "[REDACTED]" == sandbox.requests()[0]["headers"]["authorization"]
    assert sandbox.clear_requests() == 2
    assert sandbox.requests() == []


def test_clock(sandbox):
    at = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert sandbox.freeze(at) == at
    assert sandbox.now() == at
    assert sandbox.advance(days=1, hours=2) == at + timedelta(days=1, hours=2)
    assert sandbox.advance(timedelta(minutes=5)) == at + timedelta(days=1, hours=2, minutes=5)
    assert abs(sandbox.reset_clock() - datetime.now(timezone.utc)) < timedelta(minutes=1)
    with pytest.raises(SandboxError, match="400"):
        sandbox.advance(weeks=1)


def test_clock_moves_the_120_day_rule(sandbox):
    sandbox.load_scenario({"name": "new", "afterpay": {"payments": [
        {"id": "601", "merchantId": "100101382", "amount": "10.00"}]}})
    sandbox.advance(days=121)
    answer = refund(sandbox.afterpay_url, "601", "1.00")
    assert answer[1]["errorCode"] == "refund_timelimit_exceeded"


def test_reset(sandbox):
    assert refund(sandbox.afterpay_url, "100101785223", "120.00")[0] == 201
    assert refund(sandbox.afterpay_url, "100101785223", "120.00", "r-2")[0] == 422
    sandbox.reset()
    assert sandbox.requests() == []
    assert refund(sandbox.afterpay_url, "100101785223", "120.00", "r-3")[0] == 201
''')
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=8)


def test_sessions_are_isolated_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    seen = pytester.mkdir("seen")
    pytester.makepyfile(REFUND + f'''
import os

import pytest


@pytest.mark.parametrize("n", range(8))
def test_full_refund_in_a_fresh_world(sandbox, n):
    # all eight refund the whole payment: a shared world would answer 422 from the second on
    assert refund(sandbox.afterpay_url, "100101785223", "120.00")[0] == 201
    assert len(sandbox.requests()) == 1
    worker = os.environ["PYTEST_XDIST_WORKER"]
    with open(os.path.join({str(seen)!r}, f"{{n}}"), "w") as out:
        out.write(f"{{worker}} {{sandbox.server.url}} {{sandbox.name}}")
''')
    result = pytester.runpytest_subprocess("-n", "2", *QUIET, timeout=120)
    result.assert_outcomes(passed=8)
    rows = [path.read_text().split() for path in seen.iterdir()]
    assert len(rows) == 8
    workers = {row[0] for row in rows}
    assert workers == {"gw0", "gw1"}
    # one sandbox per worker, one session per test
    urls = {row[0]: {r[1] for r in rows if r[0] == row[0]} for row in rows}
    assert all(len(u) == 1 for u in urls.values()) and urls["gw0"] != urls["gw1"]
    assert len({row[2] for row in rows}) == 8


def test_a_failing_test_shows_what_reached_the_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(REFUND + '''
def test_refund_of_a_refunded_payment(sandbox):
    assert refund(sandbox.afterpay_url, "100101785226", "10.00")[0] == 201
''')
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*sandbox requests (test_refund_of_a_refunded_payment-*, oldest first)*",
        'POST /v2/payments/100101785226/refund -> 422 *"errorCode" : "invalid_amount"*',
    ])


def test_sandbox_scenario_option_sets_the_startup_world(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", world="name: world\nafterpay:\n  merchants:\n"
                                     "    - {merchantId: '100101382', secretKey: "
                                     "'sandbox-secret-key', currency: AUD}\n"
                                     "  payments:\n"
                                     "    - {id: '900', merchantId: '100101382', "
                                     "amount: '9.00'}\n")
    pytester.makepyfile(REFUND + '''
def test_only_that_world(sandbox):
    assert refund(sandbox.afterpay_url, "900", "9.00")[0] == 201
    assert refund(sandbox.afterpay_url, "100101785223", "1.00")[0] == 404
''')
    pytester.runpytest("--sandbox-scenario", "world.yaml", *QUIET).assert_outcomes(passed=1)


def test_a_bad_startup_world_is_reported_by_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", world="name: world\nafterpay:\n  payments:\n"
                                     "    - {id: '900', amount: nine}\n")
    pytester.makepyfile("def test_x(sandbox):\n    pass\n")
    result = pytester.runpytest("--sandbox-scenario", "world.yaml", *QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the sandbox's startup world is invalid:*",
                                 "*world.yaml:4: *"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_sandbox_url_uses_a_running_sandbox_and_resets_each_session(
        pytester: pytest.Pytester, sandbox_server: SandboxServer) -> None:
    # the same test's session on the running sandbox already holds a full refund
    name = session_name("test_external.py::test_refund_on_the_running_sandbox")
    dirty = sandbox_server.session(name)
    namespace: dict[str, object] = {}
    exec(REFUND, namespace)  # noqa: S102 - the inner tests' helper, reused here
    assert namespace["refund"](dirty.afterpay_url, "100101785223", "120.00")[0] == 201  # type: ignore[operator]
    pytester.makepyfile(test_external=REFUND + f'''
def test_refund_on_the_running_sandbox(sandbox):
    assert sandbox.server.app is None
    assert sandbox.server.url == {sandbox_server.url!r}
    assert sandbox.name == {name!r}
    assert refund(sandbox.afterpay_url, "100101785223", "120.00")[0] == 201
''')
    result = pytester.runpytest("--sandbox-url", sandbox_server.url, *QUIET)
    result.assert_outcomes(passed=1)


def test_sandbox_url_that_answers_nothing_fails_clearly(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mock_server.pytest_plugin.STARTUP_TIMEOUT", 0.3)
    pytester.makepyfile("def test_x(sandbox):\n    pass\n")
    result = pytester.runpytest("--sandbox-url", "http://127.0.0.1:9", *QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no sandbox answers at http://127.0.0.1:9/__admin/health*"])


def test_the_readme_example_runs(pytester: pytest.Pytester) -> None:
    text = README.read_text()
    section = text.split("## Using the sandbox from pytest", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example is not None
    pytester.makepyfile(test_refunds=textwrap.dedent(example.group(1)))
    pytester.runpytest(*QUIET).assert_outcomes(passed=4)
