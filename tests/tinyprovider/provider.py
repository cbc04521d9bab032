"""A provider of two files and this module, registered from the tests: widgets with a price.

It shows what a new provider brings: a spec, handlers behind it, a model seeded from its own
scenario section (schema fragment plus seed and money rules), an error catalogue and shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.responses import Response

from mock_server.core import scenarios
from mock_server.core.http import Context, Handler, Problem, crashed, processing_time
from mock_server.core.openapi import Spec
from mock_server.core.providers import Built, Registry, ScenarioRules
from mock_server.core.scenarios import NodePath, Scenario, SeedChecks, format_path
from mock_server.core.world import Session
from mock_server.settings import Settings

HERE = Path(__file__).resolve().parent
ERRORS = {"not_found": 404, "widget_jammed": 503}


def _shape(code: str, status: int, message: str) -> Response:
    return Response(json.dumps({"tinyError": code, "message": message}), status,
                    media_type="application/json")


def _money(checks: SeedChecks, name: str,
           section: dict[str, Any]) -> Iterator[tuple[NodePath, str]]:
    for index, widget in scenarios.items(section.get("widgets")):
        price = scenarios.money(widget.get("price"))
        discount = scenarios.money(widget.get("discount"))
        if price is not None and discount is not None and discount > price:
            here: NodePath = (name, "widgets", index, "discount")
            yield here, f"{format_path(here)}: a discount of {scenarios.text(discount)} is more " \
                        f"than the price {scenarios.text(price)}"


class TinyModel:
    name = "tiny"
    error_codes = frozenset(ERRORS)

    def new_state(self, session: Session) -> dict[str, dict[str, str]]:
        return {}

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        return []

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        widgets = scenarios.items((scenario.document.get("tiny") or {}).get("widgets"))
        state = session.state(self.name)
        for _, widget in widgets:
            state[widget["id"]] = {"id": widget["id"], "price": widget["price"]}
        return {"tinyWidgets": len(widgets)} if widgets else {}


class TinyApp:
    name = "tiny"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.model = TinyModel()
        self.handlers: dict[str, Handler] = {"getWidget": self.get_widget}

    async def get_widget(self, ctx: Context) -> Response:
        await processing_time(ctx)
        widget = ctx.session.state(self.name).get(ctx.params["widgetId"])
        if widget is None:
            return _shape("not_found", 404, "no such widget")
        return Response(json.dumps(widget), media_type="application/json")

    def owns(self, path: str) -> bool:
        return path.startswith("/tiny/")

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        return _shape(problem.kind, 404 if problem.kind == Problem.ROUTE_NOT_FOUND else 400,
                      problem.detail or problem.kind)

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return _shape(code, status or ERRORS[code], f"scripted {code}")

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        return crashed(self, ctx, exc)


class TinyProvider:
    name = "tiny"
    spec_name = str(HERE / "spec.yaml")
    journal_names = ("tiny",)
    error_codes = frozenset(ERRORS)
    scenario_fragment = json.loads((HERE / "scenario.schema.json").read_text("utf-8"))
    scenario_rules = ScenarioRules(text_fields=frozenset({"id", "price", "discount"}),
                                   unique=(("widgets", "id", "widget id"),), money=_money)

    def build(self, spec: Spec, settings: Settings) -> Built:
        surface = TinyApp(spec)
        return Built(surface, surface.model)


def registry() -> Registry:
    """The built-in providers plus this one: the one registry entry a new provider needs."""
    from mock_server.providers import registry as builtin

    shipped = builtin()
    return Registry([*shipped.providers, TinyProvider()], fallback=shipped.fallback,
                    description=shipped.description)
