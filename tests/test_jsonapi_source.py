"""JsonApiSource over a loopback FeedStub: config-only mapping (GDELT), hostile JSON (P09)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from monitor.errors import FetchRejected, SourceError
from monitor.sources.base import Cursor, PollResult
from monitor.sources.canonical import normalise_date
from monitor.sources.fetch import Fetcher, FetchLimits
from monitor.sources.jsonapi import GDELT_FIELDS, JsonApiSource
from tests.harness.feedstub import FeedStub

pytestmark = pytest.mark.timeout(30)

FAST = FetchLimits(connect_timeout=2, read_timeout=2, total_deadline=5)


def gdelt_article(n: int, **overrides: Any) -> dict[str, Any]:
    article = {
        "url": f"https://news.example/{n}?utm_source=gdelt",
        "url_mobile": "",
        "title": f"Rutba crossing story {n}",
        "seendate": f"202502{14 + n % 10:02d}T100000Z",
        "socialimage": "",
        "domain": "news.example",
        "language": "English",
        "sourcecountry": "Iraq",
    }
    return article | overrides


async def _poll(
    url: str,
    items: str = "articles",
    fields: dict[str, str] | None = None,
    cursor: Cursor | None = None,
    **kwargs: Any,
) -> PollResult:
    async with Fetcher() as fetcher:
        source = JsonApiSource(
            "gdelt", url, fetcher, items, fields or GDELT_FIELDS, limits=FAST, **kwargs
        )
        return await source.poll(cursor)


def poll(url: str, *args: Any, **kwargs: Any) -> PollResult:
    return asyncio.run(_poll(url, *args, **kwargs))


def serve_json(stub: FeedStub, body: Any, content_type: str = "application/json") -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stub.serve("/api", raw, content_type)


# --- mapping -------------------------------------------------------------------------------


def test_gdelt_doc_api_is_polled_with_config_alone(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, {"articles": [gdelt_article(1), gdelt_article(2)]})
    result = poll(url)
    first = result.items[0]
    assert first.url == "https://news.example/1?utm_source=gdelt"
    assert first.id == "https://news.example/1" == first.key
    assert first.title == "Rutba crossing story 1"
    assert first.published == "2025-02-15T10:00:00Z"
    assert first.language == "English" and first.source == "gdelt"
    assert len(result.items) == 2 and result.warnings == []


def test_empty_gdelt_answer_is_an_empty_poll(feed_stub: FeedStub) -> None:
    result = poll(serve_json(feed_stub, {}))
    assert result.items == [] and result.warnings


def test_nested_paths_and_defaults_are_expressions(feed_stub: FeedStub) -> None:
    body = {"data": {"results": [{"meta": {"id": 42}, "headline": None, "blurb": "Fallback"}]}}
    fields = {"id": "meta.id", "title": "headline || blurb"}
    [entry] = poll(serve_json(feed_stub, body), "data.results", fields).items
    assert entry.id == "42" and entry.title == "Fallback" and entry.key == "guid:gdelt:42"


def test_conditional_get_applies_to_json_apis(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, {"articles": [gdelt_article(1)]})
    first = poll(url)
    second = poll(url, cursor=first.cursor)
    assert feed_stub.requests_for("/api")[-1].headers["if-none-match"] == first.cursor.etag
    assert second.not_modified and second.items == []


def test_only_the_newest_items_are_kept(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, {"articles": [gdelt_article(n) for n in range(30)]})
    result = poll(url, max_items=5)
    assert len(result.items) == 5
    assert min(i.published or "" for i in result.items) >= "2025-02-22"
    assert any("newest 5 of 30" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "title"}, "'id' or 'url'"),
        ({"url": "url"}, "one of 'title'"),
        ({"url": "url", "title": "title", "colour": "c"}, "unknown item fields"),
        ({"url": "url[", "title": "title"}, "invalid JMESPath"),
        ({"url": "url", "title": "title", "items": ""}, "items: invalid JMESPath"),
    ],
)
def test_bad_mapping_is_refused_at_construction(fields: dict[str, str], message: str) -> None:
    fields = dict(fields)
    items = fields.pop("items", "articles")

    async def build() -> None:
        async with Fetcher() as fetcher:
            JsonApiSource("x", "http://127.0.0.1:1/", fetcher, items, fields)

    with pytest.raises(ValueError, match=message):
        asyncio.run(build())


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("20250214T100000Z", "2025-02-14T10:00:00Z"),
        ("20250214100000", "2025-02-14T10:00:00Z"),
        ("2025-02-14T12:00:00+02:00", "2025-02-14T10:00:00Z"),
        ("2025-02-14T10:00:00Z", "2025-02-14T10:00:00Z"),
        ("Fri, 14 Feb 2025 10:00:00 GMT", "2025-02-14T10:00:00Z"),
        (1739527200, "2025-02-14T10:00:00Z"),
        ("2025-02", "2025-02"),
        ("2025-02-14", "2025-02-14"),
        ("yesterday", None),
        (float("nan"), None),
        (True, None),
        (None, None),
        ("9" * 1000, None),
    ],
)
def test_dates_are_normalised_to_iso_utc(raw: object, iso: str | None) -> None:
    assert normalise_date(raw) == iso


# --- P09: hostile JSON ---------------------------------------------------------------------


def test_deep_nesting_fails_cleanly(feed_stub: FeedStub) -> None:
    with pytest.raises(SourceError, match="nested too deeply") as info:
        poll(serve_json(feed_stub, b"[" * 200_000))
    assert "source=gdelt" in str(info.value)


def test_oversized_body_hits_the_byte_cap(feed_stub: FeedStub) -> None:
    body = b'{"articles": ["' + b"x" * (50 * 1024 * 1024) + b'"]}'
    with pytest.raises(FetchRejected) as info:
        poll(serve_json(feed_stub, body))
    assert info.value.reason == "max_bytes"


def test_wrong_content_type_is_still_read_as_json(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, {"articles": [gdelt_article(1)]}, "text/html")
    assert len(poll(url).items) == 1


def test_html_error_page_is_a_clear_error(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, b"<html><body>Rate limited</body></html>", "text/html")
    with pytest.raises(SourceError, match="not valid JSON"):
        poll(url)


def test_nan_and_infinity_read_as_missing(feed_stub: FeedStub) -> None:
    body = b'{"articles": [{"url": "https://n.example/1", "title": NaN, "summary": "ok",'
    body += b' "seendate": Infinity}]}'
    fields = {"url": "url", "title": "title", "summary": "summary", "published": "seendate"}
    [entry] = poll(serve_json(feed_stub, body), "articles", fields).items
    assert entry.title == "" and entry.summary == "ok" and entry.published is None


def test_duplicate_keys_keep_the_last_value(feed_stub: FeedStub) -> None:
    body = b'{"articles": [{"url": "https://n.example/1", "title": "first", "title": "last"}]}'
    [entry] = poll(serve_json(feed_stub, body)).items
    assert entry.title == "last"


def test_top_level_array_instead_of_object_fails_cleanly(feed_stub: FeedStub) -> None:
    with pytest.raises(SourceError, match="not a list") as info:
        poll(serve_json(feed_stub, [gdelt_article(1)]))
    assert not info.value.retryable


def test_top_level_array_is_fine_when_the_mapping_says_so(feed_stub: FeedStub) -> None:
    assert len(poll(serve_json(feed_stub, [gdelt_article(1)]), "@").items) == 1


def test_items_path_that_is_not_a_list_fails_cleanly(feed_stub: FeedStub) -> None:
    with pytest.raises(SourceError, match="not a list"):
        poll(serve_json(feed_stub, {"articles": {"url": "https://n.example/1"}}))


def test_wrongly_typed_elements_are_skipped_with_one_warning(feed_stub: FeedStub) -> None:
    articles = [
        gdelt_article(1),
        gdelt_article(2, title=["a", "list"]),
        gdelt_article(3, title={"an": "object"}),
        gdelt_article(4, url=None, title="no id"),
        "a bare string",
        42,
        None,
        gdelt_article(5, url="https://n.example/" + "x" * 5000),
    ]
    result = poll(serve_json(feed_stub, {"articles": articles}))
    assert [i.title for i in result.items] == ["Rutba crossing story 1"]
    text = " ".join(result.warnings)
    assert "title is a list" in text and "title is a dict" in text
    assert "no id or url" in text and "longer than" in text
    assert len(result.warnings) <= 5


def test_huge_string_field_is_capped(feed_stub: FeedStub) -> None:
    url = serve_json(feed_stub, {"articles": [gdelt_article(1, title="y" * 1_000_000)]})
    [entry] = poll(url).items
    assert len(entry.title) == 1_000


def test_invalid_utf8_fails_cleanly(feed_stub: FeedStub) -> None:
    with pytest.raises(SourceError, match="not valid JSON"):
        poll(serve_json(feed_stub, b'{"articles": ["\xff\xfe\xfa"]}'))
