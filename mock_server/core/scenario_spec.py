"""The scenario JSON Schema as the admin API publishes it: the registry's, read at the JSON level."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, validators

from mock_server.core.scenarios import (
    _FLOAT,
    _INT,
    ScenarioError,
    _Builder,
    _default_registry,
    _is_date_time,
    _is_integer,
)

if TYPE_CHECKING:
    from mock_server.core.providers import Registry

# In the $defs a provider's fragment brings, a number written for one of its text fields is read
# as the text it was written with ("amount: 120.00" is "120.00"; ids written as numbers become
# strings), and the text then meets the field's own schema; the same for a scenario's and a
# fault rule's name:
_NAMED = (("properties",), ("$defs", "faultRule", "properties"))
_WRITTEN_NUMBER = {
    "type": "number",
    "description": "A number is read as the text it was written with, which must then be what "
                   "the text form asks for (e.g. 120.00, not 1.2e2): a check beyond JSON "
                   "Schema, answered 422 when it fails.",
}
COMPONENT_PREFIX = "Scenario"


def _widen(node: dict[str, Any]) -> None:
    node_copy = dict(node)
    node.clear()
    node["anyOf"] = [node_copy, _WRITTEN_NUMBER]


@functools.cache
def _published(registry: Registry) -> str:
    schema = copy.deepcopy(registry.scenario_schema)
    for provider in registry.providers:
        text_fields = provider.scenario_rules.text_fields
        for name in provider.scenario_fragment.get("$defs", {}):
            for field, sub in schema["$defs"][name].get("properties", {}).items():
                if field in text_fields:
                    _widen(sub)
    for where in _NAMED:
        node = schema
        for key in where:
            node = node[key]
        _widen(node["name"])
    return json.dumps(schema)


def published_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The registry's scenario schema (default: the built-in providers'), widened where the
    reader keeps a number's written text: a JSON (or YAML) document is valid here exactly when
    its shape is one the reader takes."""
    return dict(json.loads(_published(registry or _default_registry())))


_Validator = validators.extend(  # type: ignore[no-untyped-call,unused-ignore]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


@functools.cache
def _validator(registry: Registry) -> Any:
    from jsonschema import FormatChecker

    formats = FormatChecker(formats=())
    formats.checks("date-time", raises=ValueError)(_is_date_time)
    return _Validator(published_schema(registry), format_checker=formats)


def follows_published_schema(document: Any, registry: Registry | None = None) -> bool:
    """Whether a document (as JSON or plain YAML reads it) is one the published schema allows."""
    try:
        return bool(_validator(registry or _default_registry()).is_valid(document))
    except (RecursionError, TypeError, ValueError):
        return False


# -- the OpenAPI 3.0 form (openapi/admin.yaml, components/schemas) ------------------------------

def _component(name: str) -> str:
    return COMPONENT_PREFIX + name[:1].upper() + name[1:]


def _to_openapi(node: Any) -> Any:
    """JSON Schema 2020-12 -> an OpenAPI 3.0 Schema Object: $defs become components, a list of
    types an anyOf, a numeric exclusiveMinimum the boolean form, x- keywords and $comment go."""
    if isinstance(node, list):
        return [_to_openapi(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "$comment") or key.startswith("x-"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out["$ref"] = "#/components/schemas/" + _component(value[len("#/$defs/"):])
        elif key == "type" and isinstance(value, list):
            nullable = "null" in value
            kinds = [kind for kind in value if kind != "null"]
            out["anyOf"] = [{"type": kind} for kind in kinds]
            if nullable:
                out["nullable"] = True
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "patternProperties":
            out[key] = {pattern: _to_openapi(sub) for pattern, sub in value.items()}
        elif key in ("properties",):
            out[key] = {name: _to_openapi(sub) for name, sub in value.items()}
        else:
            out[key] = _to_openapi(value)
    if "$ref" in out and len(out) > 1:
        # a Reference Object takes no siblings in OpenAPI 3.0: keep the reference in an allOf
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def _names_as_patterns(node: Any, defs: Mapping[str, Any]) -> None:
    """propertyNames (not an OpenAPI 3.0 keyword) with a pattern, plus additionalProperties,
    written as the equivalent patternProperties."""
    if isinstance(node, list):
        for item in node:
            _names_as_patterns(item, defs)
        return
    if not isinstance(node, dict):
        return
    names = node.get("propertyNames")
    if isinstance(names, dict):
        ref = names.get("$ref", "")
        target = defs.get(ref[len("#/$defs/"):], {}) if ref.startswith("#/$defs/") else names
        if "pattern" in target and isinstance(node.get("additionalProperties"), dict):
            del node["propertyNames"]
            node["patternProperties"] = {target["pattern"]: node.pop("additionalProperties")}
            node["additionalProperties"] = False
    for value in node.values():
        _names_as_patterns(value, defs)


def openapi_components(registry: Registry | None = None) -> dict[str, Any]:
    """The published schema as OpenAPI 3.0 components: `Scenario` and one per definition."""
    schema = published_schema(registry)
    _names_as_patterns(schema, schema["$defs"])
    components = {COMPONENT_PREFIX: _to_openapi(schema)}
    for name, sub in schema["$defs"].items():
        components[_component(name)] = _to_openapi(sub)
    return components


def plain_document(body: bytes) -> Any:
    """A refused scenario body as a JSON client wrote it (numbers stay numbers), or as the
    scenario reader reads YAML (its depth and alias bounds apply); None if it reads as neither."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    try:
        return _PlainYaml("<plain>").parse(body)
    except (ScenarioError, RecursionError, ValueError):
        return None


class _PlainYaml(_Builder):
    """The scenario reader (its depth and alias bounds) with every number kept a number."""

    def _scalar(self, node: Any, path: Any) -> Any:
        if node.tag in (_INT, _FLOAT) and not node.style:
            try:
                return int(node.value) if node.tag == _INT else float(node.value)
            except ValueError:
                return node.value
        return super()._scalar(node, path)


def write_admin_components(path: str) -> None:
    """Rewrites the generated scenario components of openapi/admin.yaml (from `    Scenario:`
    to the first hand-written component after them) from the shipped schema:
    `python -m mock_server.core.scenario_spec openapi/admin.yaml`."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    components = openapi_components()
    start = lines.index(f"    {COMPONENT_PREFIX}:")
    end = start + 1
    while end < len(lines) and not (
            lines[end].startswith("    ") and not lines[end].startswith("     ")
            and lines[end].strip().rstrip(":") not in components):
        end += 1
    text = yaml.safe_dump(components, sort_keys=False, allow_unicode=True, width=100)
    block = ["    " + line if line else line for line in text.rstrip("\n").split("\n")]
    lines[start:end] = block
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":  # pragma: no cover
    import sys

    write_admin_components(sys.argv[1])
