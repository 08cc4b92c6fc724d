"""Fetching feed bytes with the limits every poll needs (RELIABILITY.md B4, B6, P01–P04).

aiohttp has no body cap, decodes gzip without a size limit, and follows redirects to
anywhere, so this module does those parts itself:

* one total deadline over the whole fetch (every hop, a slow-drip body, decoding);
* a wire-byte cap (``Content-Length`` refused before reading, the stream stopped at the cap)
  and a decoded-byte cap (gzip/deflate inflated here with ``max_length``, so a 1 GiB bomb
  costs at most the cap), with at most one ``Content-Encoding`` layer;
* redirects followed by hand. The operator's configured URL is trusted as written; every
  redirect target must be http(s) and resolve only to public addresses (unless
  ``allow_private``), and the connection goes to the very IP that was checked — the URL is
  rewritten to that IP with the ``Host`` header and TLS ``server_hostname`` kept — so DNS
  rebinding between the check and the connect cannot move it.

Errors are :class:`~monitor.errors.SourceError` (network, HTTP status) or
:class:`~monitor.errors.FetchRejected` (a limit or a policy), and their text never carries
userinfo or secret query values.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import os
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.request import url2pathname

import aiohttp
from yarl import URL

from monitor.errors import FetchRejected, SourceError
from monitor.sources.decode import make_decoder
from monitor.sources.urlpolicy import (
    SECRET_QUERY_KEYS,
    address_allowed,
    redact_url,
    scrub,
    system_resolve,
)

MiB = 1024 * 1024
CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_4XX = frozenset({408, 429})
USER_AGENT = "monitor/0.1 (+media monitoring; feed poller)"

Resolve = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class FetchLimits:
    """Per-fetch budgets (RELIABILITY.md §3 defaults). Seconds and bytes."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_deadline: float = 30.0
    max_wire_bytes: int = 10 * MiB
    max_decoded_bytes: int = 10 * MiB
    max_redirects: int = 5
    allow_private: bool = False


