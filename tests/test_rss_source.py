"""RssSource over a real loopback FeedStub: formats, conditional GET, hostile XML, real feeds.

RELIABILITY.md P05 (entity attacks), P06 (parser input confusion), P07 (malformed and
real-world feeds), P08 (identity), plus canonical URLs and dedupe keys.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.errors import FetchRejected, SourceError
from monitor.models import Item
from monitor.sources.base import Cursor, PollResult
from monitor.sources.canonical import canonical_url, item_key
from monitor.sources.fetch import Fetcher, FetchLimits
from monitor.sources.rss import RssSource
from monitor.sources.xmlguard import check_xml
from tests.harness.feeds import SHARED_DATA, shared_data
from tests.harness.feedstub import CanaryServer, FeedStub

pytestmark = pytest.mark.timeout(30)

FEEDS = SHARED_DATA / "feeds"  # ../shared/data/feeds beside the checkout
FAST = FetchLimits(connect_timeout=2, read_timeout=2, total_deadline=3)


def rss(*items: str, head: str = "") -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?>{head}<rss version='2.0'><channel>"
        f"<title>Test</title><link>http://example.com/</link>{''.join(items)}</channel></rss>"
    ).encode()


def item(n: int, title: str = "", day: int = 1) -> str:
    return (
        f"<item><title>{title or f'Story {n}'}</title><link>http://example.com/{n}</link>"
        f"<guid>urn:story:{n}</guid><description>&lt;b&gt;Summary {n}&lt;/b&gt;</description>"
        f"<pubDate>Fri, {day:02d} Feb 2025 10:00:{n % 60:02d} +0100</pubDate></item>"
    )


async def _poll(url: str, cursor: Cursor | None = None, **kwargs: object) -> PollResult:
    async with Fetcher() as fetcher:
        return await RssSource("test", url, fetcher, limits=FAST, **kwargs).poll(cursor)  # type: ignore[arg-type]


def poll(url: str, cursor: Cursor | None = None, **kwargs: object) -> PollResult:
    return asyncio.run(_poll(url, cursor, **kwargs))


def all_text(items: list[Item]) -> str:
    return json.dumps([i.to_dict() for i in items])


# --- formats and fields --------------------------------------------------------------------


def test_rss2_items_carry_ids_fields_and_utc_dates(feed_stub: FeedStub) -> None:
    result = poll(feed_stub.serve("/feed", rss(item(1), item(2))))
    first = result.items[0]
    assert [i.id for i in result.items] == ["urn:story:1", "urn:story:2"]
    assert first.source == "test" and first.url == "http://example.com/1"
    assert first.title == "Story 1"
    assert first.summary == "<b>Summary 1</b>"  # HTML kept as feedparser gives it
    assert first.published == "2025-02-01T09:00:01Z"
    assert first.key == "http://example.com/1"
    assert result.warnings == [] and not result.not_modified


def test_atom_feed_is_parsed(feed_stub: FeedStub) -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>A</title>
    <entry><id>tag:example.com,2025:1</id><title>Atom story</title>
    <link href="https://example.com/a?utm_source=rss"/><updated>2025-02-14T10:00:00+02:00</updated>
    <content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>"""
    [entry] = poll(feed_stub.serve("/atom", body, "application/atom+xml")).items
    assert entry.id == "tag:example.com,2025:1" and entry.title == "Atom story"
    assert entry.published == "2025-02-14T08:00:00Z"
    assert entry.content == "<p>Body</p>" and entry.language == "en"
    assert entry.key == "https://example.com/a"


def test_rdf_feed_is_parsed(feed_stub: FeedStub) -> None:
    body = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://example.com/"><title>R</title>
    </channel><item rdf:about="http://example.com/r1"><title>RDF story</title>
    <link>http://example.com/r1</link></item></rdf:RDF>"""
    [entry] = poll(feed_stub.serve("/rdf", body, "application/rdf+xml")).items
    assert entry.title == "RDF story" and entry.url == "http://example.com/r1"


