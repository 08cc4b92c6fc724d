"""Normal forms every source gives its items: canonical URL, dedupe key, dates, field caps.

Stable identities (RELIABILITY.md P08) — one story, one key, however it is linked. Feeds
regenerate GUIDs, append tracking parameters and vary the case of hosts, so the dedupe key
prefers a canonical form of the link; without a link it falls back to the guid (scoped to
the source: "1", "2" … collide across feeds), and without either to a hash of title,
published date and source.

Sources also share the same field caps (B4), ISO-8601 UTC dates and newest-N truncation,
so that every source's items look alike to the matcher.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

T = TypeVar("T")

DEFAULT_PORTS = {"http": 80, "https": 443}
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "twclid", "ttclid",
        "mc_cid", "mc_eid", "igshid", "ref", "ref_src", "ref_url", "_ga", "_gl",
        "cmpid", "ncid", "ocid", "spm", "soc_src", "soc_trk", "__twitter_impression",
        "at_medium", "at_campaign", "ito", "sr_share", "_hsenc", "_hsmi",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "oly_", "vero_")
FIELD_CAPS = {"title": 1_000, "summary": 10_000, "content": 20_000}
MAX_ID_CHARS = 2_048
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T?(\d{2})(\d{2})(\d{2})Z?$")
_PARTIAL = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters,
    remaining query sorted. Path case is kept (paths are case-sensitive). A string that is
    not an absolute URL is returned stripped but otherwise unchanged."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        host = f"{userinfo}@{host}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def _is_tracking(key: str) -> bool:
    low = key.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def item_key(
    guid: str | None, url: str | None, title: str | None, published: str | None, source: str
) -> str:
    """The dedupe key: ``canonical URL`` if there is an absolute link, else
    ``guid:<source>:<guid>``, else ``sha256:<hex>`` of title, published and source."""
    if url and url.strip():
        canonical = canonical_url(url)
        if "://" in canonical:
            return canonical
    if guid and guid.strip():
        return f"guid:{source}:{guid.strip()}"
    material = "\x00".join((title or "").split()) + f"\x01{published or ''}\x01{source}"
    return "sha256:" + hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


# --- field normal forms --------------------------------------------------------------------


def cap(text: str, field: str) -> str:
    """``text`` cut to the field's cap (title 1,000 / summary 10,000 / content 20,000)."""
    limit = FIELD_CAPS.get(field)
    return text[:limit] if limit is not None else text


def iso_from_struct(parsed: time.struct_time | None) -> str | None:
    """feedparser's UTC ``*_parsed`` tuple as ``2025-02-14T10:00:00Z``; None if unusable."""
    if parsed is None:
        return None
    try:
        stamp = calendar.timegm(parsed)
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def normalise_date(value: object) -> str | None:
    """A date as ISO-8601 UTC (``2025-02-14T10:00:00Z``), or None if it is not a date.

    Accepts ISO 8601 / RFC 3339, GDELT's ``20250214T100000Z`` and ``20250214100000``,
    RFC 822 (``Fri, 14 Feb 2025 10:00:00 GMT``) and epoch seconds. Partial dates
    (``2025-02``, ``2025-02-14``) are kept as given, which ``monitor match`` tolerates.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if _PARTIAL.match(text):
        return text
    compact = _COMPACT.match(text)
    if compact:
        text = "{}-{}-{}T{}:{}:{}Z".format(*compact.groups())
    return _parse_iso(text) or _parse_rfc822(text)


def published_timestamp(published: str | None) -> float | None:
    """Epoch seconds of an item's ``published`` (as ``normalise_date`` leaves it), or None.

    A partial date counts from its start (``2025-02`` is 1 February 2025, 00:00 UTC).
    """
    if not published:
        return None
    text = published.strip()
    if _PARTIAL.match(text):
        text = (text + "-01-01")[:10]
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _from_epoch(seconds: float) -> str | None:
    if not math.isfinite(seconds):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return None


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> str | None:
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


def _parse_rfc822(text: str) -> str | None:
    try:
        return _utc(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def newest(items: Sequence[T], limit: int, published: Callable[[T], str | None]) -> list[T]:
    """The ``limit`` newest items, dated ones first, in their original order otherwise."""
    if len(items) <= limit:
        return list(items)
    dates = [published(item) for item in items]
    # Ascending by (dated, date); among equals the earlier position counts as newer,
    # since feeds list newest first.
    order = sorted(range(len(items)), key=lambda i: (dates[i] is not None, dates[i] or "", -i))
    keep = set(order[-limit:])
    return [item for i, item in enumerate(items) if i in keep]
