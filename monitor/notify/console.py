"""ConsoleNotifier: print alerts to a terminal or log stream (the zero-config destination).

``format_console`` renders the same facts as the Slack message as plain text, one labelled
line each, with matches marked ``[[like this]]``. Every field goes through
``monitor.notify.text`` first, so a feed cannot send terminal escape sequences.
"""

from __future__ import annotations

import sys
from typing import TextIO

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery
from monitor.notify.base import Notifier
from monitor.notify.facts import (
    DATE_LIMIT,
    SOURCE_LIMIT,
    TITLE_LIMIT,
    alert_names,
    item_link,
    matched_terms,
    outlet_name,
    read_published,
)
from monitor.notify.passages import passage_segments
from monitor.notify.text import ELLIPSIS, clean_inline, field_to_text


class ConsoleNotifier(Notifier):
    """Writes ``format_console(alert)`` and a blank line, flushed, to ``stream``.

    ``stream`` defaults to the *current* ``sys.stdout`` at send time, so output redirection
    (and pytest's capture) sees it. ``format_console`` strips control characters from every
    field, so a feed cannot send terminal escape sequences.
    """

    def __init__(self, name: str = "console", stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    def __repr__(self) -> str:
        return f"ConsoleNotifier(name={self.name!r})"

    def send(self, alert: Alert) -> Delivery:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(format_console(alert) + "\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # closed pipe or closed file
            raise NotifyError(f"console: cannot write ({exc})", retryable=False) from exc
        return Delivery(destination=self.name)


def format_console(alert: Alert) -> str:
    """A plain-text block for a terminal with the same facts as the Slack message; matches
    are marked ``[[like this]]`` and each passage has its own line.

    Control characters (terminal escape sequences included) are stripped from every field.
    """
    item = alert.item
    title = clean_inline(field_to_text(item.title)).strip() or "(untitled)"
    passages = [
        "".join(f"[[{t}]]" if bold else t for t, bold in segments).strip()
        for segments in passage_segments(alert)
    ] or ["(no text)"]
    link = item_link(alert)
    names = [_clip(n, SOURCE_LIMIT) for n in alert_names(alert)]
    lines = [
        f"[{alert.severity.upper()}] {names[0]}  (alert {alert.id})",
        f"  rule:      {names[1] if len(names) > 1 else '(none: any term alerts)'}",
        f"  title:     {_clip(title, TITLE_LIMIT)}",
        f"  url:       {link.replace('&amp;', '&') if link else '(no usable link)'}",
        f"  source:    {_clip(outlet_name(alert) or 'unknown source', SOURCE_LIMIT)}",
        f"  published: {_clip(read_published(item.published).text, DATE_LIMIT)}",
        f"  snippet:   {passages[0]}",
        *(f"             {p}" for p in passages[1:]),
        f"  matched:   {_clip(' · '.join(matched_terms(alert)), 1_000)}",
    ]
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
