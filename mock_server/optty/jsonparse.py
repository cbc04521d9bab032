"""JSON read as body-parser + Node 16 read Optty request bodies, and written as JSON.stringify."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NoReturn

# body-parser's default `limit` ('100kb'), which NestJS does not change: a larger body is refused
# with 413 before it is parsed (raw-body counts the raw bytes).
BODY_LIMIT_BYTES = 100 * 1024

# V8 9.x MessageTemplate texts (src/common/message-template.h, the Node 16 era the docs quote:
# "Unexpected token a in JSON at position 157"). Node 19+/V8 10.x reworded them; we keep the docs'.
MSG_UNEXPECTED_EOS = "Unexpected end of JSON input"
MSG_UNEXPECTED_TOKEN = "Unexpected token {char} in JSON at position {position}"
MSG_UNEXPECTED_NUMBER = "Unexpected number in JSON at position {position}"
MSG_UNEXPECTED_STRING = "Unexpected string in JSON at position {position}"


class JsonSyntaxError(ValueError):
    """The SyntaxError body-parser hands to NestJS; `message` is Node's text, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_json(raw: bytes) -> Any:
    """Parse a request body as body-parser's `json({strict: true})` on Node 16 does.

    Integers come back as int, numbers with a fraction or an exponent as Decimal built from the
    exact text (never float), strings as str (an astral character is one code point; a lone
    surrogate escape stays a lone surrogate, as in a JS string).
    """
    # raw-body decodes through iconv-lite: invalid UTF-8 becomes U+FFFD (Node's decoder follows the
    # same WHATWG "maximal subpart" rule as Python's "replace"), and a leading BOM is stripped.
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        # body-parser lib/types/json.js: "special-case empty json body, as it's a common
        # client-side mistake" -> {}.
        return {}
    first = _FIRST_CHAR.match(text)
    if first is None or first.group(1) not in "{[":
        raise JsonSyntaxError(_strict_violation(text))
    try:
        return _FAST_DECODER.decode(text)
    except (ValueError, RecursionError):
        # Python's C scanner rejected the text (or hit its recursion or int-digit limit): rerun
        # the V8 emulation, which names the error exactly as Node does, or returns the value
        # when only Python's limits were in the way.
        return _V8JsonParser(text).parse()


def stringify(value: Any) -> bytes:
    """Serialise like Node's JSON.stringify (compact, UTF-8, well-formed since Node 12).

    Only JSON-native Python types (dict, list, str, int, bool, None) are accepted.
    """
    out = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if _SURROGATE.search(out) is None:
        return out.encode("utf-8")
    # A str holding a high+low pair is one astral character in JS; whatever is left unpaired is
    # written as a lowercase \uXXXX escape, as well-formed JSON.stringify does.
    out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out).encode("utf-8")


_SURROGATE = re.compile("[\ud800-\udfff]")
# body-parser's FIRST_CHAR_REGEXP: RFC 7159 whitespace only, then one UTF-16 code unit.
_FIRST_CHAR = re.compile(r"^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])")
_WHITESPACE = " \t\n\r"
_DIGITS = "0123456789"


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN / Infinity / -Infinity; JSON.parse does not.
    raise ValueError(name)


_FAST_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def _strict_violation(text: str) -> str:
    """The message body-parser's createStrictSyntaxError builds for a non-{/[ first character.

    It JSON.parses a copy whose tail from the first non-space character on is '#'-masked, then
    puts the original characters back over the '#' run in V8's message. A whitespace-only body
    has no first character: indexOf(undefined) is -1, the copy is "", and JSON.parse("") fails
    with "Unexpected end of JSON input".
    """
    js = _to_utf16_units(text)
    first = _FIRST_CHAR.match(js)
    if first is None:
        return MSG_UNEXPECTED_EOS
    index = first.start(1)
    masked = js[:index] + "#" * (len(js) - index)
    try:
        _V8JsonParser(masked, utf16=True).parse()
    except JsonSyntaxError as exc:
        return re.sub("#+", lambda m: js[index : index + len(m.group())], exc.message)
    raise AssertionError("a '#'-masked body always fails to parse")  # pragma: no cover


def _to_utf16_units(text: str) -> str:
    """Spell astral characters as surrogate pairs, so that indexes are JS (UTF-16) positions."""
    if text.isascii() or max(text) <= "\uffff":
        return text
    return "".join(
        ch
        if ch <= "\uffff"
        else chr(0xD800 + ((ord(ch) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(ch) - 0x10000) & 0x3FF))
        for ch in text
    )


def _from_utf16_units(units: str) -> str:
    if _SURROGATE.search(units) is None:
        return units
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _number(text: str) -> int | Decimal:
    if "." in text or "e" in text or "E" in text:
        return Decimal(text)
    try:
        return int(text)
    except ValueError:
        # Past Python's int-string digit limit (4300): still exact, as a Decimal.
        return Decimal(text)


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


