"""class-validator + NestJS ValidationPipe, emulated for Optty's refund and token request bodies."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mock_server.core.openapi import Violation, json_text
from mock_server.optty.errors import BadRequest

# class-validator's default messages ($property is the property name; NestJS's ValidationPipe
# prefixes nested ones with the parent path: "refundAmount.amount must be a positive number").
MSG_IS_DEFINED = "{property} should not be null or undefined"
MSG_IS_NOT_EMPTY = "{property} should not be empty"
MSG_IS_STRING = "{property} must be a string"
MSG_IS_BOOLEAN = "{property} must be a boolean value"
MSG_IS_NUMBER = "{property} must be a number conforming to the specified constraints"
MSG_IS_POSITIVE = "{property} must be a positive number"
MSG_IS_OBJECT = "{property} must be an object"
MSG_IS_IN = "{property} must be one of the following values: {values}"
MSG_NESTED = "nested property {property} must be either object or array"
MSG_MIN = "{property} must not be less than {bound}"
MSG_MAX = "{property} must not be greater than {bound}"
MSG_MIN_LENGTH = "{property} must be longer than or equal to {bound} characters"
MSG_MAX_LENGTH = "{property} must be shorter than or equal to {bound} characters"
MSG_MATCHES = "{property} must match {pattern} regular expression"

# Where the real validator would crash (a JS TypeError or a stack overflow -> NestJS's 500), the
# sandbox answers the client's mistake with a 400 instead and says so in X-Sandbox-Warning
# (Decision: the 500 rests on guessed decorators, and a client mistake never gets a 500 here).
WARN_NUMBER_CRASH = (
    "{property}: JavaScript prints this number in exponent form, which makes class-validator's "
    "isNumber(maxDecimalPlaces) throw a TypeError; the real API may answer 500 Internal server "
    "error")
WARN_DEEP_ARRAYS = (
    "{property}: arrays nested deeper than {depth} levels are not validated further; the real "
    "API's recursive validator may overflow its stack and answer 500 Internal server error")
MAX_NESTED_ARRAY_DEPTH = 32

GRANT_TYPE_CLIENT_CREDENTIALS = "client_credentials"
SCOPE_API_USER = "api-user"


@dataclass(frozen=True)
class OrderRefund:
    refund_reference: str
    amount: Decimal
    currency: str
    description: str
    activated_via_oauth: bool


@dataclass(frozen=True)
class TokenRequest:
    client_id: str
    client_secret: str
    grant_type: str
    scope: str


class _Missing:
    """JS `undefined`: the property is absent."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED: Any = _Missing()


class _JsTypeError(Exception):
    """The TypeError class-validator's isNumber throws (see _decimal_places)."""


@dataclass(frozen=True)
class _Constraint:
    name: str  # class-validator's constraint type: the key in ValidationError.constraints
    message: str
    check: Callable[[Any], bool]


@dataclass(frozen=True)
class _Property:
    name: str
    constraints: tuple[_Constraint, ...]
    optional: bool = False  # @IsOptional: null/undefined skips every other check
    nested: _Schema | None = None  # @ValidateNested() + @Type(() => schema)


@dataclass(frozen=True)
class _Schema:
    properties: tuple[_Property, ...]


def _prop(
    name: str,
    *decorators: _Constraint,
    optional: bool = False,
    nested: _Schema | None = None,
) -> _Property:
    # Decorators are listed here in source order, top to bottom. TypeScript applies property
    # decorators bottom-up, so class-validator's metadata -- and the order in which NestJS lists
    # the failed constraints -- is the reverse (nestjs/nest#5380 shows `@IsString() @IsUUID()`
    # answering "id must be an UUID" before "id must be a string").
    return _Property(name, tuple(reversed(decorators)), optional, nested)


# ---- JS semantics of the values parse_json produces (int / Decimal are JS numbers) ----------


