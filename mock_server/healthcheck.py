"""`python -m mock_server.healthcheck`: exit 0 when the local sandbox answers its health probe.

The container's HEALTHCHECK uses it, so the image needs no curl."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - local URL
            return bool(answer.status == 200 and json.load(answer).get("status") == "ok")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    port = os.environ.get("MOCK_SERVER_PORT", "8080")
    url = sys.argv[1] if len(sys.argv) > 1 else f"http://127.0.0.1:{port}/__admin/health"
    return 0 if probe(url) else 1


if __name__ == "__main__":
    raise SystemExit(main())
