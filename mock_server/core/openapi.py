"""OpenAPI documents loaded once: routes by operationId and one request validator per operation."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, ValidationError, validators

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARAM = re.compile(r"\{([^}/]+)\}")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Any:
    """multipleOf in exact decimal arithmetic: float division wrongly rejects 17.17 % 0.01, and
    request numbers arrive as Decimal (never float) anyway."""
    if not validator.is_type(instance, "number"):
        return
    try:
        exact = Decimal(str(instance)) % Decimal(str(divisor))
    except (InvalidOperation, ValueError):
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")
        return
    if exact != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


RequestValidator = validators.extend(Draft4Validator, {"multipleOf": _multiple_of})


class SpecError(Exception):
    """The document cannot be served (fail fast at start-up, like stripe-mock)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One way the request broke its schema: where, which keyword, and the validator's text."""

    path: tuple[str | int, ...]
    keyword: str
    message: str

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(slots=True)
class Operation:
    provider: str
    operation_id: str
    method: str
    template: str
    security: list[dict[str, list[str]]]
    body_required: bool
    body_types: tuple[str, ...]
    _validator: Any = field(default=None, repr=False)

    def validate_body(self, value: Any) -> list[Violation]:
        if self._validator is None:
            return []
        return [
            Violation(tuple(err.absolute_path), str(err.validator), err.message)
            for err in sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
        ]


@dataclass(slots=True)
class _PathEntry:
    template: str
    regex: re.Pattern[str]
    static_segments: int
    operations: dict[str, Operation]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    entry: _PathEntry
    params: dict[str, str]

    def operation(self, method: str) -> Operation | None:
        op = self.entry.operations.get(method)
        if op is None and method == "HEAD":
            op = self.entry.operations.get("GET")
        return op

    @property
    def allowed(self) -> list[str]:
        return sorted(self.entry.operations)


def to_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema draft 4 (nullable, and no OpenAPI-only keys)."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("example", "examples", "xml", "externalDocs", "discriminator", "readOnly",
                   "writeOnly", "deprecated", "nullable"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    if schema.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _resolve(node: Any, root: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise SpecError(f"only local $ref is supported, got {ref}")
            if ref in seen:
                raise SpecError(f"recursive $ref {ref}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(target, root, (*seen, ref))
        return {k: _resolve(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, root, seen) for v in node]
    return node


class Spec:
    """One provider's document: its operations and a router over its paths."""

    def __init__(self, provider: str, document: Mapping[str, Any]) -> None:
        self.provider = provider
        self.document = document
        self.operations: dict[str, Operation] = {}
        self._paths: list[_PathEntry] = []
        resolved = _resolve(copy.deepcopy(dict(document)), document)
        global_security = resolved.get("security", [])
        for template, item in resolved.get("paths", {}).items():
            entry = _PathEntry(template, _compile(template), _static_count(template), {})
            for method in METHODS:
                raw = item.get(method)
                if raw is None:
                    continue
                op_id = raw.get("operationId")
                if not op_id:
                    raise SpecError(f"{provider}: {method.upper()} {template} has no operationId")
                body = raw.get("requestBody") or {}
                content = body.get("content") or {}
                schema = next((c.get("schema") for c in content.values() if c.get("schema")),
                              None)
                validator = None
                if schema is not None:
                    json_schema = to_json_schema(schema)
                    Draft4Validator.check_schema(json_schema)
                    validator = RequestValidator(json_schema)
                op = Operation(provider, op_id, method.upper(), template,
                               raw.get("security", global_security), bool(body.get("required")),
                               tuple(content), validator)
                entry.operations[method.upper()] = op
                self.operations[op_id] = op
            self._paths.append(entry)
        # static segments win over parameters, like stripe-mock's router
        self._paths.sort(key=lambda e: -e.static_segments)

    @classmethod
    def load(cls, provider: str, path: Path) -> Spec:
        with path.open("rb") as handle:
            document = yaml.load(handle, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader
        if not isinstance(document, dict) or "paths" not in document:
            raise SpecError(f"{path}: not an OpenAPI document")
        return cls(provider, document)

    def match(self, path: str) -> RouteMatch | None:
        for entry in self._paths:
            found = entry.regex.match(path)
            if found:
                return RouteMatch(entry, found.groupdict())
        return None


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    last = 0
    for found in _PARAM.finditer(template):
        pattern += re.escape(template[last:found.start()]) + f"(?P<{found.group(1)}>[^/]+)"
        last = found.end()
    return re.compile("^" + pattern + re.escape(template[last:]) + "$")


def _static_count(template: str) -> int:
    return sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
