"""OpenAPI documents loaded once: routes by operationId and one request validator per operation."""

from __future__ import annotations

import copy
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, ValidationError, validators

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARAM = re.compile(r"\{([^}/]+)\}")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _not_multiple(instance: Any, divisor: Any) -> bool:
    try:
        return Decimal(str(instance)) % Decimal(str(divisor)) != 0
    except (InvalidOperation, ValueError):
        return True


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Any:
    """multipleOf in exact decimal arithmetic: float division wrongly rejects 17.17 % 0.01, and
    request numbers arrive as Decimal (never float) anyway."""
    if not validator.is_type(instance, "number"):
        return
    if _not_multiple(instance, divisor):
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
    # a compiled yes/no for the same schema (see quick_check); None: the validator alone decides
    _quick: Callable[[Any], bool] | None = field(default=None, repr=False)

    def validate_body(self, value: Any) -> list[Violation]:
        if self._validator is None:
            return []
        if self._quick is not None and self._quick(value):
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
                validator = quick = None
                if schema is not None:
                    json_schema = to_json_schema(schema)
                    Draft4Validator.check_schema(json_schema)
                    validator = RequestValidator(json_schema)
                    quick = quick_check(json_schema)
                op = Operation(provider, op_id, method.upper(), template,
                               raw.get("security", global_security), bool(body.get("required")),
                               tuple(content), validator, quick)
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


# -- the quick check ---------------------------------------------------------------------------
# jsonschema walks a schema by building a validator per subschema and descending lazily: about
# 80 us for a refund body, a third of the request's cost. The quick check is the same schema
# compiled once into plain predicates. It only ever says "valid" where RequestValidator finds no
# error (same keyword semantics, same type checks); whenever it says "not valid" the validator
# runs as before and produces the violations, so answers never change. Schemas with keywords it
# does not compile get no quick check; oneOf and not are left out on purpose, as a "no" from a
# sub-check only means "ask the validator" and cannot be negated.

Check = Callable[[Any], bool]


class _NotCompiled(Exception):
    pass


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": _is_integer,
    "number": _is_number,
}


def quick_check(schema: Any) -> Check | None:
    """A compiled check that is True only for instances the request validator accepts."""
    try:
        compiled = _compile_schema(schema)
    except _NotCompiled:
        return None

    def check(value: Any) -> bool:
        try:
            return compiled(value)
        except Exception:  # noqa: BLE001 - unsure means "ask the validator"
            return False

    return check


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]

    def every(value: Any) -> bool:
        for check in checks:
            if not check(value):
                return False
        return True

    return every


def _compile_schema(schema: Any) -> Check:
    if schema is True:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict) or "$ref" in schema:
        raise _NotCompiled
    checks: list[Check] = []
    for keyword, argument in schema.items():
        if keyword not in RequestValidator.VALIDATORS:
            continue  # jsonschema ignores what it does not know (description, exclusiveMinimum)
        compiler = _KEYWORDS.get(keyword)
        if compiler is None:
            raise _NotCompiled(keyword)
        compiled = compiler(argument, schema)
        if compiled is not None:
            checks.append(compiled)
    return _all(checks)


def _type(argument: Any, schema: Any) -> Check:
    names = argument if isinstance(argument, list) else [argument]
    if not all(isinstance(name, str) and name in _TYPES for name in names):
        raise _NotCompiled("type")
    tests = [_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _properties(argument: Any, schema: Any) -> Check:
    compiled = [(name, _compile_schema(sub)) for name, sub in argument.items()]

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name, sub in compiled:
            if name in value and not sub(value[name]):
                return False
        return True

    return check


def _required(argument: Any, schema: Any) -> Check:
    names = list(argument)
    return lambda value: not isinstance(value, dict) or all(name in value for name in names)


def _additional_properties(argument: Any, schema: Any) -> Check | None:
    if "patternProperties" in schema:
        raise _NotCompiled("additionalProperties with patternProperties")
    known = frozenset(schema.get("properties", {}))
    if isinstance(argument, dict):
        sub = _compile_schema(argument)
        return lambda value: not isinstance(value, dict) or all(
            key in known or sub(item) for key, item in value.items())
    if argument:
        return None
    return lambda value: not isinstance(value, dict) or all(key in known for key in value)


def _enum(argument: Any, schema: Any) -> Check:
    # only strings are decided here (jsonschema compares a string with == alone); anything
    # else goes to the validator
    texts = frozenset(item for item in argument if isinstance(item, str))
    return lambda value: isinstance(value, str) and value in texts


def _pattern(argument: Any, schema: Any) -> Check:
    search = re.compile(argument).search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _min_length(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, str) or len(value) >= argument


def _max_length(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, str) or len(value) <= argument


def _minimum(argument: Any, schema: Any) -> Check:
    if schema.get("exclusiveMinimum", False):
        return lambda value: not _is_number(value) or value > argument
    return lambda value: not _is_number(value) or value >= argument


def _maximum(argument: Any, schema: Any) -> Check:
    if schema.get("exclusiveMaximum", False):
        return lambda value: not _is_number(value) or value < argument
    return lambda value: not _is_number(value) or value <= argument


def _multiple(argument: Any, schema: Any) -> Check:
    return lambda value: not _is_number(value) or not _not_multiple(value, argument)


def _items(argument: Any, schema: Any) -> Check:
    if not isinstance(argument, dict):
        raise _NotCompiled("items as a list")
    sub = _compile_schema(argument)
    return lambda value: not isinstance(value, list) or all(sub(item) for item in value)


def _min_items(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, list) or len(value) >= argument


def _max_items(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, list) or len(value) <= argument


def _min_properties(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, dict) or len(value) >= argument


def _max_properties(argument: Any, schema: Any) -> Check:
    return lambda value: not isinstance(value, dict) or len(value) <= argument


def _all_of(argument: Any, schema: Any) -> Check:
    return _all([_compile_schema(sub) for sub in argument])


def _any_of(argument: Any, schema: Any) -> Check:
    subs = [_compile_schema(sub) for sub in argument]
    return lambda value: any(sub(value) for sub in subs)


def _format(argument: Any, schema: Any) -> None:
    # RequestValidator is built without a format checker: "format" is an annotation only
    return None


_KEYWORDS: dict[str, Callable[[Any, Any], Check | None]] = {
    "type": _type,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional_properties,
    "enum": _enum,
    "pattern": _pattern,
    "minLength": _min_length,
    "maxLength": _max_length,
    "minimum": _minimum,
    "maximum": _maximum,
    "multipleOf": _multiple,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "allOf": _all_of,
    "anyOf": _any_of,
    "format": _format,
}
