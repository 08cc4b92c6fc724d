"""The fetch layer against a real loopback FeedStub: caps, deadlines, redirects, policy.

RELIABILITY.md P01 (bombs), P02 (huge bodies), P03 (slow and dead peers), P04 (SSRF), plus
conditional GET, status mapping and redaction. Limits are lowered (3 s deadline) so the
suite stays fast; the behaviour under the default limits is the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from monitor.errors import FetchRejected, SourceError
from monitor.sources import fetch as fetch_module
from monitor.sources.fetch import (
    Fetcher,
    FetchLimits,
    FetchResult,
    MiB,
    address_allowed,
    redact_url,
)
from tests.harness.feed_fixtures import TlsStub
from tests.harness.feedstub import CanaryServer, FeedStub

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")
FAST = FetchLimits(connect_timeout=2, read_timeout=2, total_deadline=3)
LOOPBACK_OK = FetchLimits(connect_timeout=2, read_timeout=2, total_deadline=3, allow_private=True)
RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def fetch(url: str, limits: FetchLimits = FAST, **kwargs: Any) -> FetchResult:
    async with Fetcher(**kwargs) as fetcher:
        return await fetcher.fetch(url, limits=limits)


def rejected(url: str, limits: FetchLimits = FAST, **kwargs: Any) -> FetchRejected:
    with pytest.raises(FetchRejected) as info:
        run(fetch(url, limits, **kwargs))
    return info.value


class PeakRss:
    """Samples this process's RSS every 5 ms; ``growth`` is peak minus the starting value."""

    def __enter__(self) -> PeakRss:
        self._proc = psutil.Process()
        self.base: int = self._proc.memory_info().rss
        self.peak: int = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.base


# --- normal responses ----------------------------------------------------------------------