@dataclass(frozen=True)
class FetchResult:
    """A complete response. ``headers`` keys are lower-case (what feedparser expects);
    ``url`` is the final URL after redirects; ``body`` is decoded (no Content-Encoding)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


# --- redaction -------------------------------------------------------------------------



__all__ = ["SECRET_QUERY_KEYS", "FetchLimits", "FetchResult", "Fetcher", "MiB",
           "address_allowed", "redact_url", "scrub", "system_resolve"]


# --- the fetcher --------------------------------------------------------------------------


class Fetcher:
    """Owns one aiohttp session for the process; every poll calls :meth:`fetch`.

    Example::

        async with Fetcher() as fetcher:
            result = await fetcher.fetch("https://example.org/feed.xml")
            again = await fetcher.fetch(result.url, etag=result.etag)   # 304 -> not_modified

    ``resolve`` replaces DNS (tests inject a rebinding resolver through it); ``ssl_context``
    replaces the system trust store (tests trust their own certificate through it).
    """

    def __init__(
        self,
        *,
        limit: int = 100,
        limit_per_host: int = 4,
        user_agent: str = USER_AGENT,
        resolve: Resolve | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limit, self._limit_per_host = limit, limit_per_host
        self._user_agent = user_agent
        self._resolve = resolve or system_resolve
        self._ssl: ssl.SSLContext | bool = ssl_context or True
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, ssl=self._ssl
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # no state shared between feeds
            trust_env=False,
            headers={"User-Agent": self._user_agent},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        limits: FetchLimits | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally, when ``etag``/``last_modified`` are given).

        Raises:
            FetchRejected: a limit or policy refused the response (``reason`` says which).
            SourceError: network error, timeout or HTTP error status; ``retryable`` is False
                for 4xx other than 408/429.
        """
        limits = limits or FetchLimits()
        timeout = asyncio.timeout(limits.total_deadline)
        try:
            async with timeout:
                return await self._follow(url, etag, last_modified, limits)
        except TimeoutError as exc:
            if timeout.expired():
                raise FetchRejected(
                    "deadline",
                    f"{redact_url(url)}: no complete response within {limits.total_deadline:g}s",
                ) from exc
            raise SourceError(f"{redact_url(url)}: timed out ({exc or 'read timeout'})") from exc

    async def _follow(
        self, url: str, etag: str | None, last_modified: str | None, limits: FetchLimits
    ) -> FetchResult:
        current, trusted = url, True
        for _hop in range(limits.max_redirects + 1):
            target = _parse_url(current, url)
            if target.scheme == "file" and trusted:
                return await _read_file(target, current, last_modified, limits)
            if target.scheme not in ("http", "https"):
                raise FetchRejected(
                    "scheme",
                    f"{redact_url(url)}: refused {target.scheme or 'relative'}: URL "
                    f"{redact_url(current)} (only http and https are fetched)",
                )
            location = await self._get(target, trusted, etag, last_modified, limits)
            if isinstance(location, FetchResult):
                return location
            current, trusted = location, False
        raise FetchRejected(
            "too_many_redirects", f"{redact_url(url)}: more than {limits.max_redirects} redirects"
        )

    async def _get(
        self,
        target: URL,
        trusted: bool,
        etag: str | None,
        last_modified: str | None,
        limits: FetchLimits,
    ) -> FetchResult | str:
        """One hop: a final result, or the absolute URL a redirect points to."""
        resp = await self._connect(target, trusted, _conditional(etag, last_modified), limits)
        try:
            shown = str(target)
            if resp.status in REDIRECT_STATUSES:
                return _redirect_target(resp, target)
            if resp.status == 304:
                return _not_modified(resp, shown, etag, last_modified)
            if resp.status >= 300:
                raise _status_error(resp.status, shown)
            body = await _read_body(resp, shown, limits)
            return FetchResult(
                status=resp.status,
                body=body,
                headers=_lower_headers(resp),
                url=shown,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise _network_error(exc, str(target)) from exc
        finally:
            resp.close()

    async def _connect(
        self, target: URL, trusted: bool, headers: dict[str, str], limits: FetchLimits
    ) -> aiohttp.ClientResponse:
        """Resolve, apply the address policy, and connect to a checked IP (pinned)."""
        shown = str(target)
        host = target.raw_host or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        addresses = await self._addresses(host, port, shown)
        if not trusted and not limits.allow_private:
            public = [a for a in addresses if address_allowed(a)]
            if not public:
                raise FetchRejected(
                    "blocked_address",
                    f"redirect to {redact_url(shown)} refused: {', '.join(addresses)} "
                    "is not a public address (fetch.allow_private is off)",
                )
            addresses = public
        if not trusted:
            target = target.with_user(None)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
        )
        last_error: BaseException | None = None
        for ip in addresses:
            try:
                return await self._request(target, ip, host, headers, timeout)
            except (aiohttp.ClientConnectorError, ConnectionError) as exc:
                last_error = exc  # try the next address, as a browser would
            except (aiohttp.ClientError, OSError) as exc:
                raise _network_error(exc, shown) from exc
        assert last_error is not None
        raise _network_error(last_error, shown) from last_error

    async def _addresses(self, host: str, port: int, shown: str) -> list[str]:
        if not host:
            raise FetchRejected("scheme", f"{redact_url(shown)}: no host")
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise SourceError(f"{redact_url(shown)}: cannot resolve host: {exc}") from exc
        if not addresses:
            raise SourceError(f"{redact_url(shown)}: host has no addresses")
        return addresses

    async def _request(
        self,
        target: URL,
        ip: str,
        host: str,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        if self._session is None:
            raise RuntimeError("use Fetcher as an async context manager")
        default_port = target.port == (443 if target.scheme == "https" else 80)
        host_header = f"[{host}]" if ":" in host else host
        if target.port and not default_port:
            host_header += f":{target.port}"
        tls_name = host if target.scheme == "https" and not _is_ip(host) else None
        return await self._session.get(
            target.with_host(ip),
            headers={**headers, "Host": host_header},
            allow_redirects=False,
            timeout=timeout,
            server_hostname=tls_name,
        )


# --- helpers for one hop -------------------------------------------------------------------


def _parse_url(url: str, configured: str) -> URL:
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{redact_url(configured)}: invalid URL", retryable=False) from exc


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _conditional(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _lower_headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    names = {name.lower() for name in resp.headers}
    return {name: ", ".join(resp.headers.getall(name)) for name in names}


def _redirect_target(resp: aiohttp.ClientResponse, current: URL) -> str:
    location = resp.headers.get("Location")
    if not location:
        raise SourceError(f"{redact_url(str(current))}: HTTP {resp.status} without Location")
    try:
        return str(current.join(URL(location)))
    except (ValueError, TypeError) as exc:
        raise FetchRejected(
            "scheme", f"{redact_url(str(current))}: unusable redirect target"
        ) from exc


def _not_modified(
    resp: aiohttp.ClientResponse, url: str, etag: str | None, last_modified: str | None
) -> FetchResult:
    return FetchResult(
        status=304,
        body=b"",
        headers=_lower_headers(resp),
        url=url,
        etag=resp.headers.get("ETag") or etag,
        last_modified=resp.headers.get("Last-Modified") or last_modified,
        not_modified=True,
    )


def _status_error(status: int, url: str) -> FetchRejected:
    retryable = status >= 500 or status in RETRYABLE_4XX
    return FetchRejected("http_status", f"{redact_url(url)}: HTTP {status}", retryable=retryable)


def _network_error(exc: BaseException, url: str) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    detail = scrub(f"{type(exc).__name__}: {exc}", url)
    return SourceError(f"{redact_url(url)}: {detail}")


async def _read_body(resp: aiohttp.ClientResponse, url: str, limits: FetchLimits) -> bytes:
    """Stream the body under both caps; refuse an oversized Content-Length unread."""
    cap = limits.max_decoded_bytes
    if resp.content_length is not None and resp.content_length > limits.max_wire_bytes:
        raise FetchRejected(
            "max_bytes",
            f"{redact_url(url)}: Content-Length {resp.content_length} over {limits.max_wire_bytes}",
        )
    decoder = make_decoder(resp.headers.getall("Content-Encoding", []), url)
    wire, body = 0, bytearray()
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            wire += len(chunk)
            if wire > limits.max_wire_bytes:
                raise FetchRejected("max_bytes", f"{redact_url(url)}: over {wire - 1} wire bytes")
            body += decoder.decode(chunk, cap - len(body) + 1)
            if len(body) > cap:
                raise FetchRejected("max_bytes", f"{redact_url(url)}: decodes past {cap} bytes")
    except zlib.error as exc:
        raise FetchRejected("encoding", f"{redact_url(url)}: corrupt compressed body") from exc
    return bytes(body)


# --- file:// -------------------------------------------------------------------------------


async def _read_file(
    target: URL, shown: str, last_modified: str | None, limits: FetchLimits
) -> FetchResult:
    """An operator-configured local feed: same byte cap, read in a thread."""
    if target.host not in (None, "", "localhost"):
        raise FetchRejected("scheme", f"{redact_url(shown)}: file:// URLs must be local")
    path = url2pathname(target.path)
    body, mtime = await asyncio.to_thread(_read_capped, path, limits.max_decoded_bytes, shown)
    stamp = email.utils.formatdate(mtime, usegmt=True)
    if last_modified == stamp:
        return FetchResult(304, b"", {}, shown, None, stamp, not_modified=True)
    return FetchResult(200, body, {}, shown, None, stamp)


def _read_capped(path: str, cap: int, shown: str) -> tuple[bytes, float]:
    try:
        with open(path, "rb") as handle:
            mtime = os.fstat(handle.fileno()).st_mtime
            body = handle.read(cap + 1)
    except OSError as exc:
        raise SourceError(
            f"{redact_url(shown)}: cannot read local feed: {exc.strerror}", retryable=False
        ) from exc
    if len(body) > cap:
        raise FetchRejected("max_bytes", f"{redact_url(shown)}: local file over {cap} bytes")
    return body, mtime


@dataclass(frozen=True)
class SourceParser:
    """What every parser of a fetched body carries: the source it reads for and how its
    errors name it (``where``: source and URL, credentials redacted)."""

    name: str
    url: str

    @property
    def where(self) -> str:
        return f"source={self.name} url={redact_url(self.url)}"
