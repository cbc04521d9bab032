"""The provider registry: what a provider declares, and the list the app is built from.

Core defines the shape and composes from it; it names no provider. The built-in list lives
outside core (`mock_server.providers`); `create_app(settings, providers=Registry([...]))` takes
any other list.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from mock_server.core.scenarios import (  # noqa: F401 - re-exported
    DEFAULT_REGISTRY_MODULE,
    ScenarioRules,
    default_registry,
)

if TYPE_CHECKING:
    from mock_server.core.http import Context, ProviderApp
    from mock_server.core.openapi import Spec
    from mock_server.core.portal import PageSet
    from mock_server.core.world import ProviderModel
    from mock_server.settings import Settings

@dataclass
class Built:
    """A provider's parts in one app: its HTTP surface and model, plus its shopper's pages
    (page sets the one portal app routes after every API, see core.portal) and the admin
    operations it serves (by operationId in openapi/admin.yaml)."""

    surface: ProviderApp
    model: ProviderModel
    pages: list[PageSet] = field(default_factory=list)
    admin: dict[str, AdminOperation] = field(default_factory=dict)


@dataclass(frozen=True)
class AdminAnswer:
    """What a provider's admin operation answers: a JSON payload (200) and any warnings (one
    X-Sandbox-Warning line)."""

    payload: Any
    warnings: tuple[str, ...] = ()


class AdminRefusal(Exception):
    """A provider's admin operation refused: answered in the admin API's error shape."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


# an admin operation of a provider: the request's Context, and a call that reads its JSON body
# (checked against the admin spec; refused in the admin's shape) for operations that take one
AdminOperation = Callable[["Context", Callable[[], dict[str, Any]]], AdminAnswer]


class Provider(Protocol):
    """One provider: a package's declaration (see docs/architecture.md, "Providers")."""

    @property
    def name(self) -> str:
        """The scenario section, the journal's provider and a fault rule's `match.provider`."""

    @property
    def spec_name(self) -> str:
        """The spec's file under openapi/ (without .yaml), or a path to it."""

    @property
    def scenario_fragment(self) -> Mapping[str, Any]:
        """{"section": the section's JSON Schema, "$defs": the definitions it refers to}."""

    @property
    def scenario_rules(self) -> ScenarioRules: ...

    @property
    def journal_names(self) -> tuple[str, ...]:
        """The journal's provider names its surfaces write (the first is `name`)."""

    @property
    def error_codes(self) -> frozenset[str]:
        """The error catalogue: the codes a fault rule's `respond.error` may name."""

    def build(self, spec: Spec, settings: Settings) -> Built: ...


def fragment(package: str, name: str = "scenario.schema.json") -> dict[str, Any]:
    """A provider's schema fragment shipped in its package."""
    return dict(json.loads((resources.files(package) / name).read_text("utf-8")))


_BASE: dict[str, Any] = json.loads(
    (resources.files("mock_server.core") / "scenario.base.schema.json").read_text("utf-8"))


class Registry:
    """The providers of one app, in routing order; everything provider-specific derives here."""

    def __init__(self, providers: Iterable[Provider], *, fallback: str | None = None,
                 description: str | None = None) -> None:
        self.providers: tuple[Provider, ...] = tuple(providers)
        names = [provider.name for provider in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"two providers share a name: {names}")
        for reserved in ("name", "faults", "admin"):
            if reserved in names:
                raise ValueError(f"a provider cannot be called {reserved!r}")
        if fallback is not None and fallback not in names:
            raise ValueError(f"fallback {fallback!r} is not one of {names}")
        self.fallback = fallback if fallback is not None else (names[-1] if names else None)
        self.description = description

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(provider.name for provider in self.providers)

    def get(self, name: str) -> Provider:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)

    @functools.cached_property
    def error_codes(self) -> dict[str, frozenset[str]]:
        return {provider.name: provider.error_codes for provider in self.providers}

    @functools.cached_property
    def text_fields(self) -> frozenset[str]:
        return frozenset().union(*(p.scenario_rules.text_fields for p in self.providers))

    @functools.cached_property
    def journal_filters(self) -> tuple[str, ...]:
        """The journal's provider filter values: each provider's own name, admin, then the
        names of the providers' other surfaces (shopper's pages)."""
        own = [provider.name for provider in self.providers]
        more = [name for provider in self.providers for name in provider.journal_names
                if name not in own]
        return (*own, "admin", *dict.fromkeys(more))

    @functools.cached_property
    def provider_defs(self) -> tuple[str, ...]:
        """The $defs that the providers' fragments bring."""
        return tuple(name for provider in self.providers
                     for name in provider.scenario_fragment.get("$defs", {}))

    @functools.cached_property
    def scenario_schema(self) -> dict[str, Any]:
        """The scenario JSON Schema: core's base (name, faults, shared definitions) with each
        provider's section and definitions; `faults[].match.provider` lists the providers."""
        return compose_schema(self.providers, self.description)


def compose_schema(providers: Sequence[Provider], description: str | None) -> dict[str, Any]:
    schema = copy.deepcopy(_BASE)
    if description is not None:
        schema["description"] = description
    base_properties = schema["properties"]
    properties = {"name": base_properties.pop("name")}
    defs = schema["$defs"]
    for provider in providers:
        part = copy.deepcopy(dict(provider.scenario_fragment))
        properties[provider.name] = part["section"]
        for name, definition in part.get("$defs", {}).items():
            if name in defs:
                raise ValueError(f"{provider.name}: $defs/{name} is defined twice")
            defs[name] = definition
    properties.update(base_properties)
    schema["properties"] = properties
    defs["faultMatch"]["properties"]["provider"]["enum"] = [p.name for p in providers]
    return schema
