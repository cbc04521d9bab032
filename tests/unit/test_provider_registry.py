"""Adding a provider is one package plus one registry entry (tests/tinyprovider)."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.portal import PortalApp
from mock_server.core.providers import default_registry
from mock_server.core.scenario_spec import follows_published_schema
from mock_server.core.scenarios import ScenarioError, parse_scenario
from mock_server.resources import schema_path
from mock_server.settings import Settings
from tests.tinyprovider.provider import registry as tiny_registry

ROOT = Path(__file__).resolve().parents[2]
SEED = b"name: shop\ntiny:\n  widgets:\n    - {id: w1, price: 12.50}\n"


@pytest.fixture
def tiny() -> TestClient:
    with TestClient(create_app(Settings(seed=7), providers=tiny_registry())) as client:
        yield client


def test_the_shipped_schema_is_the_composed_one() -> None:
    shipped = json.loads(schema_path("scenario.schema.json").read_text("utf-8"))
    assert default_registry().scenario_schema == shipped, \
        "mock_server/schemas/scenario.schema.json drifted from the providers' fragments"


def test_tiny_routes_answer_and_its_section_seeds(tiny: TestClient) -> None:
    loaded = tiny.post("/__admin/scenarios", content=SEED)
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["seeded"]["tinyWidgets"] == 1
    assert tiny.get("/tiny/widgets/w1").json() == {"id": "w1", "price": "12.50"}
    missing = tiny.get("/tiny/widgets/nope")
    assert (missing.status_code, missing.json()["tinyError"]) == (404, "not_found")
    assert tiny.get("/ping").status_code == 200  # the built-in providers still answer


def test_tiny_section_rules_refuse_by_line() -> None:
    bad = ("name: s\ntiny:\n  widgets:\n    - {id: w1, price: 5.00, discount: 6.00}\n"
           "    - {id: w1, price: lots}\n")
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(bad, "s.yaml", registry=tiny_registry())
    text = "\n".join(refused.value.problems)
    assert "s.yaml:4: tiny.widgets[0].discount: a discount of 6.00 is more than the price 5.00" \
        in text
    assert "s.yaml:5: tiny.widgets[1].id: duplicate widget id 'w1' (first at line 4)" in text
    assert re.search(r"s\.yaml:5: tiny\.widgets\[1\]\.price: ", text)


def test_unknown_sections_are_still_refused_with_file_and_line() -> None:
    with pytest.raises(ScenarioError) as refused:
        parse_scenario("name: s\ntinny: {}\n", "s.yaml", registry=tiny_registry())
    assert refused.value.problems == ["s.yaml:2: unknown field 'tinny' (did you mean 'tiny'?)"]
    with pytest.raises(ScenarioError) as builtin:
        parse_scenario("name: s\ntiny: {}\n", "s.yaml")
    assert builtin.value.problems == ["s.yaml:2: unknown field 'tiny'"]


def test_tiny_journal_and_fault_rules(tiny: TestClient) -> None:
    rules = (b"name: jam\nfaults:\n  - name: jam\n    match: {provider: tiny}\n    times: 1\n"
             b"    respond: {status: 503, error: widget_jammed}\n")
    assert tiny.post("/__admin/scenarios", content=SEED).status_code == 201
    assert tiny.post("/__admin/scenarios", content=rules).status_code == 201
    jammed = tiny.get("/tiny/widgets/w1")
    assert (jammed.status_code, jammed.json()["tinyError"]) == (503, "widget_jammed")
    assert tiny.get("/tiny/widgets/w1").status_code == 200
    entries = tiny.get("/__admin/requests", params={"provider": "tiny"}).json()
    assert [e["status"] for e in entries["requests"]] == [200, 503]
    wrong = tiny.get("/__admin/requests", params={"provider": "nope"})
    assert "provider must be one of afterpay, optty, tiny, admin, portal" in wrong.text
    unknown = rules.replace(b"widget_jammed", b"service_unavailable")
    refused = tiny.post("/__admin/scenarios", content=unknown.replace(b"jam", b"j2"))
    assert refused.status_code == 422
    assert "unknown error code 'service_unavailable' for tiny" in refused.text


def test_the_published_schema_knows_the_registry() -> None:
    document = {"name": "s", "tiny": {"widgets": [{"id": "w", "price": "1.00"}]}}
    assert follows_published_schema(document, tiny_registry())
    assert not follows_published_schema(document)
    schema = tiny_registry().scenario_schema
    assert schema["$defs"]["faultMatch"]["properties"]["provider"]["enum"] == [
        "afterpay", "optty", "tiny"]


def _code(path: Path) -> str:
    """The module's source without comments and docstrings."""
    out: list[str] = []
    previous = tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline):
        if token.type == tokenize.COMMENT:
            continue
        if token.type == tokenize.STRING and previous in (tokenize.INDENT, tokenize.NEWLINE,
                                                          tokenize.DEDENT):
            continue
        out.append(token.string)
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
    return " ".join(out)


