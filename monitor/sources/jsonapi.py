"""JsonApiSource: any JSON API mapped to items by configuration alone (JMESPath).

GDELT's DOC API, for example, needs no code (``GDELT_ITEMS`` / ``GDELT_FIELDS`` below)::

    JsonApiSource(
        "gdelt", "https://api.gdeltproject.org/api/v2/doc/doc?query=Rutba&mode=artlist&format=json",
        fetcher,
        items="articles",
        fields={"url": "url", "title": "title", "published": "seendate", "language": "language"},
    )

An empty ``items`` expression (``""``) is refused at construction like any invalid one.

The body is hostile until proven otherwise (RELIABILITY.md P09): deep nesting
(``RecursionError``, which is not a ``ValueError``), ``NaN``/``Infinity``, wrong types and huge
strings either fail the poll with a :class:`SourceError` naming the source and URL, or skip
the one bad element; skipped elements are counted per reason in one warning, never logged
one by one. Decoding and mapping run in a parser worker under a time budget, and a list
longer than ``parse_cap(max_items)`` is cut before it is mapped (:mod:`monitor.sources.parsing`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult

from monitor.errors import SourceError
from monitor.models import Item
from monitor.sources.base import Cursor, PollResult, Source
from monitor.sources.canonical import (
    MAX_ID_CHARS,
    canonical_url,
    cap,
    item_key,
    normalise_date,
)
from monitor.sources.fetch import Fetcher, FetchLimits, FetchResult, SourceParser
from monitor.sources.parsing import (
    Kept,
    Parsed,
    ParseLimits,
    ParserPool,
    keep_ends,
    keep_newest,
    parse_cap,
    shared_pool,
)

ITEM_FIELDS = ("id", "url", "title", "summary", "content", "published", "language", "guid")
TEXT_FIELDS = ("title", "summary", "content")
GDELT_ITEMS = "articles"  # GDELT DOC 2.0 API, mode=artlist&format=json
GDELT_FIELDS = {"url": "url", "title": "title", "published": "seendate", "language": "language"}
JSON_FEED_FIELDS = {
    "id": "id",
    "url": "url || external_url",
    "title": "title",
    "summary": "summary",
    "content": "content_html || content_text",
    "published": "date_published || date_modified",
    "language": "language",
}


class _Skip(Exception):
    """One element cannot become an item; the message is the (aggregated) reason."""


@dataclass(frozen=True)
class FieldMap:
    """A compiled ``items`` expression and per-field expressions."""

    items: ParsedResult
    fields: dict[str, ParsedResult]
    items_text: str = ""

    @classmethod
    def compile(cls, items: str, fields: Mapping[str, str]) -> FieldMap:
        """Raises ValueError naming the bad field or expression (caught by config checks)."""
        unknown = sorted(set(fields) - set(ITEM_FIELDS))
        if unknown:
            raise ValueError(f"unknown item fields {unknown}; known: {list(ITEM_FIELDS)}")
        if not {"id", "url"} & set(fields):
            raise ValueError("fields must map 'id' or 'url'")
        if not set(TEXT_FIELDS) & set(fields):
            raise ValueError("fields must map one of 'title', 'summary', 'content'")
        compiled = {k: _compile(k, v) for k, v in fields.items()}
        return cls(_compile("items", items), compiled, items)


def _compile(name: str, expression: str) -> ParsedResult:
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"{name}: invalid JMESPath {expression!r}: {exc}") from exc


def load_json(body: bytes, where: str) -> Any:
    """Parse ``body`` (UTF-8/16/32) with NaN/Infinity read as null.

    Raises:
        SourceError: nested too deeply (permanent), or not JSON — retryable, because APIs
            answer rate limits and outages with a text or HTML page; ``where`` names the
            source and URL, and the message quotes the start of the body.
    """
    try:
        return json.loads(body, parse_constant=lambda _name: None)
    except RecursionError as exc:
        raise SourceError(f"{where}: JSON nested too deeply", retryable=False) from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise SourceError(f"{where}: not valid JSON ({exc}): {body[:120]!r}") from exc


ITEMS_NOT_FOUND = "the items expression found nothing in the response"


def map_items(
    document: Any, mapping: FieldMap, source: str, where: str, limit: int | None = None
) -> tuple[list[Item], list[str], Kept | None]:
    """Items found in ``document``, the warnings (skipped elements, missing list), and,
    with ``limit``, which elements were mapped: at most ``limit``, the first and the last
    half of it (:func:`~monitor.sources.parsing.keep_ends`), cut before the per-element
    work."""
    try:
        elements = mapping.items.search(document)
    except RecursionError as exc:
        raise SourceError(f"{where}: JSON nested too deeply", retryable=False) from exc
    if elements is None and isinstance(document, dict):
        return [], [f"{where}: {ITEMS_NOT_FOUND}"], None
    if not isinstance(elements, list):
        kind = type(document).__name__ if elements is None else type(elements).__name__
        raise SourceError(f"{where}: items expression found {kind}, not a list", retryable=False)
    kept = None
    if limit is not None:
        elements, kept = keep_ends(elements, limit)
    items: list[Item] = []
    skipped: Counter[str] = Counter()
    for element in elements:
        try:
            items.append(_to_item(element, mapping, source))
        except _Skip as why:
            skipped[str(why)] += 1
        except RecursionError:
            skipped["nested too deeply"] += 1
    warnings = [f"{where}: skipped {n} element(s): {why}" for why, n in sorted(skipped.items())]
    return items, warnings, kept


def _to_item(element: Any, mapping: FieldMap, source: str) -> Item:
    values = {name: _text(name, expr.search(element)) for name, expr in mapping.fields.items()}
    url = values.get("url") or ""
    guid = values.get("guid") or values.get("id") or ""
    if not (url or guid):
        raise _Skip("no id or url")
    if len(url) > MAX_ID_CHARS or len(guid) > MAX_ID_CHARS:
        raise _Skip(f"id or url longer than {MAX_ID_CHARS} characters")
    if not any(values.get(name) for name in TEXT_FIELDS):
        raise _Skip("no title, summary or content")
    published = normalise_date(values.get("published"))
    return Item(
        id=guid or canonical_url(url),
        source=source,
        url=url,
        title=cap(values.get("title") or "", "title"),
        summary=cap(values.get("summary") or "", "summary"),
        content=cap(values.get("content") or "", "content"),
        published=published,
        language=(values.get("language") or None),
        guid=guid,
        key=item_key(guid, url, values.get("title"), published, source),
    )


def _text(name: str, value: Any) -> str | None:
    """A field value as text; a list or object where text belongs skips the element."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() if name not in TEXT_FIELDS else value
    raise _Skip(f"{name} is a {type(value).__name__}, not text")