def test_rss091_with_netscape_doctype_is_allowed(feed_stub: FeedStub, canary: CanaryServer) -> None:
    head = (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        f'"{canary.url("/rss-0.91.dtd")}">'
    )
    body = rss(item(1), head=head).replace(b"version='2.0'", b"version='0.91'")
    [entry] = poll(feed_stub.serve("/091", body)).items
    assert entry.title == "Story 1"
    assert canary.hits == 0


def test_json_feed_is_parsed_and_its_html_sanitized(feed_stub: FeedStub) -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [
                {
                    "id": "1",
                    "url": "https://example.org/1",
                    "title": "JSON story",
                    "content_html": "<p>Hi</p><script>alert(1)</script>",
                    "date_published": "2025-02-14T10:00:00+01:00",
                }
            ],
        }
    ).encode()
    [entry] = poll(feed_stub.serve("/feed.json", body, "application/feed+json")).items
    assert entry.id == "1" and entry.title == "JSON story"
    assert entry.content == "<p>Hi</p>"
    assert entry.published == "2025-02-14T09:00:00Z"


def test_fields_are_capped(feed_stub: FeedStub) -> None:
    long = "x" * 30_000
    body = rss(f"<item><title>{long}</title><description>{long}</description>"
               f"<link>http://example.com/1</link></item>")  # fmt: skip
    [entry] = poll(feed_stub.serve("/long", body)).items
    assert len(entry.title) == 1_000 and len(entry.summary) == 10_000


def test_undated_items_keep_the_first_in_feed_order(feed_stub: FeedStub) -> None:
    entries = [
        f"<item><title>U{n}</title><link>http://example.com/{n}</link></item>" for n in range(8)
    ]
    result = poll(feed_stub.serve("/undated", rss(*entries)), max_items=3)
    assert [i.title for i in result.items] == ["U0", "U1", "U2"]


def test_only_the_newest_items_are_kept_with_a_warning(feed_stub: FeedStub) -> None:
    entries = [item(n, day=1 + n % 28) for n in range(60)]
    result = poll(feed_stub.serve("/many", rss(*entries)), max_items=10)
    assert len(result.items) == 10
    days = sorted(i.published or "" for i in result.items)
    assert days[0] >= "2025-02-23"
    assert any("newest 10 of 60" in w for w in result.warnings)


def test_fifty_thousand_entries_are_cut_before_parsing(feed_stub: FeedStub) -> None:
    """P08: only the first and the last 500 entries reach feedparser (tests/test_bigfeed.py
    counts them); undated entries keep feed order."""
    entries = [f"<item><title>S{n}</title><link>http://example.com/{n}</link></item>"
               for n in range(50_000)]
    result = poll(feed_stub.serve("/fifty", rss(*entries)))
    assert [i.title for i in result.items] == [f"S{n}" for n in range(500)]
    assert result.warnings == [
        f"source=test url={feed_stub.url('/fifty')}: kept the newest 500 of 50000 items (only "
        "the first 500 and the last 500 were parsed; max_items is 500)"
    ]


# --- conditional GET -----------------------------------------------------------------------


