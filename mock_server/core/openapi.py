"""OpenAPI documents loaded once: routes by operationId and one request validator per operation."""

from __future__ import annotations

import copy
import json
import math
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
# path item extension: the names of its path parameters that may be empty
EMPTY_PARAMETERS = "x-sandbox-empty-parameters"


def _not_multiple(instance: Any, divisor: Any) -> bool:
    """Whether a number is not an exact multiple of the divisor, for numbers of any size:
    Decimal's `%` gives up (InvalidOperation) once the quotient has more than 28 digits, which
    would call 1e26 "not a multiple of 0.01"; integer arithmetic on the digits does not."""
    try:
        number = Decimal(instance) if isinstance(instance, int) else Decimal(str(instance))
        step = Decimal(str(divisor))
    except (InvalidOperation, ValueError):
        return True
    if not number.is_finite() or not step.is_finite() or step == 0:
        return True
    if number == 0:
        return False
    n_sign, n_digits, n_exp = number.as_tuple()
    _s_sign, s_digits, s_exp = step.as_tuple()
    mantissa = int("".join(map(str, n_digits)))
    step_mantissa = int("".join(map(str, s_digits)))
    assert isinstance(n_exp, int) and isinstance(s_exp, int)
    shift = n_exp - s_exp
    if shift >= 0:
        # number / step = mantissa * 10**shift / step_mantissa: test it modulo step_mantissa
        # (pow with a modulus stays small for any exponent)
        return (mantissa % step_mantissa) * pow(10, shift, step_mantissa) % step_mantissa != 0
    # the step has more places than the number: the number's digits must absorb them
    if -shift > len(n_digits):
        return True
    return mantissa % (step_mantissa * 10 ** -shift) != 0


def _number_text(value: Any) -> str:
    """A number as JSON (or JavaScript) writes it, never Python's repr."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value).replace("E", "e") if value.is_finite() else str(value)
    return str(value)


def json_text(value: Any) -> str:
    """A value in a client message, in JSON's words: null, true, "text", 10.5, an object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return _number_text(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return "a value"


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Any:
    """multipleOf in exact decimal arithmetic: float division wrongly rejects 17.17 % 0.01, and
    request numbers arrive as Decimal (never float) anyway."""
    if not validator.is_type(instance, "number"):
        return
    if _not_multiple(instance, divisor):
        yield ValidationError(
            f"{json_text(instance)} is not a multiple of {_number_text(divisor)}")


RequestValidator = validators.extend(Draft4Validator, {"multipleOf": _multiple_of})


class SpecError(Exception):
    """The document cannot be served (fail fast at start-up, like stripe-mock)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One way the request broke its schema: where, which keyword, and the validator's text."""

    path: tuple[str | int, ...]
    keyword: str
    message: str  # the validator's own text: for logs and tests, never for a client
    argument: Any = None  # the keyword's value in the schema (a limit, a pattern, a type)
    instance: Any = None  # the value that broke it
    schema: Any = None  # the (sub)schema that failed

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)

    def describe(self) -> str:
        """What is wrong, in plain words with values written as JSON (null, true, "text"),
        so no Python repr reaches a client."""
        arg, value = self.argument, self.instance
        if self.keyword == "type":
            wanted = [arg] if isinstance(arg, str) else list(arg or ())
            names = " or ".join(_TYPE_WORDS.get(str(name), str(name)) for name in wanted)
            return f"must be {names}, not {json_text(value)}"
        if self.keyword == "required" and isinstance(value, Mapping):
            missing = [name for name in arg or () if name not in value]
            return "missing required field " + ", ".join(json_text(name) for name in missing)
        if self.keyword == "additionalProperties" and isinstance(value, Mapping):
            known = set((self.schema or {}).get("properties", {}))
            extra = [name for name in value if name not in known]
            return "unknown field " + ", ".join(json_text(name) for name in extra)
        if self.keyword == "enum":
            return (f"{json_text(value)} is not one of "
                    + ", ".join(json_text(each) for each in arg or ()))
        if self.keyword == "pattern":
            return f"{json_text(value)} does not match the pattern {arg}"
        if self.keyword == "minLength":
            return f"must be at least {arg} characters long"
        if self.keyword == "maxLength":
            return f"must be at most {arg} characters long"
        if self.keyword == "minimum":
            exclusive = (self.schema or {}).get("exclusiveMinimum") is True
            bound = "more than" if exclusive else "at least"
            return f"must be {bound} {_number_text(arg)}, not {json_text(value)}"
        if self.keyword == "maximum":
            exclusive = (self.schema or {}).get("exclusiveMaximum") is True
            bound = "less than" if exclusive else "at most"
            return f"must be {bound} {_number_text(arg)}, not {json_text(value)}"
        if self.keyword == "multipleOf":
            return f"{json_text(value)} is not a multiple of {_number_text(arg)}"
        if self.keyword in ("minItems", "maxItems", "minProperties", "maxProperties"):
            bound = "at least" if self.keyword.startswith("min") else "at most"
            noun = "item" if self.keyword.endswith("Items") else "field"
            noun += "" if arg == 1 else "s"
            return f"must have {bound} {arg} {noun}"
        return f"{json_text(value)} is not valid here"


