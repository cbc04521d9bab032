"""Point: request heads are bounded. A header line over --max-header-field-bytes, or a head over
--max-header-bytes, is answered 431 in the owning provider's shape before anything is stored; on
a real server the head is refused as soon as it passes the limit, not once it has all arrived."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.limits import FIELD_TOO_LARGE, HEAD_TOO_LARGE
from mock_server.settings import Settings

from .threaded import Served, read_all, split_reply

SHAPES = {
    "/ping": ("afterpay", lambda b: b["errorCode"] == "request_header_fields_too_large"
              and b["httpStatusCode"] == 431),
    "/orders/o-1": ("optty", lambda b: b == {"statusCode": 431,
                                             "message": "Request Header Fields Too Large"}),
    "/__admin/requests": ("admin", lambda b: b["error"] == "headers_too_large"),
}


@pytest.mark.parametrize("path", list(SHAPES))
def test_one_header_line_over_the_field_limit_is_431_in_the_provider_shape(path: str) -> None:
    app = create_app(Settings(seed=1))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(path, headers={"X-Sandbox-Session": "big",
                                           "X-Big": "a" * 8192})
    assert answer.status_code == 431
    assert SHAPES[path][1](answer.json()), answer.text
    if path.startswith("/__admin"):
        assert answer.json()["message"] == FIELD_TOO_LARGE.format(limit=8192)
    # nothing stored: no session made for it, nothing journaled anywhere
    assert [s.name for s in app.world.sessions()] == ["default"]
    assert len(app.world.session("default").journal) == 0


def test_many_lines_within_the_field_limit_over_the_total_are_431() -> None:
    app = create_app(Settings(seed=1, max_header_bytes=16 * 1024))
    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.get("/__admin/health", headers={f"X-{i}": "a" * 4000 for i in range(3)})
        big = client.get("/__admin/health", headers={f"X-{i}": "a" * 4000 for i in range(5)})
    assert ok.status_code == 200
    assert big.status_code == 431
    assert big.json() == {"error": "headers_too_large",
                          "message": HEAD_TOO_LARGE.format(limit=16 * 1024)}


def test_a_head_that_never_ends_is_answered_once_past_the_limit(
        threaded_server: Callable[..., Served]) -> None:
    served = threaded_server()
    # 1 MiB of one header and no end of the head: a server that read heads whole would wait
    # for more; this one answers after 64 KiB
    with served.connect() as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024))
        status, headers, body = split_reply(read_all(sock))
    assert status == 431
    assert headers["connection"] == "close"
    assert json.loads(body)["errorCode"] == "request_header_fields_too_large"
    assert len(served.app.world.session("default").journal) == 0


def test_a_huge_header_on_a_real_server_is_refused_and_never_journaled(
        threaded_server: Callable[..., Served]) -> None:
    served = threaded_server()
    reply = served.exchange(b"POST /sessions/h/orders/o-1/refund HTTP/1.1\r\nHost: x\r\n"
                            b"X-Big: " + b"a" * (16 * 1024 * 1024) + b"\r\n\r\n")
    status, _headers, body = split_reply(reply)
    assert status == 431
    assert json.loads(body) == {"statusCode": 431, "message": "Request Header Fields Too Large"}
    assert [s.name for s in served.app.world.sessions()] == ["default"]


def test_a_long_url_counts_towards_the_head(threaded_server: Callable[..., Served]) -> None:
    served = threaded_server(Settings(seed=5, max_header_bytes=8 * 1024))
    reply = served.exchange(b"GET /__admin/requests?x=" + b"a" * (64 * 1024) + b" HTTP/1.1\r\n"
                            b"Host: x\r\n\r\n")
    status, _headers, body = split_reply(reply)
    assert status == 431
    assert json.loads(body)["error"] == "headers_too_large"


def test_a_large_body_after_a_head_near_the_limit_is_not_taken_for_head(
        threaded_server: Callable[..., Served]) -> None:
    # head and body arrive together: only what is head is counted against the head's limit
    served = threaded_server(Settings(seed=5, max_header_bytes=16 * 1024))
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(3))
    body = b"x" * (512 * 1024)
    request = (b"POST /__admin/requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers
               + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    status, _headers, answer = split_reply(served.exchange(request))
    assert status == 405, answer  # the route's own answer: the head was accepted


def test_keep_alive_requests_each_get_their_own_head_budget(
        threaded_server: Callable[..., Served]) -> None:
    served = threaded_server(Settings(seed=5, max_header_bytes=16 * 1024))
    one = b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 7000 + b"\r\n\r\n"
    last = one.replace(b"Host: x", b"Host: x\r\nConnection: close")
    reply = served.exchange(one * 5 + last)
    assert reply.count(b"HTTP/1.1 200 OK") == 6
