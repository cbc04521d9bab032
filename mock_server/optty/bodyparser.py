"""Express's body parsers as NestJS registers them (json, urlencoded extended), before routing."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from mock_server.optty import errors
from mock_server.optty.jsonparse import BODY_LIMIT_BYTES, JsonSyntaxError, parse_json

# NestJS's ExpressAdapter.registerParserMiddleware: bodyParser.json() and
# bodyParser.urlencoded({extended: true}), both with body-parser's defaults (limit '100kb',
# inflate true). They run as application middleware, i.e. before the router, the guards and the
# not-found handler: a malformed JSON body is answered 400 even on an unknown route or without a
# token. A body of any other content type is never read: req.body stays {}.
JSON_TYPE = "application/json"  # type-is('application/json'): not application/*+json
FORM_TYPE = "application/x-www-form-urlencoded"
PARAMETER_LIMIT = 1000  # body-parser urlencoded `parameterLimit`

# http-errors created by raw-body / body-parser; NestJS's BaseExceptionFilter answers them with
# {statusCode, message} (no "error" field), see errors.PayloadTooLarge.
MSG_UNSUPPORTED_CHARSET = 'unsupported charset "{charset}"'
MSG_UNSUPPORTED_ENCODING = 'unsupported content encoding "{encoding}"'
MSG_TOO_MANY_PARAMETERS = "too many parameters"
# zlib's messages for a body that does not inflate (Node's wording, not Python's)
MSG_INFLATE_BAD_HEADER = "incorrect header check"
MSG_INFLATE_TRUNCATED = "unexpected end of file"

_MEDIA_TYPE = re.compile(r"^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;.*)?$")
_CHARSET = re.compile(r';\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))', re.IGNORECASE)
# iconv-lite decoders for the charsets body-parser's json parser lets through ("utf-*")
_UTF_CODECS = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-16le": "utf-16-le",
               "utf-16be": "utf-16-be", "utf-32le": "utf-32-le", "utf-32be": "utf-32-be",
               "utf-32": "utf-32"}


def media_type(content_type: str | None) -> str | None:
    """The lower-cased type/subtype, or None when the header is absent or does not parse
    (type-is then matches nothing and no parser reads the body)."""
    if not content_type:
        return None
    found = _MEDIA_TYPE.match(content_type)
    return found.group(1).lower() if found else None


def _charset(content_type: str) -> str | None:
    found = _CHARSET.search(content_type)
    if found is None:
        return None
    return (found.group(1) if found.group(1) is not None else found.group(2)).lower()


def _has_body(headers: Mapping[str, str]) -> bool:
    # type-is hasBody: a Transfer-Encoding header, or a Content-Length that is a number
    length = headers.get("content-length")
    return headers.get("transfer-encoding") is not None or (
        length is not None and length.strip().isdigit())


def _inflate(raw: bytes, encoding: str) -> bytes:
    # body-parser's contentstream(): identity, deflate, gzip; the limit counts inflated bytes
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "deflate"):
        raise errors.UnsupportedMediaType(MSG_UNSUPPORTED_ENCODING.format(encoding=encoding))
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, BODY_LIMIT_BYTES + 1)
    except zlib.error:
        raise errors.HttpError(400, MSG_INFLATE_BAD_HEADER) from None
    if len(out) > BODY_LIMIT_BYTES:
        raise errors.PayloadTooLarge()
    if not inflater.eof:
        raise errors.HttpError(400, MSG_INFLATE_TRUNCATED)
    return out


def _read(headers: Mapping[str, str], raw: bytes) -> bytes:
    """raw-body: the declared length is checked first, then the bytes (after inflating)."""
    encoding = (headers.get("content-encoding") or "identity").lower()
    declared = headers.get("content-length")
    if encoding == "identity" and declared is not None and declared.strip().isdigit() \
            and int(declared) > BODY_LIMIT_BYTES:
        raise errors.PayloadTooLarge()
    body = _inflate(raw, encoding)
    if len(body) > BODY_LIMIT_BYTES:
        raise errors.PayloadTooLarge()
    return body


def parse_request_body(headers: Mapping[str, str], raw: bytes) -> Any:
    """req.body as the NestJS controller would see it, or the OpttyError Express answers with."""
    content_type = headers.get("content-type")
    media = media_type(content_type)
    if media not in (JSON_TYPE, FORM_TYPE) or not _has_body(headers):
        return {}
    assert content_type is not None
    charset = _charset(content_type) or "utf-8"
    if media == JSON_TYPE:
        if not charset.startswith("utf-"):
            raise errors.UnsupportedMediaType(
                MSG_UNSUPPORTED_CHARSET.format(charset=charset.upper()))
        body = _read(headers, raw)
        codec = _UTF_CODECS.get(charset)
        if codec is None:
            # raw-body's "specified encoding unsupported", re-worded by body-parser's read()
            raise errors.UnsupportedMediaType(
                MSG_UNSUPPORTED_CHARSET.format(charset=charset.upper()))
        if codec != "utf-8":
            body = body.decode(codec, errors="replace").encode("utf-8", errors="surrogatepass")
        try:
            return parse_json(body)
        except JsonSyntaxError as exc:
            # NestJS's RoutesResolver.mapExternalException: SyntaxError -> BadRequestException
            raise errors.BadRequest(exc.message) from None
    if charset != "utf-8":
        raise errors.UnsupportedMediaType(MSG_UNSUPPORTED_CHARSET.format(charset=charset.upper()))
    text = _read(headers, raw).decode("utf-8", errors="replace")
    if text.count("&") >= PARAMETER_LIMIT:
        raise errors.HttpError(413, MSG_TOO_MANY_PARAMETERS)
    return parse_qs(text)


# ---- qs.parse(body, {allowPrototypes: true, arrayLimit, depth: Infinity}) (body-parser's
# extended urlencoded parser): repeated keys become arrays, `a[b]=1` objects, `a[]=1` arrays.


class _Hole:
    """An unset index of a sparse JS array (qs compacts them away at the end)."""


_HOLE = _Hole()
_BRACKET = re.compile(r"\[[^[\]]*\]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode(text: str) -> str:
    # qs utils.decode: '+' is a space, then decodeURIComponent; a malformed sequence leaves the
    # text as it was (qs catches the URIError)
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    if _BAD_PERCENT.search(text):
        return text
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return text


def _combine(a: Any, b: Any) -> list[Any]:
    return [*(a if isinstance(a, list) else [a]), *(b if isinstance(b, list) else [b])]


def _parse_object(chain: list[str], value: Any, array_limit: int) -> Any:
    leaf = value
    for root in reversed(chain):
        if root == "[]":
            leaf = list(leaf) if isinstance(leaf, list) else [leaf]
            continue
        clean = root[1:-1] if root.startswith("[") and root.endswith("]") else root
        if root != clean and clean.isdigit() and str(int(clean)) == clean \
                and int(clean) <= array_limit:
            index = int(clean)
            leaf = [_HOLE] * index + [leaf]
        elif clean != "__proto__":
            leaf = {clean: leaf}
        else:
            leaf = {}
    return leaf


def _parse_keys(key: str, value: Any, array_limit: int) -> Any:
    # qs parseKeys with depth Infinity: the parent is what precedes the first [...] group, then
    # every [...] group found anywhere after it (text between groups is dropped, as qs does)
    first = _BRACKET.search(key)
    parent = key[: first.start()] if first else key
    chain = [parent] if parent else []
    if first is not None:
        chain.extend(group.group() for group in _BRACKET.finditer(key, first.start()))
    return _parse_object(chain, value, array_limit)


def _merge(target: Any, source: Any) -> Any:
    # qs utils.merge, for the plain values a urlencoded body produces
    if not isinstance(source, dict | list):
        if isinstance(target, list):
            return [*target, source]
        if isinstance(target, dict):
            return {**target, source: True}
        return [target, source]
    if not isinstance(target, dict | list):
        return [target, *source] if isinstance(source, list) else [target, source]
    if isinstance(target, list) and isinstance(source, list):
        merged = list(target)
        for index, item in enumerate(source):
            if item is _HOLE:
                continue
            if index < len(merged) and merged[index] is not _HOLE:
                if isinstance(merged[index], dict | list) and isinstance(item, dict | list):
                    merged[index] = _merge(merged[index], item)
                else:
                    merged.append(item)
            else:
                merged.extend([_HOLE] * (index + 1 - len(merged)))
                merged[index] = item
        return merged
    base = dict(enumerate(target)) if isinstance(target, list) else dict(target)
    base = {str(k): v for k, v in base.items() if v is not _HOLE}
    items = source.items() if isinstance(source, dict) else (
        (str(i), v) for i, v in enumerate(source) if v is not _HOLE)
    for key, value in items:
        base[key] = _merge(base[key], value) if key in base else value
    return base


def _compact(value: Any) -> Any:
    if isinstance(value, list):
        return [_compact(v) for v in value if v is not _HOLE]
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    return value


def parse_qs(text: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    parts = text.split("&")
    for part in parts:
        bracket_equals = part.find("]=")
        position = part.find("=") if bracket_equals == -1 else bracket_equals + 1
        if position == -1:
            key, value = _decode(part), ""
        else:
            key, value = _decode(part[:position]), _decode(part[position + 1:])
        if key in pairs:
            pairs[key] = _combine(pairs[key], value)
        else:
            pairs[key] = value
    array_limit = max(100, len(parts))
    result: Any = {}
    for key, value in pairs.items():
        if not key:
            continue
        result = _merge(result, _parse_keys(key, value, array_limit))
    compacted = _compact(result)
    return compacted if isinstance(compacted, dict) else {}
