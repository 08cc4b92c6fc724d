"""What an alert says besides its passages, as clean plain text for any renderer.

Watchlist and rule names, the outlet, the publication time, the story link and the matched
terms all come from untrusted text (feed fields, and the analysts' own YAML), so each is
cleaned here (``monitor.notify.text``) and each renderer escapes it for its destination.
The link is the exception: ``item_link`` gives it as Slack needs it inside ``<url|label>``.

The publication time is parsed (``read_published``) rather than shown as sent, so the Slack
message can show each reader local time; an unparseable value stays text, cleaned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.models import Alert
from monitor.notify.mrkdwn import safe_link
from monitor.notify.text import clean_inline, cut_plain, field_to_text
from monitor.sources.canonical import canonical_url, normalise_date

# How much of each fact is shown (Slack: UTF-16 units after escaping; console: characters).
TITLE_LIMIT = 300  # escaped label length inside the title link
SOURCE_LIMIT = 200
DATE_LIMIT = 100

# ASCII digits only: ``\d`` would let Arabic-Indic digits through to the date token.
_ISO_MONTH = re.compile(r"[0-9]{4}(?:-[0-9]{2})?")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HAS_TIME = re.compile(r"[0-9]:[0-9]|T[0-9]")


def alert_names(alert: Alert) -> list[str]:
    """Watchlist and, when one fired, rule name: cleaned but untrusted (analysts' YAML)."""
    names = [clean_inline(alert.watchlist).strip()]
    if alert.rule is not None:
        names.append(clean_inline(alert.rule).strip() or "(unnamed)")
    return names


def matched_terms(alert: Alert) -> list[str]:
    """One ``name (kind; as "variant")`` entry per term, in first-seen order.

    The kind tells a person from a place of the same name (a "Rutba" or a "Tikriti");
    the variants show how the outlet spelled it when that differs from the watchlist name.
    """
    seen: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for m in alert.matches:
        names.setdefault(m.term, clean_inline(m.term_name or m.term).strip() or "?")
        kinds.setdefault(m.term, clean_inline(m.kind or "").strip())
        seen.setdefault(m.term, set()).add(clean_inline(m.matched_text).strip())
    out = []
    for term, name in names.items():
        variants = sorted(v for v in seen[term] if v and v.casefold() != name.casefold())
        notes = [kinds[term]] if kinds[term] else []
        if variants:
            notes.append("as " + ", ".join(f'"{cut_plain(v, 100)}"' for v in variants[:3]))
        out.append(f"{name} ({'; '.join(notes)})" if notes else name)
    return out


def outlet_name(alert: Alert) -> str:
    """The outlet as analysts know it (``source_title``), else the source's config key.

    Both are untrusted (a feed names itself); the result is cleaned plain text.
    """
    item = alert.item
    title = clean_inline(field_to_text(item.source_title)).strip()
    return title or clean_inline(item.source).strip()


@dataclass(frozen=True)
class Published:
    """``item.published`` read for display.

    ``text`` is readable UTC (``2025-02-14 10:00 UTC``), a date (``2025-02-14``), a month
    (``2025-02``), the raw value cleaned when it is not a date, or ``unknown``. ``epoch``
    and ``slack_format`` are set only when the value is a real date or time: Slack then
    renders it in each reader's time zone.
    """

    text: str
    epoch: int | None = None
    slack_format: str = ""


def read_published(value: str | None) -> Published:
    """Parse an ISO-8601 (or RFC 822, GDELT compact) ``published`` value, partial or not.

    A date without a time is pinned to 12:00 UTC, so ``{date_short_pretty}`` names the same
    day for every reader between UTC−11 and UTC+11 (midnight would show the day before to
    everyone in the Americas). Values out of Slack's range (before 1970) stay plain text.
    """
    raw = clean_inline(value or "").strip()
    if not raw:
        return Published("unknown")
    iso = normalise_date(raw)
    if iso is None:
        return Published(raw)
    try:
        if _ISO_MONTH.fullmatch(iso):
            if len(iso) == 7 and not 1 <= int(iso[5:]) <= 12:
                return Published(raw)
            return Published(iso)
        if _ISO_DAY.fullmatch(iso) or (_ISO_STAMP.fullmatch(iso) and not _HAS_TIME.search(raw)):
            day = datetime.strptime(iso[:10], "%Y-%m-%d").replace(hour=12, tzinfo=UTC)
            return _dated(day.strftime("%Y-%m-%d"), day, "{date_short_pretty}")
        if _ISO_STAMP.fullmatch(iso):
            moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            text = moment.strftime("%Y-%m-%d %H:%M UTC")
            return _dated(text, moment, "{date_short_pretty} at {time}")
    except (ValueError, OverflowError):
        pass
    return Published(raw)


def _dated(text: str, moment: datetime, slack_format: str) -> Published:
    epoch = int(moment.timestamp())
    return Published(text, epoch, slack_format) if epoch >= 0 else Published(text)


def item_link(alert: Alert) -> str | None:
    """The story's link for ``<url|label>`` without tracking parameters or fragment.

    The raw URL must pass ``safe_link`` first, so canonicalising (which re-encodes the
    query) can never turn an unsafe link into an accepted one.
    """
    url = alert.item.url
    raw = safe_link(url)
    if raw is None:
        return None
    return safe_link(canonical_url(url)) or raw