def _js_number(value: Any) -> float | None:
    """The double JSON.parse made of a JSON number, or None for a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        return float(value)
    except OverflowError:  # a huge int: JSON.parse gives +/-Infinity
        return math.inf if value > 0 else -math.inf


def _js_number_to_string(number: float) -> str:
    """ECMAScript Number::toString(10): shortest round-trip digits, JS's exponent thresholds."""
    if number == 0:
        return "0"
    if number < 0:
        return "-" + _js_number_to_string(-number)
    sign, digit_tuple, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = exponent + k  # value = 0.<digits> x 10^n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _decimal_places(number: float) -> int:
    # class-validator isNumber: `value.toString().split('.')[1].length` when `value % 1 !== 0`.
    # A fraction JS prints without a '.' (1e-7) makes `[1]` undefined and `.length` a TypeError,
    # which NestJS answers as a 500.
    if math.fmod(number, 1) == 0:
        return 0
    parts = _js_number_to_string(number).split(".")
    if len(parts) < 2:
        raise _JsTypeError("Cannot read properties of undefined (reading 'length')")
    return len(parts[1])


def _is_number(max_decimal_places: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        number = _js_number(value)
        if number is None or math.isinf(number):  # allowInfinity / allowNaN default to false
            return False
        return max_decimal_places is None or _decimal_places(number) <= max_decimal_places

    return check


def _is_positive(value: Any) -> bool:
    number = _js_number(value)
    return number is not None and number > 0


def _is_not_empty(value: Any) -> bool:
    return value is not _UNDEFINED and value is not None and value != ""


def _is_in(*allowed: str) -> _Constraint:
    return _Constraint(
        "isIn",
        MSG_IS_IN.replace("{values}", ", ".join(allowed)),
        lambda value: isinstance(value, str) and value in allowed,
    )


IS_NOT_EMPTY = _Constraint("isNotEmpty", MSG_IS_NOT_EMPTY, _is_not_empty)
IS_STRING = _Constraint("isString", MSG_IS_STRING, lambda value: isinstance(value, str))
IS_BOOLEAN = _Constraint("isBoolean", MSG_IS_BOOLEAN, lambda value: isinstance(value, bool))
IS_OBJECT = _Constraint("isObject", MSG_IS_OBJECT, lambda value: isinstance(value, dict))
IS_POSITIVE = _Constraint("isPositive", MSG_IS_POSITIVE, _is_positive)
IS_MONEY_NUMBER = _Constraint("isNumber", MSG_IS_NUMBER, _is_number(max_decimal_places=2))

# ---- The DTOs. Optty's source is not public: every decorator below is a Decision, chosen from
# the seed's OpenAPI schema and the messages the provider's pages quote. ----------------------

# OrderRefundAmount
#   @IsNumber({ maxDecimalPlaces: 2 }) @IsPositive() amount   -- "must be a positive number with up
#       to 2 decimal places"; the reference quotes "refundAmount.amount must be a positive number".
#   @IsString() @IsNotEmpty() currency -- no @IsISO4217CurrencyCode (class-validator 0.14, 2022,
#       newer than the API): a wrong code meets the order-currency check instead.
_ORDER_REFUND_AMOUNT = _Schema(
    (
        _prop("amount", IS_MONEY_NUMBER, IS_POSITIVE),
        _prop("currency", IS_STRING, IS_NOT_EMPTY),
    )
)

# OrderRefundDto
#   @IsString() @IsNotEmpty() refundReference
#   @IsObject() @ValidateNested() @Type(() => OrderRefundAmount) refundAmount -- @IsObject also
#       refuses a missing value, null and arrays (bare @ValidateNested lets undefined and [] pass).
#   @IsString() refundDescription -- required by the seed; an empty description is allowed.
#   @IsOptional() @IsBoolean() isActivatedViaOAuth -- Optty's own plugin never sends it.
_ORDER_REFUND_DTO = _Schema(
    (
        _prop("refundReference", IS_STRING, IS_NOT_EMPTY),
        _prop("refundAmount", IS_OBJECT, nested=_ORDER_REFUND_AMOUNT),
        _prop("refundDescription", IS_STRING),
        _prop("isActivatedViaOAuth", IS_BOOLEAN, optional=True),
    )
)

# TokenDto (form-encoded POST /token; the WooCommerce plugin also sends response_type=token,
# which is tolerated like any unknown field)
#   @IsString() @IsNotEmpty() client_id / client_secret
#   @IsIn(['client_credentials']) grant_type;  @IsIn(['api-user']) scope
_TOKEN_DTO = _Schema(
    (
        _prop("client_id", IS_STRING, IS_NOT_EMPTY),
        _prop("client_secret", IS_STRING, IS_NOT_EMPTY),
        _prop("grant_type", _is_in(GRANT_TYPE_CLIENT_CREDENTIALS)),
        _prop("scope", _is_in(SCOPE_API_USER)),
    )
)


# ---- class-validator's ValidationExecutor and NestJS's flattenValidationErrors ----------------


@dataclass
class _ValidationError:
    property: str
    constraints: dict[str, str] | None = field(default_factory=dict)
    children: list[_ValidationError] = field(default_factory=list)


def _execute(obj: Mapping[str, Any], schema: _Schema, errors: list[_ValidationError],
             notes: list[str], path: str = "") -> None:
    # Properties in declaration order; within one, the custom constraints in metadata order, then
    # nested validation (ValidationExecutor.performValidations).
    for prop in schema.properties:
        value = obj.get(prop.name, _UNDEFINED)
        error = _ValidationError(prop.name)
        errors.append(error)
        if prop.optional and (value is _UNDEFINED or value is None):
            continue
        for constraint in prop.constraints:
            try:
                passed = constraint.check(value)
            except _JsTypeError:
                passed = False
                notes.append(WARN_NUMBER_CRASH.format(property=path + prop.name))
            if not passed:
                assert error.constraints is not None
                error.constraints[constraint.name] = constraint.message.format(property=prop.name)
        if prop.nested is not None:
            _nested(prop, prop.nested, value, error, notes, f"{path}{prop.name}.", 0)


def _nested(prop: _Property, schema: _Schema, value: Any, error: _ValidationError,
            notes: list[str], path: str, depth: int) -> None:
    # ValidationExecutor.nestedValidations: arrays are walked element by element (each element
    # is an error named by its index); objects (class-transformer made them schema instances)
    # are validated against the schema; anything else fails with the nested-property message,
    # which names the decorated property even for an array element.
    if value is _UNDEFINED:
        return
    if isinstance(value, list):
        if depth >= MAX_NESTED_ARRAY_DEPTH:
            notes.append(WARN_DEEP_ARRAYS.format(property=prop.name,
                                                 depth=MAX_NESTED_ARRAY_DEPTH))
            return
        for index, item in enumerate(value):
            child = _ValidationError(str(index))
            error.children.append(child)
            _nested(prop, schema, item, child, notes, path, depth + 1)
    elif isinstance(value, dict):
        _execute(value, schema, error.children, notes, path)
    else:
        assert error.constraints is not None
        error.constraints["nestedValidation"] = MSG_NESTED.format(property=prop.name)


def _strip_empty(errors: list[_ValidationError]) -> list[_ValidationError]:
    # ValidationExecutor.stripEmptyErrors.
    kept = []
    for error in errors:
        error.children = _strip_empty(error.children)
        if not error.constraints:
            if not error.children:
                continue
            error.constraints = None
        kept.append(error)
    return kept


def _map_children(error: _ValidationError, parent_path: str | None = None) -> list[dict[str, str]]:
    # ValidationPipe.mapChildrenToValidationErrors (NestJS >= 7.6, full parent path). A parent's
    # own constraints are dropped once it has children.
    if not error.children:
        return [error.constraints] if error.constraints is not None else []
    path = f"{parent_path}.{error.property}" if parent_path else error.property
    mapped: list[dict[str, str]] = []
    for item in error.children:
        if item.children:
            mapped.extend(_map_children(item, path))
        own = item.constraints or {}
        mapped.append({key: f"{path}.{message}" for key, message in own.items()})
    return mapped


def _messages(errors: Iterable[_ValidationError]) -> list[str]:
    return [
        message
        for error in errors
        for constraints in _map_children(error)
        for message in constraints.values()
    ]


def _validate(body: Any, schema: _Schema) -> None:
    # NestJS's ValidationPipe turns null into {}; a primitive is validated as `{constructor}` and
    # an array as the class it was cast to: either way no property is defined, so anything but a
    # JSON object is validated like an empty one.
    obj: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    errors: list[_ValidationError] = []
    notes: list[str] = []
    _execute(obj, schema, errors, notes)
    messages = _messages(_strip_empty(errors))
    if messages:
        refusal = BadRequest(messages)
        refusal.warnings.extend(dict.fromkeys(notes))
        raise refusal


def validate_refund(body: Any) -> OrderRefund:
    """Validate a parsed refund body as Optty's ValidationPipe would; BadRequest(list) on failure.

    Unknown fields are tolerated (ValidationPipe without whitelist/forbidNonWhitelisted). The
    amount is the JS double Node would hold, written as JS prints it: 10.10 -> Decimal("10.1").
    """
    _validate(body, _ORDER_REFUND_DTO)
    amount = body["refundAmount"]
    number = _js_number(amount["amount"])
    assert number is not None
    oauth = body.get("isActivatedViaOAuth")
    return OrderRefund(
        refund_reference=body["refundReference"],
        amount=Decimal(_js_number_to_string(number)),
        currency=amount["currency"],
        description=body["refundDescription"],
        activated_via_oauth=bool(oauth),
    )


def validate_token_request(form: Any) -> TokenRequest:
    """Validate the form fields of POST /token; BadRequest(list) on failure."""
    _validate(form, _TOKEN_DTO)
    return TokenRequest(
        client_id=form["client_id"],
        client_secret=form["client_secret"],
        grant_type=form["grant_type"],
        scope=form["scope"],
    )


def schema_violation_message(violation: Violation) -> str:
    """A spec violation the emulated decorators let through, in class-validator's wording for
    the decorator that would have caught it (never the JSON Schema validator's own text)."""
    prop = violation.dotted or "body"
    keyword, arg = violation.keyword, violation.argument
    if keyword == "required":
        given = violation.instance if isinstance(violation.instance, Mapping) else {}
        missing = [name for name in arg or () if name not in given]
        prop = ".".join([*(str(p) for p in violation.path), *missing[:1]]) or prop
        return MSG_IS_DEFINED.format(property=prop)
    if keyword == "type":
        wanted = arg if isinstance(arg, str) else next(iter(arg or ()), "")
        template = {"string": MSG_IS_STRING, "boolean": MSG_IS_BOOLEAN,
                    "object": MSG_IS_OBJECT}.get(str(wanted), MSG_IS_NUMBER)
        return template.format(property=prop)
    if keyword == "minimum":
        return (MSG_IS_POSITIVE.format(property=prop) if arg == 0
                else MSG_MIN.format(property=prop, bound=json_text(arg)))
    if keyword == "maximum":
        return MSG_MAX.format(property=prop, bound=json_text(arg))
    if keyword == "minLength":
        return (MSG_IS_NOT_EMPTY.format(property=prop) if arg == 1
                else MSG_MIN_LENGTH.format(property=prop, bound=arg))
    if keyword == "maxLength":
        return MSG_MAX_LENGTH.format(property=prop, bound=arg)
    if keyword == "enum":
        return MSG_IS_IN.format(property=prop, values=", ".join(str(v) for v in arg or ()))
    if keyword == "pattern":
        return MSG_MATCHES.format(property=prop, pattern=arg)
    # multipleOf (IsNumber's maxDecimalPlaces) and anything else a number can break
    return MSG_IS_NUMBER.format(property=prop)
