"""The dashboard under /__admin/ui/: server-rendered pages over the journal and the admin API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.responses import Response

from mock_server.core.clock import iso_millis
from mock_server.core.http import Context
from mock_server.core.journal import JournalEntry
from mock_server.core.world import Session

if TYPE_CHECKING:
    from mock_server.core.host import Host

_HERE = Path(__file__).parent
UI_PREFIX = "/__admin/ui/"
JOURNAL_ROWS = 100  # the newest entries a session page shows; live ones are added above them
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml"}
# Everything the page loads comes from the sandbox itself, and it talks to nobody else: the
# browser refuses any other origin (and says so in its console, which the browser tests read).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self'; connect-src 'self'; form-action 'self'; "
                           "base-uri 'none'; frame-ancestors 'none'")
_PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                 "Cache-Control": "no-store"}


def _assets() -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    for path in (_HERE / "static").iterdir():
        kind = _ASSET_TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            found[path.name] = (path.read_bytes(), kind)
    return found


def pretty_body(text: str) -> str:
    """A JSON body indented for reading; anything else as it came."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    return text


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max((now - moment).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} days ago"


class Dashboard:
    """Renders the pages; the admin API (AdminApp) routes to it and checks the token."""

    def __init__(self, app: Host) -> None:
        self.app = app
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters["pretty"] = pretty_body
        self.assets = _assets()

    # -- where the page is -------------------------------------------------------------------

    @staticmethod
    def _roots(ctx: Context) -> tuple[str, str]:
        """Relative links from this page to the UI of its session and to the server's root:
        right under the session prefix (/sessions/<name>/__admin/ui/) and under any host that
        mounts the sandbox at a sub-path alike."""
        tail = ctx.path[len(UI_PREFIX):] if ctx.path.startswith(UI_PREFIX) else ""
        ui_root = "../" * tail.count("/") or "./"
        raw = ctx.state.get("raw_path")
        sent = raw.decode("latin-1") if isinstance(raw, bytes) else ctx.path
        return ui_root, "../" * (sent.count("/") - 1)

    def _page(self, ctx: Context, template: str, status: int = 200, **values: Any) -> Response:
        ui_root, site_root = self._roots(ctx)
        html = self.env.get_template(template).render(
            ui_root=ui_root, site_root=site_root, session=ctx.session.name,
            token_required=bool(ctx.settings.admin_token), **values)
        return Response(html.encode(), status, headers=dict(_PAGE_HEADERS),
                        media_type="text/html; charset=utf-8")

    def locked(self, ctx: Context, view: str) -> Response:
        """Asked for the token: the page, with no data, and the form that asks for it."""
        return self._page(ctx, "locked.html", 401, view=view, title="Admin token required",
                          locked=True)

    # -- pages ---------------------------------------------------------------------------------

    def home(self, ctx: Context) -> Response:
        now = datetime.now(UTC)
        rows = []
        for session in sorted(self.app.world.sessions(), key=lambda s: s.name):
            accounts = self.accounts(session)
            last_used: datetime | None = getattr(session, "last_used", None)
            rows.append({
                "name": session.name,
                "last_used": iso_millis(last_used) if last_used else None,
                "last_used_ago": _ago(last_used, now) if last_used else None,
                "payments": sum(1 for a in accounts if a["kind"] == "payment"),
                "orders": sum(1 for a in accounts if a["kind"] == "order"),
                "refunds": sum(len(a["refunds"]) for a in accounts),
                "entries": len(session.journal),
            })
        return self._page(ctx, "home.html", view="home", title="Sessions", locked=False,
                          sessions=rows)

    def session_view(self, ctx: Context) -> Response:
        session = ctx.session
        total, entries = session.journal.query(limit=JOURNAL_ROWS)
        clock = session.clock
        faults = [{"scenario": loaded.scenario.name, **rule.to_json()}
                  for loaded in session.scenarios for rule in loaded.faults]
        return self._page(
            ctx, "session.html", view="session", title=f"Session {session.name}", locked=False,
            accounts=self.accounts(session), entries=[self._row(e) for e in entries],
            total=total, newest=entries[0].id if entries else 0,
            clock={"now": iso_millis(clock.now()), "frozen": clock.frozen,
                   "offset": round(clock.offset.total_seconds(), 3)},
            faults=faults, scenarios=[s.scenario.name for s in session.scenarios])

    def entry(self, ctx: Context) -> Response:
        raw = ctx.params.get("id", "")
        wanted = int(raw) if raw.isdigit() else 0
        found = ctx.session.journal.get(wanted) if wanted else None
        if found is None:
            return self._page(ctx, "entry.html", 404, view="entry", locked=False,
                              title=f"Entry {raw} not found", entry=None, wanted=raw)
        return self._page(ctx, "entry.html", view="entry", locked=False,
                          title=f"Entry {found.id}", entry=found.to_json(), wanted=raw)

    def asset(self, name: str) -> Response | None:
        found = self.assets.get(name)
        if found is None:
            return None
        body, kind = found
        return Response(body, headers={"Cache-Control": "no-cache",
                                       "X-Content-Type-Options": "nosniff"}, media_type=kind)

    # -- what the pages show -----------------------------------------------------------------

    def accounts(self, session: Session) -> list[dict[str, Any]]:
        """Every provider's payments/orders (a provider lists them with dashboard(session))."""
        rows: list[dict[str, Any]] = []
        for model in self.app.world.providers:
            listing = getattr(model, "dashboard", None)
            if callable(listing):
                rows.extend(listing(session))
        return rows

    @staticmethod
    def _row(entry: JournalEntry) -> dict[str, Any]:
        return {"id": entry.id, "at": iso_millis(entry.at), "kind": entry.kind,
                "provider": entry.provider, "method": entry.method, "path": entry.path,
                "query": entry.query, "operation": entry.operation, "status": entry.status,
                "durationMs": round(entry.duration_ms, 3),
                "fault": entry.fault.get("rule") if entry.fault else None}