def test_second_poll_is_conditional_and_returns_no_items(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", rss(item(1)))
    first = poll(url)
    assert first.cursor.etag and first.cursor.last_modified
    second = poll(url, first.cursor)
    sent = feed_stub.requests_for("/feed")[-1].headers
    assert sent["if-none-match"] == first.cursor.etag
    assert sent["if-modified-since"] == first.cursor.last_modified
    assert second.not_modified and second.items == []
    assert second.cursor.etag == first.cursor.etag


def test_changed_feed_is_fetched_again(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", rss(item(1)), etag=True)
    first = poll(url)
    feed_stub.serve("/feed", rss(item(1), item(2)), etag=True)
    second = poll(url, first.cursor)
    assert not second.not_modified
    assert [i.id for i in second.items] == ["urn:story:1", "urn:story:2"]


# --- broken and non-feeds ------------------------------------------------------------------


def test_empty_body_is_a_clear_error(feed_stub: FeedStub) -> None:
    with pytest.raises(SourceError, match="empty response body"):
        poll(feed_stub.serve("/empty", b""))


def test_html_page_is_not_a_feed(feed_stub: FeedStub) -> None:
    page = b"<!DOCTYPE html><html><head><title>Wi-Fi login</title></head><body>x</body></html>"
    with pytest.raises(SourceError, match="HTML page") as info:
        poll(feed_stub.serve("/portal", page, "text/html"))
    assert not info.value.retryable


def test_unparseable_feed_names_source_url_and_parser_message(feed_stub: FeedStub) -> None:
    url = feed_stub.serve(
        "/broken", b"<?xml version='1.0'?><rss version='2.0'><channel><title>A & B"
    )
    with pytest.raises(SourceError) as info:
        poll(url)
    message = str(info.value)
    assert info.value.retryable
    assert "source=test" in message and "/broken" in message and "cannot parse feed" in message


def test_malformed_feed_with_entries_gives_items_and_a_warning(feed_stub: FeedStub) -> None:
    body = rss(item(1)).replace(b"</channel></rss>", b"<item><title>A & B</title></item>")
    result = poll(feed_stub.serve("/bozo", body))
    assert result.items and result.items[0].title == "Story 1"
    assert any("malformed" in w for w in result.warnings)


def test_server_error_is_retryable(feed_stub: FeedStub) -> None:
    with pytest.raises(FetchRejected) as info:
        poll(feed_stub.status("/500", 500, b"<html>oops</html>"))
    assert info.value.retryable and info.value.reason == "http_status"


# --- P05: XML entity attacks ---------------------------------------------------------------


def _billion_laughs() -> bytes:
    decls = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return rss(item(1, title="&lol9;"), head=f"<!DOCTYPE rss [{''.join(decls)}]>")


def _quadratic() -> bytes:
    head = f'<!DOCTYPE rss [<!ENTITY a "{"x" * 50_000}">]>'
    return rss(item(1, title="&a;" * 20_000), head=head)


def _xxe(canary_file: Path) -> bytes:
    head = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{canary_file.as_uri()}">]>'
    return rss(item(1, title="&xxe;"), head=head)


def _external_entity_via_server(canary: CanaryServer) -> bytes:
    head = f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{canary.url("/x.dtd")}"> %remote;]>'
    return rss(item(1), head=head)


@pytest.mark.parametrize("attack", ["billion_laughs", "quadratic", "xxe", "parameter_entity"])
def test_entity_attacks_are_refused_fast_and_leak_nothing(
    feed_stub: FeedStub, canary: CanaryServer, tmp_path: Path, attack: str
) -> None:
    canary_file = tmp_path / "secret.txt"
    canary_file.write_text("LOCAL-SECRET-CANARY")
    attacks: dict[str, Callable[[], bytes]] = {
        "billion_laughs": _billion_laughs,
        "quadratic": _quadratic,
        "xxe": lambda: _xxe(canary_file),
        "parameter_entity": lambda: _external_entity_via_server(canary),
    }
    body = attacks[attack]()
    started = time.monotonic()
    with pytest.raises(FetchRejected) as info:
        poll(feed_stub.serve("/attack", body))
    assert time.monotonic() - started < 1.0
    assert info.value.reason == "xml_entities" and not info.value.retryable
    assert "LOCAL-SECRET-CANARY" not in str(info.value)
    assert canary.hits == 0


def test_external_dtd_is_never_fetched(feed_stub: FeedStub, canary: CanaryServer) -> None:
    body = rss(item(1), head=f'<!DOCTYPE rss SYSTEM "{canary.url("/x.dtd")}">')
    started = time.monotonic()
    result = poll(feed_stub.serve("/dtd", body))
    assert time.monotonic() - started < 1.0
    assert CanaryServer.CANARY_TEXT not in all_text(result.items)
    assert canary.hits == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "utf-32-be"])
def test_entity_declarations_are_found_in_wide_encodings(encoding: str) -> None:
    text = _billion_laughs().decode().replace("encoding='utf-8'", f"encoding='{encoding}'")
    with pytest.raises(FetchRejected) as info:
        check_xml(text.encode(encoding))
    assert info.value.reason == "xml_entities"


def test_entity_declarations_are_found_in_the_http_charset(feed_stub: FeedStub) -> None:
    """feedparser decodes by the Content-Type charset (RFC 3023), so the screen must too."""
    body = _billion_laughs().decode().replace("<?xml version='1.0' encoding='utf-8'?>", "")
    url = feed_stub.serve("/ebcdic", body.encode("cp037"), "application/xml; charset=cp037")
    with pytest.raises(FetchRejected) as info:
        poll(url)
    assert info.value.reason == "xml_entities"