def test_fetch_returns_body_and_lowercased_headers(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", RSS, "application/rss+xml; charset=utf-8")
    result = run(fetch(url))
    assert result.status == 200
    assert result.body == RSS
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert all(name == name.lower() for name in result.headers)
    assert result.etag and result.last_modified and not result.not_modified


def test_second_fetch_is_conditional_and_gets_not_modified(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", RSS)

    async def twice() -> tuple[FetchResult, FetchResult]:
        async with Fetcher() as fetcher:
            first = await fetcher.fetch(url, limits=FAST)
            return first, await fetcher.fetch(url, first.etag, first.last_modified, FAST)

    first, second = run(twice())
    sent = feed_stub.requests_for("/feed")[-1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified
    assert second.not_modified and second.status == 304 and second.body == b""
    assert second.etag == first.etag


def test_identity_gzip_body_is_decoded(feed_stub: FeedStub) -> None:
    import gzip

    feed_stub.route(
        "/gz",
        lambda h: h.send_bytes(200, gzip.compress(RSS), "text/xml", **{"Content-Encoding": "gzip"}),
    )
    assert run(fetch(feed_stub.url("/gz"))).body == RSS


def test_raw_deflate_body_is_decoded(feed_stub: FeedStub) -> None:
    import zlib

    comp = zlib.compressobj(wbits=-15)
    raw = comp.compress(RSS) + comp.flush()
    feed_stub.route(
        "/raw", lambda h: h.send_bytes(200, raw, "text/xml", **{"Content-Encoding": "deflate"})
    )
    assert run(fetch(feed_stub.url("/raw"))).body == RSS


def test_redirects_within_the_cap_are_followed(feed_stub: FeedStub) -> None:
    final = feed_stub.serve("/final", RSS)
    start = feed_stub.redirect_chain("/hop", 3, final)
    result = run(fetch(start, LOOPBACK_OK))
    assert result.body == RSS and result.url == final


# --- P01: decompression bombs --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_stops_at_decoded_cap_quickly_and_small(
    feed_stub: FeedStub, encoding: str
) -> None:
    url = feed_stub.compressed_bomb("/bomb", encoding)
    with PeakRss() as rss:
        started = time.monotonic()
        error = rejected(url)
        elapsed = time.monotonic() - started
    assert error.reason == "max_bytes"
    assert elapsed < 1.0
    assert rss.growth < 50 * MiB


def test_stacked_content_encoding_is_refused(feed_stub: FeedStub) -> None:
    url = feed_stub.stacked_encoding("/stacked", "gzip, gzip, deflate")
    started = time.monotonic()
    assert rejected(url).reason == "encoding"
    assert time.monotonic() - started < 1.0


def test_unknown_content_encoding_is_refused(feed_stub: FeedStub) -> None:
    url = feed_stub.route(
        "/br", lambda h: h.send_bytes(200, b"xx", "text/xml", **{"Content-Encoding": "br"})
    )
    assert rejected(url).reason == "encoding"


# --- P02: huge bodies ----------------------------------------------------------------------


def test_endless_chunked_body_is_cut_at_the_wire_cap(feed_stub: FeedStub) -> None:
    url = feed_stub.endless("/endless")
    with PeakRss() as rss:
        assert rejected(url).reason == "max_bytes"
    assert feed_stub.bytes_sent("/endless") < 11 * MiB
    assert rss.growth < 50 * MiB


def test_huge_content_length_is_refused_before_reading(feed_stub: FeedStub) -> None:
    url = feed_stub.huge_length("/huge", 5_000_000_000)
    error = rejected(url)
    assert error.reason == "max_bytes" and "Content-Length" in str(error)


def test_smaller_caps_apply_per_fetch(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", b"x" * 5000)
    tiny = FetchLimits(max_wire_bytes=1000, max_decoded_bytes=1000, total_deadline=3)
    assert rejected(url, tiny).reason == "max_bytes"


# --- P03: slow and dead peers --------------------------------------------------------------


def test_slowloris_is_stopped_by_the_total_deadline(feed_stub: FeedStub) -> None:
    url = feed_stub.slowloris("/slow", interval=0.5)  # each byte well inside read_timeout
    started = time.monotonic()
    error = rejected(url)
    assert error.reason == "deadline" and error.retryable
    assert time.monotonic() - started <= FAST.total_deadline + 1


def test_accept_and_hang_is_stopped_by_the_read_timeout(feed_stub: FeedStub) -> None:
    url = feed_stub.hang("/hang")
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        run(fetch(url))
    assert info.value.retryable
    assert time.monotonic() - started <= FAST.total_deadline + 1


def test_reset_mid_body_is_a_clean_retryable_error(feed_stub: FeedStub) -> None:
    url = feed_stub.reset_mid_body("/rst", RSS * 5000)
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        run(fetch(url))
    assert info.value.retryable and "/rst" in str(info.value)
    assert time.monotonic() - started <= FAST.total_deadline + 1


def test_short_content_length_then_close_is_a_clean_error(feed_stub: FeedStub) -> None:
    url = feed_stub.short_body("/short", RSS)
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        run(fetch(url))
    assert info.value.retryable
    assert time.monotonic() - started <= FAST.total_deadline + 1


def test_hostile_fetches_do_not_delay_other_feeds(feed_stub: FeedStub) -> None:
    """One shared Fetcher: a bomb and a slowloris in flight, a healthy feed still answers fast."""
    good = feed_stub.serve("/good", RSS)
    hostile = [feed_stub.slowloris("/slow", interval=0.5), feed_stub.compressed_bomb("/bomb")]

    async def scenario() -> float:
        async with Fetcher() as fetcher:
            pending = [asyncio.ensure_future(fetcher.fetch(u, limits=FAST)) for u in hostile]
            await asyncio.sleep(0.1)
            started = time.monotonic()
            assert (await fetcher.fetch(good, limits=FAST)).body == RSS
            elapsed = time.monotonic() - started
            results = await asyncio.gather(*pending, return_exceptions=True)
            assert all(isinstance(r, FetchRejected) for r in results)
            return elapsed

    assert run(scenario()) < 0.5


# --- P04: SSRF through redirects -------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.2:{port}/", "blocked_address"),
        ("http://[::1]:{port}/", "blocked_address"),
        ("http://0.0.0.0:{port}/", "blocked_address"),
        ("http://2130706434:{port}/", "blocked_address"),  # 127.0.0.2 in decimal
        ("http://0x7f000002:{port}/", "blocked_address"),
        ("http://localhost:{port}/", "blocked_address"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://127.0.0.2:{port}/", "scheme"),
        ("gopher://127.0.0.2:{port}/_x", "scheme"),
        ("feed://127.0.0.2:{port}/", "scheme"),
    ],
)
def test_redirect_to_forbidden_target_is_refused_and_never_connects(
    feed_stub: FeedStub, canary: CanaryServer, target: str, reason: str
) -> None:
    url = feed_stub.redirect("/r", target.format(port=canary.port))
    assert rejected(url).reason == reason
    assert canary.hits == 0


def test_redirect_loop_stops_at_the_redirect_cap(feed_stub: FeedStub) -> None:
    feed_stub.redirect("/a", feed_stub.url("/b"))
    feed_stub.redirect("/b", feed_stub.url("/a"))
    assert rejected(feed_stub.url("/a"), LOOPBACK_OK).reason == "too_many_redirects"
    assert len(feed_stub.requests) == LOOPBACK_OK.max_redirects + 1


def test_twenty_hop_chain_stops_at_the_redirect_cap(
    feed_stub: FeedStub, canary: CanaryServer
) -> None:
    start = feed_stub.redirect_chain("/chain", 20, canary.url())
    assert rejected(start, LOOPBACK_OK).reason == "too_many_redirects"
    assert len(feed_stub.requests) == LOOPBACK_OK.max_redirects + 1
    assert canary.hits == 0


def test_configured_url_is_trusted_as_written(canary: CanaryServer) -> None:
    """The operator's own URL may point at loopback; only redirect targets are checked."""
    assert run(fetch(canary.url("/feed"))).body == CanaryServer.CANARY_TEXT.encode()
    assert canary.hits == 1


def test_connection_is_pinned_to_the_checked_address(
    feed_stub: FeedStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a later lookup says 127.0.0.2, but only one lookup is made per hop and
    the connection goes to the address that passed the policy."""
    with CanaryServer("127.0.0.2", port=feed_stub.port) as canary:
        lookups: list[str] = []

        async def rebinding(host: str, port: int) -> list[str]:
            if host != "rebind.test":
                return [host]
            lookups.append(host)
            return ["127.0.0.1"] if len(lookups) == 1 else ["127.0.0.2"]

        # Stand-in policy: 127.0.0.1 plays the public address.
        monkeypatch.setattr(fetch_module, "address_allowed", lambda ip: ip == "127.0.0.1")
        feed_stub.serve("/feed", RSS)
        url = feed_stub.redirect("/r", f"http://rebind.test:{feed_stub.port}/feed")
        result = run(fetch(url, resolve=rebinding))
        assert result.body == RSS
        assert lookups == ["rebind.test"]
        assert canary.hits == 0
        assert feed_stub.requests_for("/feed")[0].headers["host"] == f"rebind.test:{feed_stub.port}"


def test_https_is_pinned_to_the_ip_and_verified_against_the_name(tls_stub: TlsStub) -> None:
    """Connecting to the checked IP must keep SNI, Host and certificate checks on the name."""
    stub = tls_stub.stub
    stub.serve("/feed", RSS)

    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    url = f"https://{tls_stub.hostname}:{stub.port}/feed"
    result = run(fetch(url, resolve=to_loopback, ssl_context=tls_stub.client))
    assert result.body == RSS and result.url == url
    assert stub.requests_for("/feed")[0].headers["host"] == f"feed.test:{stub.port}"
    with pytest.raises(SourceError) as info:  # same IP, a name the certificate lacks
        run(fetch(f"https://other.test:{stub.port}/feed", resolve=to_loopback,
                  ssl_context=tls_stub.client))  # fmt: skip
    assert "certificate" in str(info.value).lower()


def test_allow_private_lets_redirects_reach_loopback(feed_stub: FeedStub) -> None:
    final = feed_stub.serve("/final", RSS)
    url = feed_stub.redirect("/r", final)
    assert rejected(url).reason == "blocked_address"
    assert run(fetch(url, LOOPBACK_OK)).body == RSS


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 space is reserved as a whole
        ("not-an-ip", False),
    ],
)
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


# --- status mapping and error text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(404, False), (401, False), (410, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_http_status_errors_say_whether_to_retry(
    feed_stub: FeedStub, status: int, retryable: bool
) -> None:
    error = rejected(feed_stub.status("/s", status, b"<html>error</html>"))
    assert error.reason == "http_status" and error.retryable is retryable
    assert str(status) in str(error) and "/s" in str(error)


def test_errors_never_show_userinfo_or_secret_query_values(feed_stub: FeedStub) -> None:
    feed_stub.status("/s", 404)
    url = f"http://alice:hunter22@127.0.0.1:{feed_stub.port}/s?q=news&api_key=SEKRET123&token=T0K3N"
    message = str(rejected(url))
    assert "127.0.0.1" in message and "q=news" in message
    for secret in ("hunter22", "alice", "SEKRET123", "T0K3N"):
        assert secret not in message


def test_userinfo_authenticates_the_configured_url_only(feed_stub: FeedStub) -> None:
    final = feed_stub.serve("/final", RSS)
    feed_stub.redirect("/r", final)
    url = f"http://alice:hunter22@127.0.0.1:{feed_stub.port}/r"
    assert run(fetch(url, LOOPBACK_OK)).body == RSS
    assert feed_stub.requests_for("/r")[0].headers["authorization"].startswith("Basic ")
    assert "authorization" not in feed_stub.requests_for("/final")[0].headers


def test_network_error_text_is_scrubbed_too() -> None:
    url = "http://bob:pa55word@127.0.0.1:1/feed?access_token=ABCSECRET"  # nothing listens
    with pytest.raises(SourceError) as info:
        run(fetch(url))
    assert info.value.retryable
    assert "pa55word" not in str(info.value) and "ABCSECRET" not in str(info.value)


def test_redact_url_masks_userinfo_and_secret_keys() -> None:
    assert redact_url("https://u:p@example.com/x?sig=abc&page=2#frag") == (
        "https://***@example.com/x?sig=***&page=2"
    )


# --- file:// -------------------------------------------------------------------------------


def test_file_url_is_read_with_the_byte_cap(tmp_path: Path) -> None:
    small = tmp_path / "feed.xml"
    small.write_bytes(RSS)
    result = run(fetch(small.as_uri()))
    assert result.body == RSS and result.last_modified
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * 5000)
    tiny = FetchLimits(max_wire_bytes=1000, max_decoded_bytes=1000)
    assert rejected(big.as_uri(), tiny).reason == "max_bytes"


def test_missing_local_file_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        run(fetch((tmp_path / "absent.xml").as_uri()))
    assert not info.value.retryable


def test_configured_non_http_scheme_is_refused() -> None:
    assert rejected("ftp://127.0.0.1/feed").reason == "scheme"
