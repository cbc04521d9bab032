"""The shopper's pages under `/__portal/<provider>/...`: one app serves every provider's pages.

Each provider hands it a page set (its OpenAPI paths and the handlers of their operations); the
portal routes them, journals them as provider `portal` (fault rules aimed at a provider's API
never match a page) and answers what no page handles (unknown page, wrong method, too large) as
plain HTML, since a browser is reading. The session is in the path (`/sessions/<s>/__portal/...`):
a browser sends no X-Sandbox-Session header."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Protocol

from starlette.responses import Response

from mock_server.core.http import Answer, Context, Handler, Problem, answer, crashed
from mock_server.core.openapi import Spec

PREFIX = "/__portal"
HTML = b"text/html; charset=utf-8"
# the pages are for a browser in a sandbox: nothing cached, nothing loaded from elsewhere, no
# framing by other sites; a form may post back to the merchant's own pages (form-action *)
_PAGE_HEADERS = ((b"cache-control", b"no-store"), (b"x-frame-options", b"DENY"),
                 (b"content-security-policy",
                  b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                  b"form-action *; base-uri 'none'; frame-ancestors 'none'"))


class PageSet(Protocol):
    """What a provider hands the portal: OpenAPI paths under PREFIX and their handlers."""

    paths: Mapping[str, Any]
    handlers: Mapping[str, Handler]


def page(title: str, body: str, status: int = 200) -> Answer:
    """A whole page; `body` is HTML the caller has escaped."""
    text = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # no icon to fetch: a browser would otherwise ask the sandbox for /favicon.ico
        "<link rel=\"icon\" href=\"data:,\">"
        "<style>body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{text-align:left;padding:.2em 1em .2em 0}"
        "form{display:inline-block}button{margin:.3em .3em 0 0;padding:.5em 1em}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>\n")
    return answer(text.encode("utf-8"), status, HTML, *_PAGE_HEADERS)


def redirect(location: str) -> Answer:
    """303 See Other to `location` (the merchant's URL), as the real pages send the shopper."""
    return Answer(b"", 303, [(b"location", location.encode("latin-1", "replace")),
                             (b"cache-control", b"no-store"), (b"content-length", b"0")])


class PortalApp:
    """A provider app of its own, named `portal` (journal, access log, metrics)."""

    name = "portal"

    def __init__(self, pages: Sequence[PageSet]) -> None:
        paths: dict[str, Any] = {}
        self.handlers: dict[str, Handler] = {}
        for pages_of in pages:
            for path in pages_of.paths:
                if not path.startswith(PREFIX + "/") or path in paths:
                    raise ValueError(f"portal page {path!r}: not under {PREFIX}/, or taken")
            paths.update(pages_of.paths)
            self.handlers.update(pages_of.handlers)
        self.spec = Spec(self.name, {"openapi": "3.0.3",
                                     "info": {"title": "Shopper pages (sandbox)", "version": "1"},
                                     "paths": paths})
        missing = set(self.spec.operations) ^ set(self.handlers)
        if missing:
            raise ValueError(f"portal pages and handlers disagree on {sorted(missing)}")

    def owns(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind == Problem.METHOD_NOT_ALLOWED:
            response = page("Method not allowed", "<p>Use the page's buttons.</p>", 405)
            response.raw_headers.insert(0, (b"allow", ", ".join(problem.allow).encode()))
            return response
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return page("Payload too large", "<p>The form is too large.</p>", 413)
        if problem.kind == Problem.HEADERS_TOO_LARGE:
            return page("Request header fields too large", f"<p>{escape(problem.detail)}</p>",
                        431)
        if problem.kind == Problem.BAD_SESSION:
            return page("Bad request", f"<p>{escape(problem.detail)}</p>", 400)
        if problem.kind == Problem.ROUTE_NOT_FOUND:
            return not_found()
        return page("Internal error", "<p>The sandbox failed; see its log.</p>", 500)

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return page("Error", f"<p>{escape(code)}</p>", status or 500)

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        """The pages answer their own refusals; anything raised is a crash (a 500 page)."""
        return crashed(self, ctx, exc)


def not_found(what: str = "No such page: the link is wrong, or what it shows belongs to "
                          "another session.") -> Answer:
    return page("Not found", f"<p>{escape(what)}</p>", 404)
