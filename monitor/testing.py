"""Fakes shipped with the package for users' own tests (and our unit tests).

``RecordingNotifier`` records what it is asked to send and can be scripted to fail, so a
test of routing or retry policy needs no network. Acceptance tests use real servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery, Item
from monitor.notify.base import Notifier


class RecordingNotifier(Notifier):
    def __init__(self, name: str = "recording", script: Iterable[NotifyError] = (),
                 can_reconcile: bool = False) -> None:
        self.name = name
        self.script = list(script)
        self.can_reconcile = can_reconcile
        self.sent: list[tuple[float, Alert]] = []
        self.attempts: list[float] = []
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> Delivery:
        with self._lock:
            self.attempts.append(time.monotonic())
            if self.script:
                error = self.script.pop(0)
                if error.ambiguous:  # the destination took it, but we never heard back
                    self.sent.append((time.monotonic(), alert))
                raise error
            self.sent.append((time.monotonic(), alert))
            return Delivery(self.name, ref=f"ref-{len(self.sent)}")

    def reconcile(self, alert: Alert) -> Delivery | None:
        if not self.can_reconcile:
            return None
        with self._lock:
            if any(a.id == alert.id for _, a in self.sent):
                return Delivery(self.name, ref="found", reconciled=True)
        return None


def make_item(n: int = 1, **fields: str) -> Item:
    base = {"id": f"item-{n}", "source": "test", "url": f"https://example.org/{n}",
            "title": f"Story {n}", "key": f"https://example.org/{n}"}
    return Item.from_dict(base | fields)
