"""An alert as inert Slack Block Kit (RELIABILITY.md B5, X01–X03, N08).

What the message shows: severity, watchlist and the rule that fired; the title linked; the
outlet and publication time; the passage where the alert fired (``passages``: for a rule,
the span holding its matches together, not merely the first mention) with every match in
bold, plus up to two short passages for other terms; each matched term with its kind and
the spelling found.

Every untrusted string (feed fields, and the analysts' own YAML: watchlist, rule and term
names, kinds, the outlet's display name) is cleaned (``text``) and made inert (``mrkdwn``)
before it reaches a block. The only markup is this module's template: bold around matches,
the title link (built only from ``safe_link`` URLs) and one ``<!…>`` token, the publication
time, ``<!date^UNIX^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>``, built only from a
parsed datetime (``read_published``), so Slack shows each reader local time; an
unparseable ``published`` value is shown as escaped text, never inside a token.

Every mrkdwn text object carries ``verbatim: true`` (Slack then auto-links nothing), and the
notifier sends ``unfurl_links``/``unfurl_media`` false and never ``link_names`` or ``parse``.

Limits (N08): message ``text`` ≤ 40,000, ≤ 50 blocks, section text ≤ 3,000 after escaping,
counted and cut as ``mrkdwn`` describes (UTF-16 units, never inside an entity or a link).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.models import Alert
from monitor.notify.facts import (
    DATE_LIMIT,
    SOURCE_LIMIT,
    TITLE_LIMIT,
    Published,
    alert_names,
    item_link,
    matched_terms,
    outlet_name,
    read_published,
)
from monitor.notify.mrkdwn import fit_plain, inert, render_segments, slack_escape, slack_len
from monitor.notify.passages import passage_segments
from monitor.notify.text import clean_inline, field_to_text

TEXT_LIMIT = 40_000
BLOCK_LIMIT = 50
SECTION_LIMIT = 3_000
HEADER_LIMIT = 150
BLOCK_ID_LIMIT = 255
FALLBACK_NAMES_LIMIT = 400  # watchlist and rule names in the notification text

SEVERITY_MARK = {"info": "⚪", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}


def published_mrkdwn(published: Published) -> str:
    """The template's ``<!date^…>`` token, the only ``<!…>`` this module writes.

    Every part is made here from a parsed datetime (digits, the fixed format, a fallback of
    digits, ``-``, ``:`` and ``UTC``); feed text only ever reaches the plain-text branch,
    cleaned, neutralised and escaped.
    """
    if published.epoch is None:
        return fit_plain(published.text, DATE_LIMIT)
    fallback = slack_escape(published.text)
    return f"<!date^{published.epoch}^{published.slack_format}|{fallback}>"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _fit_parts(parts: Sequence[str], limit: int) -> list[str]:
    """Each plain part made inert and cut so together they fit ``limit`` UTF-16 units:
    short parts stay whole and the long ones share what is left, so a huge watchlist name
    cannot push the rule name out of a header (or the other way round)."""
    parts = [p[: limit + 1] for p in parts]  # the rest could never fit (see ``fit_plain``)
    out = [inert(p) for p in parts]
    left = limit
    order = sorted(range(len(parts)), key=lambda i: slack_len(out[i]))
    for n, i in enumerate(order):
        share = left // (len(parts) - n)
        if slack_len(out[i]) > share:
            out[i] = fit_plain(parts[i], share)
        left -= slack_len(out[i])
    return out


def _header_text(alert: Alert) -> str:
    mark = SEVERITY_MARK.get(alert.severity, "")
    prefix = inert(f"{mark} {alert.severity.upper()} · ".lstrip())
    fixed = slack_len(prefix) + (slack_len(" · rule: ") if alert.rule is not None else 0)
    parts = _fit_parts(alert_names(alert), HEADER_LIMIT - fixed)
    return (prefix + " · rule: ".join(parts)).strip()


def _title_line(alert: Alert) -> str:
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    label = fit_plain(title, TITLE_LIMIT)
    link = item_link(alert)
    return f"*<{link}|{label}>*" if link else f"*{label}*"


def _meta_line(alert: Alert) -> str:
    outlet = fit_plain(outlet_name(alert) or "unknown source", SOURCE_LIMIT)
    published = published_mrkdwn(read_published(alert.item.published))
    return f"Source: {outlet} · Published: {published}"


def _passages_text(alert: Alert) -> str:
    """All passages in one section of at most ``SECTION_LIMIT`` units after escaping.

    When they do not fit whole, the later (shorter) passages get an equal share each and
    the first passage, where the alert fired, gets the rest.
    """
    passages = passage_segments(alert)
    if not passages:
        return "(no text)"
    full = [render_segments(p, SECTION_LIMIT) for p in passages]
    if slack_len("\n".join(full)) <= SECTION_LIMIT:
        return "\n".join(full)
    budget = SECTION_LIMIT - (len(passages) - 1)
    share = budget // len(passages)
    rest = [
        f if slack_len(f) <= share else render_segments(p, share)
        for p, f in zip(passages[1:], full[1:], strict=True)
    ]
    first_budget = budget - sum(slack_len(r) for r in rest)
    first = (
        full[0]
        if slack_len(full[0]) <= first_budget
        else (render_segments(passages[0], first_budget))
    )
    return "\n".join([first, *rest])


def build_slack_message(alert: Alert) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}`` for ``chat.postMessage`` or a webhook.

    Blocks: header (severity, watchlist, rule; ``block_id`` is the alert id, so a
    webhook-path checker and a human with the message JSON can tie a post to its alert),
    the title linked to the cleaned URL, a context line (outlet, publication time in the
    reader's zone), the passages where the alert fired with matches in bold, and the
    matched terms with their kinds. Every untrusted string passes through ``text`` and
    ``mrkdwn`` (module doc); the result respects Slack's size limits for any input.
    """
    terms_text = render_segments(
        [("Matched: " + " · ".join(matched_terms(alert)), False)], SECTION_LIMIT
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "block_id": alert.id[:BLOCK_ID_LIMIT],
            "text": {"type": "plain_text", "text": _header_text(alert), "emoji": True},
        },
        {"type": "section", "text": _mrkdwn(_title_line(alert))},
        {"type": "context", "elements": [_mrkdwn(_meta_line(alert))]},
        {"type": "section", "text": _mrkdwn(_passages_text(alert))},
        {"type": "context", "elements": [_mrkdwn(terms_text)]},
    ]
    return {"text": fallback_text(alert), "blocks": blocks[:BLOCK_LIMIT]}


def fallback_text(alert: Alert) -> str:
    """The notification / screen-reader text: severity, watchlist, rule, title.

    Inert and far below 40,000: names share ``FALLBACK_NAMES_LIMIT``, the title ≤ 300.
    """
    parts = _fit_parts(alert_names(alert), FALLBACK_NAMES_LIMIT)
    names = parts[0] + (f" (rule: {parts[1]})" if len(parts) > 1 else "")
    head = f"[{inert(alert.severity.upper())}] {names}: "
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    return head + fit_plain(title, min(TITLE_LIMIT, TEXT_LIMIT - slack_len(head)))
