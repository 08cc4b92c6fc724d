"""ConsoleNotifier: print alerts to a terminal or log stream (the zero-config destination)."""

from __future__ import annotations

import sys
from typing import TextIO

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery
from monitor.notify.base import Notifier
from monitor.notify.format import format_console


class ConsoleNotifier(Notifier):
    """Writes ``format_console(alert)`` and a blank line, flushed, to ``stream``.

    ``stream`` defaults to the *current* ``sys.stdout`` at send time, so output redirection
    (and pytest's capture) sees it. Fields are stripped of control characters by the
    formatter, so a feed cannot send terminal escape sequences.
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
