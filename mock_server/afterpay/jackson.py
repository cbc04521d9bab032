"""JSON bytes exactly as Jackson's DefaultPrettyPrinter and UTF8JsonGenerator write them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

# Real Afterpay bodies are pretty-printed by Jackson (recorded: 2-space indent, '" : "' between
# key and value). The layout below follows jackson-core 2.x DefaultPrettyPrinter with its default
# Separators (checked against jackson-core 2.17/2.18 sources and output):
# - objects use DefaultIndenter("  ", "\n"): a linefeed plus two spaces per nesting level before
#   each entry and before the closing brace; entries are joined by "," with no space;
# - the key/value separator is ":" with Spacing.BOTH, i.e. " : ";
# - arrays use FixedSpaceIndenter, which is "inline": a single space instead of a line break and
#   it does NOT increase the nesting, so an object inside an array is indented one level deeper
#   than the object that holds the array, not two;
# - an empty object is "{ }" and an empty array "[ ]" (objectEmptySeparator/arrayEmptySeparator);
# - nothing follows the root value (no trailing newline).
_INDENT = "  "
_KEY_VALUE_SEPARATOR = " : "
EMPTY_OBJECT = "{ }"
EMPTY_ARRAY = "[ ]"

TYPE_NOT_SERIALIZABLE = "jackson.dumps cannot write a value of type {type_name}"
KEY_NOT_STRING = "jackson.dumps needs str object keys, got {type_name}"
FLOAT_REFUSED = "jackson.dumps refuses float {value!r}: money and numbers travel as Decimal or int"
DECIMAL_NOT_FINITE = "jackson.dumps cannot write the non-finite Decimal {value}"

# Characters UTF8JsonGenerator escapes by default (CharTypes.sOutputEscapes128 plus
# _outputMultiByteChar): every control character below 0x20, '"' and '\\', and every UTF-16
# surrogate. Non-ASCII text is otherwise written raw as UTF-8; '/' and DEL (0x7f) are not escaped.
# Python strings hold code points, so a character beyond the BMP is matched here and split into
# the surrogate pair Java would hold.
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\ud800-\udfff\U00010000-\U0010ffff]')

# The short escapes Jackson uses; every other control character becomes \u00XX.
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    point = ord(char)
    if point >= 0x10000:
        # UTF8JsonGenerator writes each half of a surrogate pair as its own \uXXXX escape
        # (jackson-core #223; COMBINE_UNICODE_SURROGATES_IN_UTF8 is off by default), so an emoji
        # comes out as "\uD83D\uDE00", upper-case hex (CharTypes hex table).
        offset = point - 0x10000
        return f"\\u{0xD800 + (offset >> 10):04X}\\u{0xDC00 + (offset & 0x3FF):04X}"
    return f"\\u{point:04X}"


def _quote(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(DECIMAL_NOT_FINITE.format(value=value))
    if value.is_zero():
        # BigDecimal has no negative zero; Decimal("-0.00") must still print as 0.00.
        value = abs(value)
    # Plain notation (what WRITE_BIGDECIMAL_AS_PLAIN gives), keeping the scale: "10.00" stays
    # "10.00" and Decimal("1E+2") is "100".
    return format(value, "f")


# Keys repeat from body to body (the same few field names), so their quoted form is kept.
_QUOTED_KEYS: dict[str, str] = {}
_QUOTED_KEYS_MAX = 4096
# "\n" plus the indentation of each nesting level, built once
_NEWLINES = ["\n" + _INDENT * level for level in range(16)]


def _quote_key(key: str) -> str:
    quoted = _QUOTED_KEYS.get(key)
    if quoted is None:
        quoted = _quote(key)
        if len(_QUOTED_KEYS) < _QUOTED_KEYS_MAX:
            _QUOTED_KEYS[key] = quoted
    return quoted


def _newline(nesting: int) -> str:
    return _NEWLINES[nesting] if nesting < len(_NEWLINES) else "\n" + _INDENT * nesting


def _write(value: object, nesting: int, out: list[str]) -> None:
    # the common exact types first; everything else goes through the isinstance chain below
    kind = type(value)
    if kind is str:
        out.append(_quote(value))  # type: ignore[arg-type]
        return
    if kind is dict:
        _write_object(value, nesting, out)  # type: ignore[arg-type]
        return
    # bool before int: bool is a subclass of int in Python.
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        _write_object(value, nesting, out)
    elif isinstance(value, float):
        raise TypeError(FLOAT_REFUSED.format(value=value))
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        _write_array(value, nesting, out)
    else:
        raise TypeError(TYPE_NOT_SERIALIZABLE.format(type_name=type(value).__name__))


def _write_object(value: Mapping[object, object], nesting: int, out: list[str]) -> None:
    if not value:
        out.append(EMPTY_OBJECT)
        return
    inner = nesting + 1
    entry_start = _newline(inner)
    separator = "{"
    # the hot loop of every answer: the common cases without a call (a key seen before, a
    # string that needs no escape)
    quoted_keys = _QUOTED_KEYS
    needs_escape = _NEEDS_ESCAPE.search
    for key, item in value.items():
        quoted = quoted_keys.get(key)  # type: ignore[call-overload]
        if quoted is None:
            if not isinstance(key, str):
                raise TypeError(KEY_NOT_STRING.format(type_name=type(key).__name__))
            quoted = _quote_key(key)
        if type(item) is str:
            if needs_escape(item) is None:
                out.append(f'{separator}{entry_start}{quoted}{_KEY_VALUE_SEPARATOR}"{item}"')
            else:
                out.append(f"{separator}{entry_start}{quoted}{_KEY_VALUE_SEPARATOR}{_quote(item)}")
        else:
            out.append(f"{separator}{entry_start}{quoted}{_KEY_VALUE_SEPARATOR}")
            _write(item, inner, out)
        separator = ","
    out.append(_newline(nesting) + "}")


def _write_array(value: Sequence[object], nesting: int, out: list[str]) -> None:
    if not value:
        out.append(EMPTY_ARRAY)
        return
    separator = "[ "
    for item in value:
        out.append(separator)
        # FixedSpaceIndenter is inline: the array's items stay at the enclosing nesting level.
        _write(item, nesting, out)
        separator = ", "
    out.append(" ]")


def dumps(obj: object) -> bytes:
    """Serialise dicts, lists/tuples, str, int, Decimal, bool and None; dict order is kept."""
    out: list[str] = []
    _write(obj, 0, out)
    # Every surrogate was escaped above, so the text always encodes.
    return "".join(out).encode("utf-8")