_TYPE_WORDS = {"string": "a string", "number": "a number", "integer": "an integer",
               "boolean": "a boolean", "object": "an object", "array": "an array",
               "null": "null"}


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
            Violation(tuple(err.absolute_path), str(err.validator), err.message,
                      err.validator_value, err.instance, err.schema)
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
            if "enum" in out and None not in out["enum"]:
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
            # a path item may name parameters that also match an empty segment (a provider's
            # route may answer `/v2/payments//refund` itself, recorded); by default a parameter
            # needs one character at least
            empty = frozenset(item.get(EMPTY_PARAMETERS, ()))
            entry = _PathEntry(template, _compile(template, empty), _static_count(template), {})
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
        # The candidates for a path, by its first segment: the templates that begin with that
        # literal, plus those that begin with a parameter, in the order above. Every request is
        # routed, so it tries a handful of patterns instead of every path of every spec.
        wild = [e for e in self._paths if _first_segment(e.template).startswith("{")]
        self._wild: tuple[_PathEntry, ...] = tuple(wild)
        self._by_first: dict[str, tuple[_PathEntry, ...]] = {}
        for first in {_first_segment(e.template) for e in self._paths}:
            if not first.startswith("{"):
                self._by_first[first] = tuple(
                    e for e in self._paths if e in wild or _first_segment(e.template) == first)

    @classmethod
    def load(cls, provider: str, path: Path) -> Spec:
        with path.open("rb") as handle:
            document = yaml.load(handle, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader
        if not isinstance(document, dict) or "paths" not in document:
            raise SpecError(f"{path}: not an OpenAPI document")
        return cls(provider, document)

    def match(self, path: str) -> RouteMatch | None:
        for entry in self._by_first.get(_first_segment(path), self._wild):
            found = entry.regex.match(path)
            if found:
                return RouteMatch(entry, found.groupdict())
        return None


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""


def _compile(template: str, empty: frozenset[str] = frozenset()) -> re.Pattern[str]:
    pattern = ""
    last = 0
    for found in _PARAM.finditer(template):
        run = "*" if found.group(1) in empty else "+"
        pattern += re.escape(template[last:found.start()]) + f"(?P<{found.group(1)}>[^/]{run})"
        last = found.end()
    return re.compile("^" + pattern + re.escape(template[last:]) + "$")


def _static_count(template: str) -> int:
    return sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))


# -- the quick check ---------------------------------------------------------------------------
# jsonschema walks a schema by building a validator per subschema and descending lazily: about
# 80 us for a refund body, a third of the request's cost. The quick check is the same schema
# compiled once into one plain Python function (generated source, like fastjsonschema). It only
# ever says "valid" where RequestValidator finds no error (same keyword semantics, same type
# checks); whenever it says "not valid" the validator runs as before and produces the
# violations, so answers never change. Schemas with keywords it does not compile get no quick
# check; oneOf and not are left out on purpose, as a "no" from a branch only means "ask the
# validator" and cannot be negated.

Check = Callable[[Any], bool]


class _NotCompiled(Exception):
    pass


_TYPE_TESTS = {
    "string": "isinstance({v}, str)",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool))",
    "number": "(isinstance({v}, _Number) and not isinstance({v}, bool))",
}
_NUMBER = _TYPE_TESTS["number"]