class JsonApiSource(Source):
    """Polls a JSON API and maps its list of results to items (see the module docstring).

    ``items`` is a JMESPath expression for the list; ``fields`` maps Item fields to
    expressions evaluated on each element (``id`` or ``url``, and one of title/summary/
    content, are required). Raises ValueError at construction for a bad mapping.

    The fetch runs on the event loop; decoding and mapping run in a parser worker under
    ``parse_limits.budget`` (:mod:`~monitor.sources.parsing`).
    """

    def __init__(
        self,
        name: str,
        url: str,
        fetcher: Fetcher,
        items: str,
        fields: Mapping[str, str],
        limits: FetchLimits | None = None,
        max_items: int = 500,
        title: str = "",
        parse_limits: ParseLimits | None = None,
        pool: ParserPool | None = None,
    ) -> None:
        self.name, self.url = name, url
        self._fetcher = fetcher
        self.parser = JsonApiParser(name, url, FieldMap.compile(items, fields), max_items, title)
        self._limits = limits or FetchLimits()
        self._parse_limits = parse_limits or ParseLimits()
        self._pool = pool  # None: the daemon's shared pool

    async def poll(self, cursor: Cursor | None) -> PollResult:
        cursor = cursor or Cursor()
        result = await self._fetcher.fetch(
            self.url, cursor.etag, cursor.last_modified, self._limits
        )
        fresh = Cursor(result.etag, result.last_modified, dict(cursor.extra))
        if result.not_modified:
            return PollResult([], fresh, not_modified=True)
        pool = self._pool or shared_pool()
        parsed = await pool.run(self.parser.parse, result, budget=self._parse_limits.budget,
                                where=self.parser.where)
        return PollResult(parsed.items, fresh, warnings=parsed.warnings, note=parsed.note)


@dataclass(frozen=True)
class JsonApiParser(SourceParser):
    """A fetched JSON response to items: picklable and free of I/O, so that it runs in a
    parser worker. At most ``parse_cap(max_items)`` elements are mapped; the ``max_items``
    newest items are kept."""

    mapping: FieldMap
    max_items: int = 500
    title: str = ""

    def parse(self, result: FetchResult) -> Parsed:
        where = self.where
        if not result.body.strip():
            raise SourceError(f"{where}: empty response body")
        document = load_json(result.body, where)
        items, warnings, kept = map_items(document, self.mapping, self.name, where,
                                          limit=parse_cap(self.max_items))
        if self.title:
            items = [replace(item, source_title=self.title) for item in items]
        missing = any(w.endswith(ITEMS_NOT_FOUND) for w in warnings)
        items, capped = keep_newest(items, self.max_items, where, kept)
        note = f"items expression {self.mapping.items_text!r} found nothing" if missing else None
        return Parsed(items, warnings + capped, note)
