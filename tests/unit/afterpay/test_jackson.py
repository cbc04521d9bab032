"""Tests for jackson.dumps; the expected bytes were checked against jackson-core 2.17.2."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.afterpay import jackson
from mock_server.afterpay.jackson import dumps


def test_recorded_refund_body_layout() -> None:
    body = {
        "amount": {"amount": "10.00", "currency": "USD"},
        "refundId": "1934419",
        "refundedAt": "2021-08-25T14:56:33.753Z",
    }
    assert dumps(body) == (
        b'{\n  "amount" : {\n    "amount" : "10.00",\n    "currency" : "USD"\n  },\n'
        b'  "refundId" : "1934419",\n  "refundedAt" : "2021-08-25T14:56:33.753Z"\n}'
    )


def test_no_trailing_newline() -> None:
    assert not dumps({"a": 1}).endswith(b"\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, b"{ }"),
        ([], b"[ ]"),
        ({"a": {}}, b'{\n  "a" : { }\n}'),
        ({"a": []}, b'{\n  "a" : [ ]\n}'),
        ([1, 2], b"[ 1, 2 ]"),
        ([[], [{}], [[1]]], b"[ [ ], [ { } ], [ [ 1 ] ] ]"),
    ],
)
def test_empty_containers_and_inline_arrays(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected


def test_objects_inside_a_root_array() -> None:
    assert dumps([{"a": 1}, {"b": 2}]) == b'[ {\n  "a" : 1\n}, {\n  "b" : 2\n} ]'


def test_array_does_not_add_a_nesting_level() -> None:
    # FixedSpaceIndenter is inline: objects in an array indent one level below the array's owner.
    value = {"a": {"b": {"c": [{"d": [{"e": 1}]}]}}}
    assert dumps(value) == (
        b'{\n  "a" : {\n    "b" : {\n      "c" : [ {\n        "d" : [ {\n'
        b'          "e" : 1\n        } ]\n      } ]\n    }\n  }\n}'
    )


def test_mixed_array_of_objects_and_scalars() -> None:
    value = {"a": [{"b": 1, "c": []}, {}], "d": [1, "x", None]}
    assert dumps(value) == (
        b'{\n  "a" : [ {\n    "b" : 1,\n    "c" : [ ]\n  }, { } ],\n  "d" : [ 1, "x", null ]\n}'
    )


def test_key_order_is_dict_order() -> None:
    assert dumps({"z": 1, "a": 2}) == b'{\n  "z" : 1,\n  "a" : 2\n}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
        (0, b"0"),
        (-12, b"-12"),
        (10**30, b"1000000000000000000000000000000"),
        (Decimal("10.00"), b"10.00"),
        (Decimal("10.0"), b"10.0"),
        (Decimal("1E+2"), b"100"),
        (Decimal("-1E-10"), b"-0.0000000001"),
        (Decimal("-0.00"), b"0.00"),
        (Decimal("123456789012345678901234567890.5"), b"123456789012345678901234567890.5"),
    ],
)
def test_scalars(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", b'"plain"'),
        ('q"b\\', b'"q\\"b\\\\"'),
        ("\b\f\n\r\t", b'"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f", b'"\\u0000\\u0001\\u001F"'),
        ("a/b", b'"a/b"'),
        ("\x7f", b'"\x7f"'),
        ("é中\u2028", '"é中\u2028"'.encode()),
        ("😀", b'"\\uD83D\\uDE00"'),
        ("\ud800x", b'"\\uD800x"'),
    ],
)
def test_string_escaping(text: str, expected: bytes) -> None:
    assert dumps(text) == expected


def test_keys_are_escaped_like_values() -> None:
    assert dumps({"a\nb": 1}) == b'{\n  "a\\nb" : 1\n}'


def test_tuple_is_an_array() -> None:
    assert dumps((1, "a")) == b'[ 1, "a" ]'


def test_float_is_refused() -> None:
    with pytest.raises(TypeError, match="refuses float"):
        dumps({"amount": 10.5})


@pytest.mark.parametrize("value", [object(), b"bytes", {1, 2}])
def test_unsupported_type(value: object) -> None:
    with pytest.raises(TypeError, match="cannot write a value of type"):
        dumps(value)


def test_non_string_key() -> None:
    with pytest.raises(TypeError, match="needs str object keys"):
        dumps({1: "a"})


def test_non_finite_decimal() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        dumps(Decimal("NaN"))


def test_message_constants() -> None:
    assert jackson.EMPTY_OBJECT == "{ }"
    assert jackson.EMPTY_ARRAY == "[ ]"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_values)
def test_output_is_json_that_decodes_to_the_input(value: Any) -> None:
    assert json.loads(dumps(value), parse_float=Decimal) == value


@given(_values)
def test_no_line_is_blank_or_ends_with_a_space(value: Any) -> None:
    # Jackson's only spaces are indentation, " : " and the inline array separators.
    for line in dumps(value).decode().split("\n"):
        assert line.strip(" ")
        assert not line.endswith(" ")