class _Generator:
    """Writes one function per schema (and one per anyOf branch): `return False` wherever the
    instance cannot be confirmed valid, `return True` at the end."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_Number": numbers.Number,
                                          "_not_multiple": _not_multiple}
        self.functions: list[str] = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        name = self.name("_c")
        self.namespace[name] = value
        return name

    def function(self, schema: Any) -> str:
        name = self.name("_check")
        lines = [f"def {name}(v0):"]
        lines += self.body(schema, "v0", 1)
        lines.append("    return True")
        self.functions.append("\n".join(lines))
        return name

    def body(self, schema: Any, v: str, depth: int) -> list[str]:
        pad = "    " * depth
        if schema is True:
            return []
        if schema is False:
            return [f"{pad}return False"]
        if not isinstance(schema, dict) or "$ref" in schema:
            raise _NotCompiled("$ref")
        out: list[str] = []
        for keyword, arg in schema.items():
            if keyword not in RequestValidator.VALIDATORS:
                continue  # jsonschema ignores what it does not know (description, exclusiveMinimum)
            write = getattr(self, "kw_" + keyword, None)
            if write is None:
                raise _NotCompiled(keyword)
            out += write(arg, schema, v, depth, pad)
        return out

    # each keyword: the lines that refuse what the validator refuses (for its own instance type)

    def kw_type(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        names = arg if isinstance(arg, list) else [arg]
        if not all(isinstance(n, str) and n in _TYPE_TESTS for n in names):
            raise _NotCompiled("type")
        test = " or ".join(_TYPE_TESTS[n].format(v=v) for n in names)
        return [f"{pad}if not ({test}):", f"{pad}    return False"]

    def kw_properties(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        out = [f"{pad}if isinstance({v}, dict):"]
        for key, sub in arg.items():
            item = f"v{depth + 1}"
            key_name = self.constant(key)
            inner = self.body(sub, item, depth + 2)
            if inner:
                out += [f"{pad}    if {key_name} in {v}:",
                        f"{pad}        {item} = {v}[{key_name}]", *inner]
        return out if len(out) > 1 else []

    def kw_required(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        if not arg:
            return []
        names = self.constant(tuple(arg))
        return [f"{pad}if isinstance({v}, dict):",
                f"{pad}    for name in {names}:",
                f"{pad}        if name not in {v}:",
                f"{pad}            return False"]

    def kw_additionalProperties(self, arg: Any, schema: Any, v: str, depth: int,
                                pad: str) -> list[str]:
        if "patternProperties" in schema:
            raise _NotCompiled("additionalProperties with patternProperties")
        known = self.constant(frozenset(schema.get("properties", {})))
        if isinstance(arg, dict):
            item = f"v{depth + 1}"
            inner = self.body(arg, item, depth + 3)
            if not inner:
                return []
            return [f"{pad}if isinstance({v}, dict):",
                    f"{pad}    for key, {item} in {v}.items():",
                    f"{pad}        if key not in {known}:", *inner]
        if arg:
            return []
        return [f"{pad}if isinstance({v}, dict):",
                f"{pad}    for key in {v}:",
                f"{pad}        if key not in {known}:",
                f"{pad}            return False"]

    def kw_enum(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        # only strings are decided here (jsonschema compares a string with == alone); anything
        # else goes to the validator
        texts = self.constant(frozenset(item for item in arg if isinstance(item, str)))
        return [f"{pad}if not (isinstance({v}, str) and {v} in {texts}):",
                f"{pad}    return False"]

    def kw_pattern(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        search = self.constant(re.compile(arg).search)
        return [f"{pad}if isinstance({v}, str) and {search}({v}) is None:",
                f"{pad}    return False"]

    def _compare(self, kind: str, test: str, arg: Any, v: str, pad: str) -> list[str]:
        bound = self.constant(arg)
        return [f"{pad}if {kind.format(v=v)} and not ({test.format(v=v, bound=bound)}):",
                f"{pad}    return False"]

    def kw_minLength(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return self._compare("isinstance({v}, str)", "len({v}) >= {bound}", arg, v, pad)

    def kw_maxLength(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return self._compare("isinstance({v}, str)", "len({v}) <= {bound}", arg, v, pad)

    def kw_minItems(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return self._compare("isinstance({v}, list)", "len({v}) >= {bound}", arg, v, pad)

    def kw_maxItems(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return self._compare("isinstance({v}, list)", "len({v}) <= {bound}", arg, v, pad)

    def kw_minProperties(self, arg: Any, schema: Any, v: str, depth: int,
                         pad: str) -> list[str]:
        return self._compare("isinstance({v}, dict)", "len({v}) >= {bound}", arg, v, pad)

    def kw_maxProperties(self, arg: Any, schema: Any, v: str, depth: int,
                         pad: str) -> list[str]:
        return self._compare("isinstance({v}, dict)", "len({v}) <= {bound}", arg, v, pad)

    def kw_minimum(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        test = "{v} > {bound}" if schema.get("exclusiveMinimum", False) else "{v} >= {bound}"
        return self._compare(_NUMBER, test, arg, v, pad)

    def kw_maximum(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        test = "{v} < {bound}" if schema.get("exclusiveMaximum", False) else "{v} <= {bound}"
        return self._compare(_NUMBER, test, arg, v, pad)

    def kw_multipleOf(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return self._compare(_NUMBER, "not _not_multiple({v}, {bound})", arg, v, pad)

    def kw_items(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        if not isinstance(arg, dict):
            raise _NotCompiled("items as a list")
        item = f"v{depth + 1}"
        inner = self.body(arg, item, depth + 2)
        if not inner:
            return []
        return [f"{pad}if isinstance({v}, list):", f"{pad}    for {item} in {v}:", *inner]

    def kw_allOf(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        return [line for sub in arg for line in self.body(sub, v, depth)]

    def kw_anyOf(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        branches = " or ".join(f"{self.function(sub)}({v})" for sub in arg)
        return [f"{pad}if not ({branches}):", f"{pad}    return False"]

    def kw_format(self, arg: Any, schema: Any, v: str, depth: int, pad: str) -> list[str]:
        # RequestValidator is built without a format checker: "format" is an annotation only
        return []


def quick_check(schema: Any) -> Check | None:
    """A compiled check that is True only for instances the request validator accepts."""
    generator = _Generator()
    try:
        entry = generator.function(schema)
    except _NotCompiled:
        return None
    namespace = generator.namespace
    exec("\n\n".join(generator.functions), namespace)  # noqa: S102 - our own generated code
    compiled: Check = namespace[entry]

    def check(value: Any) -> bool:
        try:
            return compiled(value)
        except Exception:  # noqa: BLE001 - unsure means "ask the validator"
            return False

    return check
