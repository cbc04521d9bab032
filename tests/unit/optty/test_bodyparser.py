"""Express's body parsers: which bodies are read, body-parser's limits and errors, qs parsing."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest

from mock_server.optty.bodyparser import (
    PARAMETER_LIMIT,
    media_type,
    parse_qs,
    parse_request_body,
)
from mock_server.optty.errors import BadRequest, HttpError, PayloadTooLarge, UnsupportedMediaType
from mock_server.optty.jsonparse import BODY_LIMIT_BYTES


def parse(raw: bytes, content_type: str | None = "application/json",
          **headers: str) -> Any:
    all_headers = {"content-length": str(len(raw))}
    if content_type is not None:
        all_headers["content-type"] = content_type
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return parse_request_body(all_headers, raw)


@pytest.mark.parametrize(("header", "media"), [
    ("application/json", "application/json"),
    ("Application/JSON; charset=utf-8", "application/json"),
    ("  application/json ;foo=bar", "application/json"),
    ("application/json garbage", None),
    ("json", None),
    ("", None),
    (None, None),
])
def test_media_type(header: str | None, media: str | None) -> None:
    assert media_type(header) == media


def test_json_is_parsed() -> None:
    assert parse(b'{"a": [1, 2.50]}') == {"a": [1, __import__("decimal").Decimal("2.50")]}


def test_a_body_without_length_or_transfer_encoding_is_not_read() -> None:
    assert parse_request_body({"content-type": "application/json"}, b"{oops") == {}


def test_a_chunked_body_is_read() -> None:
    with pytest.raises(BadRequest):
        parse_request_body({"content-type": "application/json",
                            "transfer-encoding": "chunked"}, b"{oops")


@pytest.mark.parametrize("content_type", ["text/plain", "application/ld+json", None,
                                          "multipart/form-data; boundary=x"])
def test_other_types_are_left_alone(content_type: str | None) -> None:
    assert parse(b"{oops", content_type) == {}


def test_syntax_errors_are_nestjs_bad_requests() -> None:
    with pytest.raises(BadRequest) as caught:
        parse(b"{oops")
    assert caught.value.body() == {"statusCode": 400,
                                   "message": "Unexpected token o in JSON at position 1",
                                   "error": "Bad Request"}


@pytest.mark.parametrize(("charset", "upper"), [("latin1", "LATIN1"), ("utf8", "UTF8"),
                                                ("us-ascii", "US-ASCII"), ("utf-9", "UTF-9")])
def test_json_charsets_other_than_utf_are_415(charset: str, upper: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(b"{}", f"application/json; charset={charset}")
    assert caught.value.body() == {"statusCode": 415,
                                   "message": f'unsupported charset "{upper}"'}


@pytest.mark.parametrize("charset", ["utf-16le", "utf-16be", "utf-16"])
def test_utf16_json_positions_are_still_reported(charset: str) -> None:
    codec = {"utf-16le": "utf-16-le", "utf-16be": "utf-16-be", "utf-16": "utf-16"}[charset]
    with pytest.raises(BadRequest) as caught:
        parse('{"a": x}'.encode(codec), f'application/json; charset="{charset}"')
    assert caught.value.message == "Unexpected token x in JSON at position 6"


def test_form_charset_must_be_utf8() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse(b"a=1", "application/x-www-form-urlencoded; charset=iso-8859-1")


def test_inflated_bodies() -> None:
    assert parse(gzip.compress(b'{"a":1}'), content_encoding="gzip") == {"a": 1}
    assert parse(zlib.compress(b'{"a":1}'), content_encoding="DEFLATE") == {"a": 1}
    assert parse(b'{"a":1}', content_encoding="identity") == {"a": 1}


def test_a_truncated_gzip_body() -> None:
    with pytest.raises(HttpError) as caught:
        parse(gzip.compress(b'{"a":1}')[:-6], content_encoding="gzip")
    assert caught.value.body() == {"statusCode": 400, "message": "unexpected end of file"}


def test_a_body_that_is_not_gzip() -> None:
    with pytest.raises(HttpError) as caught:
        parse(b"plain", content_encoding="gzip")
    assert caught.value.body() == {"statusCode": 400, "message": "incorrect header check"}


def test_unknown_encodings_are_415() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(b"{}", content_encoding="compress")
    assert caught.value.message == 'unsupported content encoding "compress"'


def test_the_declared_length_alone_can_be_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_request_body({"content-type": "application/json",
                            "content-length": str(BODY_LIMIT_BYTES + 1)}, b"{}")


def test_the_limit_is_inclusive() -> None:
    body = b'{"a":"' + b"x" * (BODY_LIMIT_BYTES - 8) + b'"}'
    assert len(body) == BODY_LIMIT_BYTES
    assert parse(body) == {"a": "x" * (BODY_LIMIT_BYTES - 8)}
    with pytest.raises(PayloadTooLarge):
        parse(body + b" ")


def test_parameter_limit() -> None:
    fine = "&".join(["a=1"] * PARAMETER_LIMIT).encode()
    assert parse(fine, "application/x-www-form-urlencoded")["a"] == ["1"] * PARAMETER_LIMIT
    with pytest.raises(HttpError) as caught:
        parse(fine + b"&b=2", "application/x-www-form-urlencoded")
    assert caught.value.body() == {"statusCode": 413, "message": "too many parameters"}


@pytest.mark.parametrize(("text", "parsed"), [
    ("", {}),
    ("a=1", {"a": "1"}),
    ("a", {"a": ""}),
    ("=x", {}),
    ("a=1&a=2&a=3", {"a": ["1", "2", "3"]}),
    ("a+b=c+d%20e", {"a b": "c d e"}),
    ("a=caf%C3%A9", {"a": "café"}),
    ("a=%ZZ", {"a": "%ZZ"}),
    ("a=%FF", {"a": "%FF"}),
    ("a[b]=1&a[c]=2", {"a": {"b": "1", "c": "2"}}),
    ("a[b][c]=1", {"a": {"b": {"c": "1"}}}),
    ("a[]=1&a[]=2", {"a": ["1", "2"]}),
    ("a[1]=x&a[0]=y", {"a": ["y", "x"]}),
    ("a[5]=x", {"a": ["x"]}),
    ("a[101]=x", {"a": {"101": "x"}}),
    ("a[b]x[c]=1", {"a": {"b": {"c": "1"}}}),
    ("a=1&a[b]=2", {"a": ["1", {"b": "2"}]}),
    ("a[b]=2&a=1", {"a": {"b": "2", "1": True}}),
    ("a[__proto__]=1", {"a": {}}),
    ("[b]=1", {"b": "1"}),
    ("a=b=c", {"a": "b=c"}),
])
def test_qs(text: str, parsed: dict[str, Any]) -> None:
    assert parse_qs(text) == parsed
