"""Fixtures for the SlackStub (tests/harness/slackstub.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from monitor.models import Alert, Item, Match
from tests.harness.slackstub import SlackStub

STUB_TOKEN = "xoxb-stub-token"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def slack_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStub]:
    """A running SlackStub on 127.0.0.1 that accepts ``STUB_TOKEN``.

    Proxy variables are cleared: slack_sdk reads them and would send loopback traffic to a
    proxy.
    """
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    with SlackStub(token=STUB_TOKEN) as stub:
        yield stub


def make_alert(
    title: str = "Officers cross at Rutba",
    summary: str = "Former Syrian officers were seen near Rutba in Anbar.",
    url: str = "https://news.example/story/1",
    source: str = "aljazeera",
    terms: tuple[str, ...] = ("Rutba",),
    field: str = "summary",
    alert_id: str = "a-0123456789abcdef01234567",
    *,
    published: str | None = "2025-02-14T10:00:00Z",
    rule: str | None = None,
    kinds: dict[str, str] | None = None,
    **item_fields: str,
) -> Alert:
    """An alert whose matches are every occurrence of ``terms`` in ``field`` (real offsets).

    ``rule`` names the rule that fired (set on the alert and on every match, as the engine
    does); ``kinds`` maps a term to its kind (default ``topic``).
    """
    item = Item(
        id="item-1",
        source=source,
        url=url,
        title=title,
        summary=summary,
        published=published,
        **item_fields,
    )
    text = item.field_text(field)
    matches = tuple(
        Match(
            watchlist="syria-iraq",
            term=term.lower(),
            term_name=term,
            matched_text=term,
            score=100.0,
            field=field,
            start=found.start(),
            end=found.end(),
            rule=rule,
            kind=(kinds or {}).get(term, "topic"),
        )
        for term in terms
        for found in re.finditer(re.escape(term), text)
    )
    return Alert(
        id=alert_id,
        watchlist="syria-iraq",
        severity="high",
        item=item,
        matches=matches,
        rule=rule,
        created_at=time.time(),
    )