class _V8JsonParser:
    """A transcription of V8 9.x's JsonParser (src/json/json-parser.{h,cc}, Node 16).

    Only the first error matters (V8 moves its cursor to the end once one is reported), and every
    report V8 makes depends on the cursor position alone: at the end of input it is
    kJsonParseUnexpectedEOS; otherwise the one-character token table decides (a digit or '-' ->
    "Unexpected number", '"' -> "Unexpected string", anything else -> "Unexpected token <that
    UTF-16 code unit>"). Positions are UTF-16 code units. The parse is iterative, like V8's.
    """

    def __init__(self, text: str, *, utf16: bool = False) -> None:
        self.s = text if utf16 else _to_utf16_units(text)
        self.n = len(self.s)

    def fail(self, pos: int) -> NoReturn:
        if pos >= self.n:
            raise JsonSyntaxError(MSG_UNEXPECTED_EOS)
        ch = self.s[pos]
        if ch in _DIGITS or ch == "-":
            raise JsonSyntaxError(MSG_UNEXPECTED_NUMBER.format(position=pos))
        if ch == '"':
            raise JsonSyntaxError(MSG_UNEXPECTED_STRING.format(position=pos))
        raise JsonSyntaxError(MSG_UNEXPECTED_TOKEN.format(char=ch, position=pos))

    def skip_ws(self, i: int) -> int:
        s, n = self.s, self.n
        while i < n and s[i] in _WHITESPACE:
            i += 1
        return i

    def expect(self, i: int, ch: str) -> int:
        i = self.skip_ws(i)
        if i >= self.n or self.s[i] != ch:
            self.fail(i)
        return i + 1

    def parse(self) -> Any:
        s, n = self.s, self.n
        # Each open container: [container, pending key (objects only)].
        stack: list[list[Any]] = []
        i = 0
        while True:
            # Produce a value (JsonParser::ParseJsonValue, first inner loop).
            value: Any
            i = self.skip_ws(i)
            if i >= n:
                self.fail(i)
            ch = s[i]
            if ch == '"':
                value, i = self.scan_string(i + 1)
            elif ch in _DIGITS or ch == "-":
                value, i = self.scan_number(i)
            elif ch == "{":
                i = self.skip_ws(i + 1)
                if i < n and s[i] == "}":
                    value, i = {}, i + 1
                else:
                    if i >= n or s[i] != '"':
                        self.fail(i)
                    key, i = self.scan_string(i + 1)
                    i = self.expect(i, ":")
                    stack.append([{}, key])
                    continue
            elif ch == "[":
                i = self.skip_ws(i + 1)
                if i < n and s[i] == "]":
                    value, i = [], i + 1
                else:
                    stack.append([[], None])
                    continue
            elif ch == "t":
                value, i = True, self.scan_literal(i, "true")
            elif ch == "f":
                value, i = False, self.scan_literal(i, "false")
            elif ch == "n":
                value, i = None, self.scan_literal(i, "null")
            else:
                self.fail(i)
            # Consume produced values (second inner loop): close every container that ends here.
            while True:
                if not stack:
                    i = self.skip_ws(i)
                    if i != n:
                        self.fail(i)
                    return value
                top = stack[-1]
                container = top[0]
                if isinstance(container, dict):
                    container[top[1]] = value
                else:
                    container.append(value)
                i = self.skip_ws(i)
                if i < n and s[i] == ",":
                    if isinstance(container, dict):
                        i = self.skip_ws(i + 1)
                        if i >= n or s[i] != '"':
                            self.fail(i)
                        top[1], i = self.scan_string(i + 1)
                        i = self.expect(i, ":")
                    else:
                        i += 1
                    break
                closer = "}" if isinstance(container, dict) else "]"
                if i >= n or s[i] != closer:
                    self.fail(i)
                i += 1
                value = container
                stack.pop()

    def scan_literal(self, i: int, literal: str) -> int:
        # JsonParser::ScanLiteral: the first mismatching character, or the end of input.
        for k in range(1, len(literal)):
            if i + k >= self.n or self.s[i + k] != literal[k]:
                self.fail(i + k)
        return i + len(literal)

    def scan_number(self, i: int) -> tuple[int | Decimal, int]:
        # JsonParser::ParseJsonNumber.
        s, n = self.s, self.n
        start = i
        if s[i] == "-":
            i += 1
        if i < n and s[i] == "0":
            i += 1
            if i < n and s[i] in _DIGITS:
                self.fail(i)  # a leading zero: "Unexpected number"
        else:
            digits_start = i
            while i < n and s[i] in _DIGITS:
                i += 1
            if i == digits_start:
                self.fail(i)
        if i < n and s[i] == ".":
            i += 1
            if i >= n or s[i] not in _DIGITS:
                self.fail(i)
            while i < n and s[i] in _DIGITS:
                i += 1
        if i < n and s[i] in "eE":
            i += 1
            if i < n and s[i] in "+-":
                i += 1
            if i >= n or s[i] not in _DIGITS:
                self.fail(i)
            while i < n and s[i] in _DIGITS:
                i += 1
        return _number(s[start:i]), i

    def scan_string(self, i: int) -> tuple[str, int]:
        # JsonParser::ScanJsonString, from just after the opening quote.
        s, n = self.s, self.n
        parts: list[str] = []
        run = i
        while True:
            if i >= n:
                self.fail(i)
            ch = s[i]
            if ch == '"':
                parts.append(s[run:i])
                return _from_utf16_units("".join(parts)), i + 1
            if ch == "\\":
                parts.append(s[run:i])
                i += 1
                if i >= n:
                    self.fail(i)
                esc = s[i]
                if esc == "u":
                    for k in range(1, 5):
                        if i + k >= n or s[i + k] not in _HEX:
                            self.fail(i + k)
                    parts.append(chr(int(s[i + 1 : i + 5], 16)))
                    i += 5
                elif esc in _ESCAPES:
                    parts.append(_ESCAPES[esc])
                    i += 1
                else:
                    # An illegal escape is reported on the character after the backslash, so
                    # "\1" says "Unexpected number" and "\x" says "Unexpected token x".
                    self.fail(i)
                run = i
                continue
            if ch < " ":
                self.fail(i)
            i += 1
