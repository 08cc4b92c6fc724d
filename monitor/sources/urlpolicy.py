"""Which addresses a fetch may reach, and how URLs appear in logs: secrets never do.

Kept apart from the fetcher so the policy can be read (and tested) on its own: it is the
part of monitor that stands between a hostile redirect and the operator's network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

SECRET_QUERY_KEYS = frozenset(
    {
        "key", "apikey", "api_key", "api-key", "token", "access_token", "auth", "secret",
        "client_secret", "sig", "signature", "password", "passwd", "pwd", "session",
    }
)  # fmt: skip


def redact_url(url: str) -> str:
    """``url`` safe for logs and error text: userinfo and secret query values become ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = "&".join(
            f"{k}=***" if k.lower() in SECRET_QUERY_KEYS else (f"{k}={v}" if v else k)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparseable url>"


def _secrets_in(url: str) -> list[str]:
    """The literal secret strings of ``url`` (raw and unquoted), longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password or "", parts.username or "", parts.netloc.rpartition("@")[0]]
    for raw in parts.query.split("&"):
        key, _, value = raw.partition("=")
        if unquote(key).lower() in SECRET_QUERY_KEYS:
            found += [value, unquote(value)]
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def scrub(text: str, *urls: str) -> str:
    """Remove every secret of ``urls`` from ``text`` (third-party messages echo URLs)."""
    for url in urls:
        for secret in _secrets_in(url):
            text = text.replace(secret, "***")
    return text


# --- address policy ----------------------------------------------------------------------


def address_allowed(ip: str) -> bool:
    """True for a public unicast address. Loopback, private, link-local, unspecified,
    multicast, reserved and shared (CGNAT) space are refused, including IPv4 hidden in
    IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo or (None, None))[1]
        if embedded is not None and not address_allowed(str(embedded)):
            return False
    bad = (
        addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_unspecified
        or addr.is_multicast or addr.is_reserved or not addr.is_global
    )  # fmt: skip
    return not bad


async def system_resolve(host: str, port: int) -> list[str]:
    """All addresses of ``host`` in the resolver's order (numeric forms like 2130706434
    come back canonical, so the policy sees the real address)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
