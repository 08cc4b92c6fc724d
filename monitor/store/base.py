"""The Store interface: feed state, seen items, alerts and per-destination delivery state.

Delivery state is kept per (alert, destination), never per alert, so a retry never
re-posts to a destination that already has the message (RELIABILITY.md B3).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.models import Alert, Item

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


def identities(item: Item) -> list[str]:
    """The names an item is known by for dedupe: its key (canonical URL, or guid, or
    content hash) and, when it has one, its guid within its source."""
    ids = [f"key:{item.key or item.id}"]
    if item.guid:
        ids.append(f"guid:{item.source}:{item.guid}")
    return ids


@dataclass(frozen=True)
class SourceState:
    source: str
    cursor: dict[str, Any]
    last_poll: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0
    items_total: int = 0


@dataclass(frozen=True)
class DeliveryTask:
    """A leased (alert, destination) pair. ``ambiguous`` means an earlier attempt may have
    reached the destination (it crashed or timed out mid-send): reconcile before sending."""

    alert: Alert
    destination: str
    attempts: int
    ambiguous: bool
    lease_token: str


class Store(ABC):
    # --- sources -------------------------------------------------------------------------
    @abstractmethod
    def source_state(self, source: str) -> SourceState | None: ...

    @abstractmethod
    def record_poll(
        self, source: str, *, cursor: dict[str, Any] | None, error: str | None, items: int
    ) -> int:
        """Record a poll's outcome; the cursor is saved only on success (``error`` None).
        Returns the number of consecutive failures after this poll."""

    # --- seen items ----------------------------------------------------------------------
    @abstractmethod
    def unseen(self, items: Sequence[Item]) -> list[Item]:
        """The items none of whose identities (key, guid) were seen before, first of each
        identity only (a feed listing one story twice yields it once)."""

    @abstractmethod
    def mark_seen(self, items: Iterable[Item]) -> None:
        """Remember items (and keep them for backtests). Called after they are queued."""

    @abstractmethod
    def items_since(self, since: float) -> list[Item]: ...

    # --- alerts and deliveries -----------------------------------------------------------
    @abstractmethod
    def add_alert(self, alert: Alert, destinations: Sequence[str]) -> bool:
        """Store an alert and a pending delivery per destination. Idempotent: False if the
        alert id was already stored (the same story for the same watchlist)."""

    @abstractmethod
    def claim_deliveries(
        self, limit: int, lease: float, destinations: Sequence[str]
    ) -> list[DeliveryTask]:
        """Lease due deliveries, oldest first, skipping destinations that are paused."""

    @abstractmethod
    def mark_sent(self, task: DeliveryTask, ref: str, *, reconciled: bool = False) -> bool: ...

    @abstractmethod
    def mark_retry(
        self, task: DeliveryTask, *, delay: float, error: str, ambiguous: bool = False
    ) -> bool: ...

    @abstractmethod
    def mark_dead(self, task: DeliveryTask, reason: str) -> bool: ...

    @abstractmethod
    def pause_destination(self, destination: str, until: float) -> None:
        """No delivery to ``destination`` is claimed before ``until`` (a Retry-After)."""

    @abstractmethod
    def revive(self, alert_ids: Sequence[str] = ()) -> int:
        """Dead deliveries (of ``alert_ids``, or all) become pending again, due now, with
        their attempt count reset. Returns how many were revived."""

    @abstractmethod
    def delivery_counts(self) -> dict[str, int]:
        """state -> number of (alert, destination) rows."""

    @abstractmethod
    def next_delivery_due(self, destinations: Sequence[str]) -> float | None:
        """Earliest time a pending delivery becomes claimable, or None if none pending."""

    @abstractmethod
    def deliveries(self, alert_id: str | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the connection."""
