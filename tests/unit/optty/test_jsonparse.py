"""Request bodies parsed as body-parser (strict) + Node 16's JSON.parse do, errors worded alike."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.optty.jsonparse import (
    MSG_UNEXPECTED_EOS,
    JsonSyntaxError,
    parse_json,
    stringify,
)


def error_of(raw: bytes) -> str:
    with pytest.raises(JsonSyntaxError) as caught:
        parse_json(raw)
    return caught.value.message


# ---- the provider's own example ------------------------------------------------------------


def test_docs_example_stray_a_at_position_157() -> None:
    # The description's opening quote forgotten, the value starting at character 157.
    head = (
        '{"refundReference": "TgEHcPtpN2HSrTMK-0", "refundAmount": {"amount": 100, '
        '"currency": "AUD"}, "refundDescription": '
    )
    body = head.ljust(157) + 'a refund"}'
    assert body.index("a", len(head)) == 157
    assert error_of(body.encode()) == "Unexpected token a in JSON at position 157"


# ---- V8's JSON.parse messages --------------------------------------------------------------

V8_ERRORS = [
    # truncated documents
    ("{", MSG_UNEXPECTED_EOS),
    ('{"a"', MSG_UNEXPECTED_EOS),
    ('{"a":', MSG_UNEXPECTED_EOS),
    ('{"a":1', MSG_UNEXPECTED_EOS),
    ('{"a":"bc', MSG_UNEXPECTED_EOS),
    ('["\\', MSG_UNEXPECTED_EOS),
    ('["\\u12', MSG_UNEXPECTED_EOS),
    ("[tr", MSG_UNEXPECTED_EOS),
    ("[1.", MSG_UNEXPECTED_EOS),
    ("[1e+", MSG_UNEXPECTED_EOS),
    ("[-", MSG_UNEXPECTED_EOS),
    ("[1,", MSG_UNEXPECTED_EOS),
    ("[ \n\t", MSG_UNEXPECTED_EOS),
    # unexpected tokens: the offending UTF-16 code unit and its position
    ("[1,]", "Unexpected token ] in JSON at position 3"),
    ('{"a":1,}', "Unexpected token } in JSON at position 7"),
    ("{,}", "Unexpected token , in JSON at position 1"),
    ("{a:1}", "Unexpected token a in JSON at position 1"),
    ("{'a':1}", "Unexpected token ' in JSON at position 1"),
    ('{"a"=1}', "Unexpected token = in JSON at position 4"),
    ('{"a":1;}', "Unexpected token ; in JSON at position 6"),
    ("[trux]", "Unexpected token x in JSON at position 4"),
    ("[nul]", "Unexpected token ] in JSON at position 4"),
    ("[True]", "Unexpected token T in JSON at position 1"),
    ("[NaN]", "Unexpected token N in JSON at position 1"),
    ("[-Infinity]", "Unexpected token I in JSON at position 2"),
    ("[.5]", "Unexpected token . in JSON at position 1"),
    ("[1.5.3]", "Unexpected token . in JSON at position 4"),
    ("[1.e5]", "Unexpected token e in JSON at position 3"),
    ("[1ee5]", "Unexpected token e in JSON at position 3"),
    ("[0x10]", "Unexpected token x in JSON at position 2"),
    ("[-a]", "Unexpected token a in JSON at position 2"),
    ('["\\x"]', "Unexpected token x in JSON at position 3"),
    ('["\\U0041"]', "Unexpected token U in JSON at position 3"),
    ('["\\u12G4"]', "Unexpected token G in JSON at position 6"),
    ('["a\tb"]', "Unexpected token \t in JSON at position 3"),
    ('["a\nb"]', "Unexpected token \n in JSON at position 3"),
    ('["a\x01b"]', "Unexpected token \x01 in JSON at position 3"),
    ("{}x", "Unexpected token x in JSON at position 2"),
    ("{} }", "Unexpected token } in JSON at position 3"),
    ("[]\f", "Unexpected token \f in JSON at position 2"),
    ("[\u00a0]", "Unexpected token \u00a0 in JSON at position 1"),
    ("[1]\ufeff", "Unexpected token \ufeff in JSON at position 3"),
    ("[é]", "Unexpected token é in JSON at position 1"),
    # a digit or '-' where it cannot be: "Unexpected number"
    ("[01]", "Unexpected number in JSON at position 2"),
    ("[-01]", "Unexpected number in JSON at position 3"),
    ("[00]", "Unexpected number in JSON at position 2"),
    ("[1 2]", "Unexpected number in JSON at position 3"),
    ('{"a" 1}', "Unexpected number in JSON at position 5"),
    ("{1:1}", "Unexpected number in JSON at position 1"),
    ("[--1]", "Unexpected number in JSON at position 2"),
    ("[1.-1]", "Unexpected number in JSON at position 3"),
    ("[1e--1]", "Unexpected number in JSON at position 4"),
    ("[12-3]", "Unexpected number in JSON at position 3"),
    ("[0-1]", "Unexpected number in JSON at position 2"),
    ("[tr1e]", "Unexpected number in JSON at position 3"),
    ('["\\1"]', "Unexpected number in JSON at position 3"),
    ('["\\-"]', "Unexpected number in JSON at position 3"),
    ("{} 1", "Unexpected number in JSON at position 3"),
    # a '"' where it cannot be: "Unexpected string"
    ('["a" "b"]', "Unexpected string in JSON at position 5"),
    ('{"a":1 "b":2}', "Unexpected string in JSON at position 7"),
    ('{"a""b"}', "Unexpected string in JSON at position 4"),
    ('[t"]', "Unexpected string in JSON at position 2"),
    ('{}"x"', "Unexpected string in JSON at position 2"),
    ('["\\""', MSG_UNEXPECTED_EOS),
]


@pytest.mark.parametrize(("body", "message"), V8_ERRORS)
def test_v8_error_message(body: str, message: str) -> None:
    assert error_of(body.encode()) == message


# ---- body-parser's strict mode -------------------------------------------------------------

STRICT_ERRORS = [
    ("true", "Unexpected token t in JSON at position 0"),
    ("null", "Unexpected token n in JSON at position 0"),
    ("123", "Unexpected token 1 in JSON at position 0"),
    ("-1", "Unexpected token - in JSON at position 0"),
    ('"abc"', 'Unexpected token " in JSON at position 0'),
    ("  \n\t x", "Unexpected token x in JSON at position 5"),
    ("a=1&b=2", "Unexpected token a in JSON at position 0"),
    ("#{}", "Unexpected token # in JSON at position 0"),
    ("\ufeff\ufeff{}", "Unexpected token \ufeff in JSON at position 0"),
    ("\u00a0{}", "Unexpected token \u00a0 in JSON at position 0"),
    ("   ", MSG_UNEXPECTED_EOS),
    ("\r\n", MSG_UNEXPECTED_EOS),
]


@pytest.mark.parametrize(("body", "message"), STRICT_ERRORS)
def test_strict_mode_refuses_a_non_container_first_character(body: str, message: str) -> None:
    assert error_of(body.encode()) == message


def test_strict_mode_names_one_utf16_unit_of_an_astral_first_character() -> None:
    assert error_of("\U0001f600".encode()) == "Unexpected token \ud83d in JSON at position 0"


# ---- body-parser's decoding ----------------------------------------------------------------


def test_empty_body_is_an_empty_object() -> None:
    assert parse_json(b"") == {}


def test_bom_only_body_is_an_empty_object() -> None:
    assert parse_json(b"\xef\xbb\xbf") == {}


def test_leading_bom_is_stripped() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a":1}') == {"a": 1}


def test_invalid_utf8_in_a_string_becomes_replacement_characters() -> None:
    assert parse_json(b'["a\xffb\xe2\x82"]') == ["a\ufffdb\ufffd"]


def test_invalid_utf8_outside_a_string_is_an_unexpected_token() -> None:
    assert error_of(b"[\xff]") == "Unexpected token \ufffd in JSON at position 1"


def test_positions_count_utf16_code_units() -> None:
    assert error_of('["\U0001f600\U0001f600", x]'.encode()) == (
        "Unexpected token x in JSON at position 9"
    )


def test_unexpected_astral_character_reports_its_high_surrogate() -> None:
    assert error_of('[1, \U0001f600]'.encode()) == (
        "Unexpected token \ud83d in JSON at position 4"
    )


# ---- values --------------------------------------------------------------------------------


def test_integers_are_int() -> None:
    assert parse_json(b"[0, -7, 100]") == [0, -7, 100]


def test_negative_zero_is_int_zero() -> None:
    value = parse_json(b"[-0]")[0]
    assert (type(value), value) == (int, 0)


def test_fractions_are_exact_decimals() -> None:
    value = parse_json(b'{"amount": 24.98}')["amount"]
    assert (type(value), value) == (Decimal, Decimal("24.98"))


def test_decimal_keeps_the_written_digits() -> None:
    assert str(parse_json(b"[10.10]")[0]) == "10.10"


def test_exponents_are_decimals() -> None:
    assert parse_json(b"[1e2, 2.5E-1]") == [Decimal("100"), Decimal("0.25")]


def test_huge_integers_stay_exact() -> None:
    digits = "9" * 5000
    assert parse_json(f"[{digits}]".encode()) == [Decimal(digits)]


def test_literals() -> None:
    assert parse_json(b"[true, false, null]") == [True, False, None]


def test_string_escapes() -> None:
    assert parse_json(b'["\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"]') == ['"\\/\b\f\n\r\t\u00e9']


def test_escaped_surrogate_pair_is_one_character() -> None:
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\U0001f600"]


def test_lone_surrogate_escape_is_accepted_like_v8() -> None:
    assert parse_json(b'["\\ud800"]') == ["\ud800"]


def test_duplicate_keys_keep_the_last_value() -> None:
    assert parse_json(b'{"a":1,"b":2,"a":3}') == {"a": 3, "b": 2}


def test_deep_nesting_beyond_pythons_recursion_limit_is_parsed() -> None:
    value = parse_json(b"[" * 3000 + b"]" * 3000)
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == 2999


def test_json_whitespace_only_between_tokens() -> None:
    assert parse_json(b' \t\r\n{ "a" :\n[ 1 , 2 ] } \n') == {"a": [1, 2]}


# ---- stringify -----------------------------------------------------------------------------


def test_stringify_is_compact_utf8() -> None:
    assert stringify({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


def test_stringify_escapes_controls_in_lowercase_hex() -> None:
    assert stringify(["\x01\x1f"]) == b'["\\u0001\\u001f"]'


def test_stringify_writes_a_surrogate_pair_as_its_character() -> None:
    assert stringify(["\ud83d\ude00"]) == '["\U0001f600"]'.encode()


# ---- properties ----------------------------------------------------------------------------

money = st.decimals(places=2, allow_nan=False, allow_infinity=False, min_value=-10**9,
                    max_value=10**9)
scalars = st.none() | st.booleans() | st.integers() | money | st.text()
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
documents = st.lists(values, max_size=5) | st.dictionaries(st.text(max_size=8), values,
                                                           max_size=5)


def dump(value: Any, ensure_ascii: bool) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(item, ensure_ascii) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(
            json.dumps(key, ensure_ascii=ensure_ascii) + ": " + dump(item, ensure_ascii)
            for key, item in value.items()
        ) + "}"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def same(left: Any, right: Any) -> bool:
    """Equal and of the same JSON kind all the way down (True is not 1, 1 is not 1.00)."""
    if isinstance(left, list):
        return (isinstance(right, list) and len(left) == len(right)
                and all(same(a, b) for a, b in zip(left, right, strict=True)))
    if isinstance(left, dict):
        return (isinstance(right, dict) and list(left) == list(right)
                and all(same(left[key], right[key]) for key in left))
    return type(left) is type(right) and left == right


@given(documents, st.booleans())
def test_parse_reads_back_any_document(document: Any, ensure_ascii: bool) -> None:
    assert same(parse_json(dump(document, ensure_ascii).encode()), document)


@given(documents)
def test_deeply_wrapped_documents_parse_the_same(document: Any) -> None:
    # 1100 levels defeat Python's C scanner, so this exercises the V8 transcription's values.
    wrapped = parse_json(("[" * 1100 + dump(document, False) + "]" * 1100).encode())
    for _ in range(1100):
        (wrapped,) = wrapped
    assert same(wrapped, document)


ANY_SYNTAX_ERROR = re.compile(
    r"Unexpected (?:token (?P<token>.)|number|string) in JSON at position (?P<position>\d+)",
    re.DOTALL,
)


@given(documents, st.booleans(), st.data())
def test_truncated_document_fails_within_the_text(
    document: Any, ensure_ascii: bool, data: st.DataObject
) -> None:
    text = dump(document, ensure_ascii)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    message = error_of(text[:cut].encode())
    if message != MSG_UNEXPECTED_EOS:
        match = ANY_SYNTAX_ERROR.fullmatch(message)
        assert match is not None, message
        assert int(match["position"]) < len(text[:cut].encode("utf-16-le")) // 2
