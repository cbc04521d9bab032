"""Where the sandbox may send requests of its own (a provider's callbacks): never to its own
admin API, never with credentials in the URL, only to the networks --webhook-allow names."""

from __future__ import annotations

import asyncio
import ipaddress
import posixpath
import socket
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

ANY = "any"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NO_CREDENTIALS = "a webhookUrl must not carry credentials (user:password@)"
NOT_ADMIN = "a webhookUrl must not point at an admin path (/__admin)"
NOT_HTTP = "a webhookUrl must be an http or https URL with a host"
OUTSIDE = "{host} ({address}) is outside the networks callbacks may reach (--webhook-allow {allow})"
UNRESOLVED = "{host} does not resolve: {why}"


def parse_networks(text: str) -> tuple[str, ...]:
    """`any`, or networks in CIDR form (a bare address is one host), comma-separated."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("give networks in CIDR form (e.g. 10.0.0.0/8), comma-separated, or any")
    if any(item.lower() == ANY for item in items):
        if len(items) > 1:
            raise ValueError("'any' allows every address; give it alone")
        return (ANY,)
    found: list[str] = []
    for item in items:
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not a network (e.g. 10.0.0.0/8 or 127.0.0.1)") from None
    return tuple(found)


def _networks(allow: Sequence[str]) -> list[Network] | None:
    if ANY in allow:
        return None
    return [ipaddress.ip_network(item, strict=False) for item in allow]


def is_admin_path(path: str) -> bool:
    """Whether a path reaches the sandbox's admin API, directly or under /sessions/<name>/,
    however it is encoded (percent-escapes, dot segments, doubled slashes, letter case)."""
    text = path
    for _ in range(3):  # %255F... decodes to %5F..., then to _
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = text.replace("\\", "/")
    normal = posixpath.normpath("/" + text).lower()
    parts = [part for part in normal.split("/") if part]
    if parts[:1] == ["__admin"]:
        return True
    return len(parts) >= 3 and parts[0] == "sessions" and parts[2] == "__admin"


def url_problem(url: str) -> str | None:
    """What is wrong with a callback URL on its face (no name is resolved); None if nothing."""
    if "\\" in url or any(char.isspace() or ord(char) < 0x20 for char in url):
        return NOT_HTTP  # browsers and some clients read a backslash as a slash
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return NOT_HTTP
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return NOT_HTTP
    if "@" in parts.netloc:
        return NO_CREDENTIALS
    if is_admin_path(parts.path):
        return NOT_ADMIN
    return None


def address_problem(host: str, address: str, allow: Sequence[str]) -> str | None:
    networks = _networks(allow)
    if networks is None:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return OUTSIDE.format(host=host, address=address, allow=",".join(allow))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in networks):
        return None
    return OUTSIDE.format(host=host, address=address, allow=",".join(allow))


def literal_problem(url: str, allow: Sequence[str]) -> str | None:
    """url_problem, and for a host written as an address, whether it is allowed (a scenario is
    checked with this when it is loaded; names are resolved when a callback is sent)."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return address_problem(host, host, allow)


async def target_problem(url: str, allow: Sequence[str]) -> str | None:
    """Everything that keeps a callback from going to `url`: its form, and every address its
    host resolves to (each must be in --webhook-allow)."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _networks(allow) is None:
        return None
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        addresses = [host]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or (443 if parts.scheme.lower() == "https" else 80),
                type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return UNRESOLVED.format(host=host, why=getattr(exc, "strerror", None) or exc)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        problem = address_problem(host, address, allow)
        if problem is not None:
            return problem
    return None
