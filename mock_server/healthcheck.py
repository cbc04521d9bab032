"""`python -m mock_server.healthcheck [URL]`: exit 0 when the sandbox answers its health probe.

The container's HEALTHCHECK uses it, so the image needs no curl. URL is the probe's own URL or
the sandbox's base URL (http://HOST:PORT); a failed check says why on stderr."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

HEALTH_PATH = "/__admin/health"


def health_url(given: str) -> str:
    """The probe's URL: a base URL (http://HOST:PORT, or with a path prefix such as
    /sessions/x) gets /__admin/health added."""
    parts = urlsplit(given)
    if parts.path.rstrip("/").endswith(HEALTH_PATH):
        return given
    return given.rstrip("/") + HEALTH_PATH


def check(url: str, timeout: float = 2.0) -> str | None:
    """None when the probe answers 200 {"status":"ok"}; else why not, in one line."""
    # loopback probe: an HTTP(S)_PROXY in the environment must not catch it
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            status, raw = answer.status, answer.read(65536)
    except urllib.error.HTTPError as err:
        return f"{url} answered {err.code} {err.reason}"
    except urllib.error.URLError as err:
        return f"no answer from {url}: {getattr(err.reason, 'strerror', None) or err.reason}"
    except (OSError, ValueError) as err:
        return f"no answer from {url}: {err}"
    try:
        body = json.loads(raw)
    except ValueError:
        return f"{url} answered {status} but not with JSON (is it a sandbox?)"
    if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        return f"{url} answered {status} {json.dumps(body)[:200]}"
    return None


def probe(url: str, timeout: float = 2.0) -> bool:
    return check(health_url(url), timeout) is None


def main() -> int:
    port = os.environ.get("MOCK_SERVER_PORT", "8080")
    given = sys.argv[1] if len(sys.argv) > 1 else f"http://127.0.0.1:{port}"
    if urlsplit(given).scheme not in ("http", "https"):
        sys.stderr.write(f"healthcheck: {given!r} is not an http:// URL\n")
        return 1
    why = check(health_url(given))
    if why is not None:
        sys.stderr.write(f"healthcheck: {why}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
