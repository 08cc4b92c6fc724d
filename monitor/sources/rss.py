"""RssSource: RSS 0.9x/1.0/2.0, Atom, RDF and JSON Feed through one fetch-and-parse path.

The bytes come from :class:`~monitor.sources.fetch.Fetcher` (caps, deadline, redirect
policy), are screened by :func:`~monitor.sources.xmlguard.check_xml`, and reach feedparser
only as ``io.BytesIO`` — never as a str, path or URL, which feedparser would open itself
(RELIABILITY.md B6, P06). The response headers go with them, lower-cased, so feedparser sees
the declared charset and can resolve relative links against the final URL.

Parsing runs in a worker process under a time budget, and a feed with more items than
``parse_cap(max_items)`` is cut before feedparser sees it (:mod:`~monitor.sources.parsing`
says why and how).

feedparser 6.0.x does not read JSON Feed (that arrived on its unreleased main branch), so a
JSON body is mapped with the JSON Feed 1/1.1 field map of :mod:`~monitor.sources.jsonapi`
and its HTML is passed through feedparser's own sanitizer, so both kinds of feed look alike.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import feedparser
from feedparser.sanitizer import _sanitize_html

from monitor.errors import SourceError
from monitor.models import Item
from monitor.sources.base import Cursor, PollResult, Source
from monitor.sources.canonical import canonical_url, cap, iso_from_struct, item_key
from monitor.sources.fetch import Fetcher, FetchLimits, FetchResult, SourceParser
from monitor.sources.jsonapi import JSON_FEED_FIELDS, FieldMap, load_json, map_items
from monitor.sources.parsing import (
    Parsed,
    ParseLimits,
    ParserPool,
    cut_items,
    keep_newest,
    parse_cap,
    shared_pool,
)
from monitor.sources.xmlguard import check_xml

_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
                         re.IGNORECASE | re.DOTALL)  # fmt: skip
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:\-]+)", re.IGNORECASE)
_JSON_FEED = FieldMap.compile("items", JSON_FEED_FIELDS)


class RssSource(Source):
    """One syndication feed. Keeps no state: ETag and Last-Modified travel in the cursor.

    The fetch runs on the event loop; everything after it (decoding, the entity screen,
    feedparser, building items) runs in a parser worker under ``parse_limits.budget``
    (:mod:`~monitor.sources.parsing`), so no feed can stall the loop.

    Raises (from :meth:`poll`) SourceError naming the source, URL and parser message when
    the body is empty, is an HTML page, or cannot be parsed into any entry;
    ``FetchRejected(reason="parse_budget")`` when parsing overran its budget.
    """

    def __init__(
        self,
        name: str,
        url: str,
        fetcher: Fetcher,
        limits: FetchLimits | None = None,
        max_items: int = 500,
        title: str = "",
        parse_limits: ParseLimits | None = None,
        pool: ParserPool | None = None,
    ) -> None:
        self.name, self.url = name, url
        self._fetcher = fetcher
        self._limits = limits or FetchLimits()
        self.parser = RssParser(name, url, max_items, title)
        self._parse_limits = parse_limits or ParseLimits()
        self._pool = pool  # None: the daemon's shared pool

    async def poll(self, cursor: Cursor | None) -> PollResult:
        cursor = cursor or Cursor()
        result = await self._fetcher.fetch(
            self.url, cursor.etag, cursor.last_modified, self._limits
        )
        fresh = Cursor(
            result.etag or (cursor.etag if result.not_modified else None),
            result.last_modified or (cursor.last_modified if result.not_modified else None),
            dict(cursor.extra),
        )
        if result.not_modified:
            return PollResult([], fresh, not_modified=True)
        pool = self._pool or shared_pool()
        parsed = await pool.run(self.parser.parse, result, budget=self._parse_limits.budget,
                                where=self.parser.where)
        return PollResult(parsed.items, fresh, warnings=parsed.warnings)


@dataclass(frozen=True)
class RssParser(SourceParser):
    """A fetched response to items, for one feed: picklable, and free of I/O, so that it runs
    in a parser worker. At most ``parse_cap(max_items)`` items of a document are parsed (cut
    before parsing, see :func:`~monitor.sources.parsing.cut_items`); the ``max_items``
    newest of them are kept.

    ``title`` is config's display name; without it, the feed's own title.
    """

    max_items: int = 500
    title: str = ""

    def parse(self, result: FetchResult) -> Parsed:
        """Items and warnings from one fetched response (no I/O)."""
        body = result.body
        if not body.strip():
            raise SourceError(f"{self.where}: empty response body (HTTP {result.status})")
        if _is_json(body, result.headers):
            return self._parse_json_feed(body)
        check_xml(body, _charset(result.headers))
        if _HTML_START.match(body.lstrip(b"\xef\xbb\xbf")):
            raise SourceError(f"{self.where}: got an HTML page, not a feed", retryable=False)
        return self._parse_xml(body, result)

    def _parse_json_feed(self, body: bytes) -> Parsed:
        document = load_json(body, self.where)
        if not isinstance(document, dict) or "items" not in document:
            raise SourceError(f"{self.where}: JSON body is not a JSON Feed", retryable=False)
        items, warnings, kept = map_items(document, _JSON_FEED, self.name, self.where,
                                          limit=parse_cap(self.max_items))
        items, capped = keep_newest(items, self.max_items, self.where, kept)
        title = self.title or _str(document.get("title")).strip()
        return Parsed([_sanitized(item, title) for item in items], warnings + capped)

    def _parse_xml(self, body: bytes, result: FetchResult) -> Parsed:
        headers = dict(result.headers)
        if result.url.startswith(("http://", "https://")):
            headers.setdefault("content-location", result.url)
        body, kept = cut_items(body, parse_cap(self.max_items))
        try:
            parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
        except Exception as exc:  # feedparser promises not to raise; a bug must not crash a poll
            raise SourceError(f"{self.where}: feed parser failed: {exc!r}") from exc
        entries = parsed.get("entries") or []
        problem = str(parsed.get("bozo_exception") or "") if parsed.get("bozo") else ""
        if not entries:
            self._raise_if_not_a_feed(parsed, problem)
            return Parsed([])
        feed = parsed.get("feed") or {}
        language = feed.get("language")
        title = self.title or " ".join(_str(feed.get("title")).split())[:200]
        items, skipped = [], 0
        for entry in entries:
            try:
                items.append(self._entry_item(entry, language, title))
            except (TypeError, ValueError, AttributeError):
                skipped += 1  # an entry feedparser built oddly costs only itself
        warnings = [f"{self.where}: feed is malformed but parsed: {problem}"] if problem else []
        if skipped:
            warnings.append(f"{self.where}: skipped {skipped} unusable entries")
        items, capped = keep_newest(items, self.max_items, self.where, kept)
        return Parsed(items, warnings + capped)

    def _raise_if_not_a_feed(self, parsed: Any, problem: str) -> None:
        if problem:
            raise SourceError(f"{self.where}: cannot parse feed: {problem}")
        if not parsed.get("version"):
            raise SourceError(f"{self.where}: not a recognised feed format", retryable=False)

    def _entry_item(self, entry: Any, language: str | None, feed_title: str) -> Item:
        guid = _str(entry.get("id"))
        link = _str(entry.get("link"))
        title = cap(_str(entry.get("title")), "title")
        published = iso_from_struct(entry.get("published_parsed") or entry.get("updated_parsed"))
        content = "\n\n".join(_str(part.get("value")) for part in entry.get("content") or [])
        detail = entry.get("title_detail") or {}
        return Item(
            id=guid or canonical_url(link) or item_key(guid, link, title, published, self.name),
            source=self.name,
            url=link,
            title=title,
            summary=cap(_str(entry.get("summary")), "summary"),
            content=cap(content, "content"),
            published=published,
            language=_str(detail.get("language") or language) or None,
            guid=guid,
            key=item_key(guid, link, title, published, self.name),
            source_title=feed_title,
        )


def _str(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _charset(headers: dict[str, str]) -> str | None:
    match = _CHARSET.search(headers.get("content-type", ""))
    return match.group(1) if match else None


def _is_json(body: bytes, headers: dict[str, str]) -> bool:
    kind = headers.get("content-type", "").lower()
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" or ("json" in kind and start in (b"{", b"["))


def _sanitized(item: Item, source_title: str) -> Item:
    """JSON Feed HTML through feedparser's sanitizer, as feedparser does for XML feeds."""
    return Item(
        **{
            **item.to_dict(),
            "source_title": source_title[:200],
            "summary": _sanitize_html(item.summary, "utf-8", "text/html"),
            "content": _sanitize_html(item.content, "utf-8", "text/html"),
        }
    )