@pytest.mark.parametrize("with_comments", [True, False])
def test_core_names_no_provider(with_comments: bool) -> None:
    # core's own surfaces (the shopper's pages app) may say their own name
    own = {PortalApp.name}
    names = [*default_registry().names, *(n for p in default_registry().providers
                                          for n in p.journal_names if n not in own), "klarna"]
    pattern = re.compile("|".join(names), re.IGNORECASE)
    found = []
    for path in sorted((ROOT / "mock_server" / "core").iterdir()):
        if path.suffix not in (".py", ".json"):
            continue
        text = path.read_text("utf-8") if with_comments or path.suffix == ".json" \
            else _code(path)
        found += [f"{path.name}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []


pytest_plugins = ["pytester"]


def test_the_pytest_plugin_serves_a_registry_of_ones_own(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('''
import pytest
from tests.tinyprovider.provider import registry


@pytest.fixture(scope="session")
def sandbox_providers():
    return registry()
''')
    pytester.makepyfile('''
import json
import urllib.request


def test_tiny(sandbox):
    assert set(sandbox.urls) == {"afterpay", "optty", "tiny"}
    sandbox.load_scenario({"name": "w", "tiny": {"widgets": [{"id": "w9", "price": "3.00"}]}})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(sandbox.urls["tiny"] + "/tiny/widgets/w9") as answer:
        assert json.loads(answer.read()) == {"id": "w9", "price": "3.00"}
    assert [e["provider"] for e in sandbox.requests(provider="tiny")] == ["tiny"]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:schemathesis",
                                           "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)


def test_admin_operations_come_from_the_providers_that_serve_them() -> None:
    from mock_server.afterpay.provider import AfterpayProvider
    from mock_server.core.providers import Registry

    only_afterpay = Registry([AfterpayProvider()], fallback="afterpay",
                             description="Afterpay only")
    scenario = parse_scenario(b"name: none\n", "none.yaml", registry=only_afterpay)
    with TestClient(create_app(Settings(seed=7), providers=only_afterpay,
                               scenarios=[scenario])) as client:
        answer = client.post("/__admin/optty/orders/ORD-1/outcome", json={"status": "SUCCESSFUL"})
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
        assert "opttyOrderOutcome" in answer.json()["message"]
        # Afterpay's own admin operations are there (an unknown checkout: its 404)
        confirmed = client.post("/__admin/afterpay/checkouts/nope/confirm", json={})
        assert confirmed.status_code == 404
        assert "checkout" in confirmed.json()["message"].lower()


def test_the_admin_surface_names_no_provider() -> None:
    code = (ROOT / "mock_server" / "admin" / "routes.py").read_text("utf-8")
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    names = {t.string.lower() for t in tokens if t.type in (tokenize.NAME, tokenize.STRING)}
    assert not {n for n in names if "optty" in n or "afterpay" in n}