def test_entity_screen_is_cheap_on_a_large_body() -> None:
    body = rss(*(item(n) for n in range(48_000)))
    assert len(body) > 9_000_000
    started = time.monotonic()
    check_xml(body)
    assert time.monotonic() - started < 0.5


def test_entity_hidden_behind_a_comment_is_still_found() -> None:
    with pytest.raises(FetchRejected):
        check_xml(b'<!-- <a> --><!DOCTYPE r [<!ENTITY e "x">]><rss/>')


# --- P06: a body that is a local path ------------------------------------------------------


def test_body_that_is_a_local_path_is_not_opened(feed_stub: FeedStub, tmp_path: Path) -> None:
    canary_feed = tmp_path / "canary.xml"
    canary_feed.write_bytes(rss(item(1, title="LOCAL-FILE-CANARY")))
    url = feed_stub.serve("/path", str(canary_feed).encode(), "application/rss+xml")
    try:
        items = poll(url).items
    except SourceError:
        items = []
    assert "LOCAL-FILE-CANARY" not in all_text(items)


# --- P07: every real and malformed feed file -----------------------------------------------


def _feed_files() -> list[Path | None]:
    """The corpus files, or one None that makes the test skip (fail under CI=true)."""
    if not FEEDS.is_dir():
        return [None]
    return sorted(p for p in FEEDS.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt"))


@pytest.mark.parametrize("path", _feed_files(),
                         ids=lambda p: str(p.relative_to(FEEDS)) if p else "corpus-absent")
def test_every_corpus_feed_parses_or_fails_with_source_error(
    feed_stub: FeedStub, path: Path | None
) -> None:
    if path is None:
        shared_data("feeds")  # skips, or fails under CI=true, with the reason
        return
    kind = "application/json" if path.suffix == ".json" else "application/xml"
    url = feed_stub.serve("/" + path.name, path.read_bytes(), kind)
    try:
        result = poll(url)
    except SourceError:
        return
    for entry in result.items:
        assert entry.id and entry.key and entry.source == "test"
        assert len(entry.title) <= 1_000 and len(entry.summary) <= 10_000


def test_real_feeds_yield_items(feed_stub: FeedStub) -> None:
    path = shared_data("feeds", "real", "rss-parser", "guardian.rss")
    result = poll(feed_stub.serve("/guardian", path.read_bytes()))
    assert len(result.items) > 10
    assert all(i.published and i.published.endswith("Z") for i in result.items)


# --- canonical URL and dedupe key (P08) ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.COM:443/Path?b=2&a=1#frag", "https://example.com/Path?a=1&b=2"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=X&gclid=Y",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&ref=home", "https://example.com/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("not a url", "not a url"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_key_prefers_link_then_guid_then_content_hash() -> None:
    assert item_key("g1", "https://Example.com/a?utm_source=x", "T", None, "s") == (
        "https://example.com/a"
    )
    assert item_key("g1", None, "T", None, "s") == "guid:s:g1"
    hashed = item_key(None, None, "Title", "2025-02-14T10:00:00Z", "s")
    assert hashed.startswith("sha256:")
    assert hashed == item_key("", "", "Title", "2025-02-14T10:00:00Z", "s")
    assert hashed != item_key(None, None, "Title", "2025-02-14T10:00:00Z", "other")


def test_regenerated_guids_keep_the_same_key(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed", rss(item(1)))
    first = poll(url).items[0]
    feed_stub.serve("/feed", rss(item(1).replace("urn:story:1", "urn:story:regenerated")))
    second = poll(url).items[0]
    assert first.id != second.id and first.key == second.key


def test_items_without_guid_or_link_get_a_stable_key(feed_stub: FeedStub) -> None:
    body = rss("<item><title>Bare story</title></item>")
    first = poll(feed_stub.serve("/bare", body)).items[0]
    second = poll(feed_stub.serve("/bare", body)).items[0]
    assert first.key.startswith("sha256:") and first.key == second.key and first.id
