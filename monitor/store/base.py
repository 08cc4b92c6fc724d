"""The Store interface: feed state, seen items, alerts and per-destination delivery state.

Delivery state is kept per (alert, destination), never per alert, so a retry never
re-posts to a destination that already has the message (RELIABILITY.md B3).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.models import Alert, Item

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
# A delivery to a notifier that was switched off when the alert was stored (its secret was
# empty): kept with the reason, counted in health, sent by ``monitor alerts retry``.
SKIPPED = "skipped"


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
    items_last: int = 0  # items in the last successful poll's response
    next_poll: float | None = None  # when the running daemon polls it next
    note: str | None = None  # a condition of the last successful poll worth showing
    primed_at: float | None = None  # the first successful poll, which primed the source
    primed_items: int = 0  # items in that poll
    primed_alerted: int = 0  # of those, the ones new enough to go on to matching
    primed_backfill: str | None = None

    @property
    def primed(self) -> bool:
        """Whether the source's first successful poll has been recorded (so it is not
        primed again)."""
        return self.last_success is not None


@dataclass(frozen=True)
class Priming:
    """What a source's first successful poll did: ``items`` in the response, ``alerted``
    of them passed on to matching (published within ``backfill``), the rest marked seen."""

    items: int
    alerted: int
    backfill: str


@dataclass(frozen=True)
class DestinationState:
    """A destination's recent delivery record: ``failures`` counts consecutive failed
    attempts (rate limits excluded), reset by a success."""

    destination: str
    failures: int = 0
    last_error: str | None = None
    last_failure: float | None = None
    last_success: float | None = None


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
        self,
        source: str,
        *,
        cursor: dict[str, Any] | None,
        error: str | None,
        items: int,
        fetched: int | None = None,
        note: str | None = None,
        primed: Priming | None = None,
    ) -> int:
        """Record a poll's outcome; the cursor is saved only on success (``error`` None).
        ``items``: new items queued; ``fetched``: items in the response; ``note``: a
        condition to show until a later successful poll clears it; ``primed``: this was
        the source's first successful poll. Returns the consecutive failures after it."""

    @abstractmethod
    def set_next_poll(self, source: str, when: float | None) -> None:
        """When the daemon will poll ``source`` next (shown by ``monitor status``)."""

    # --- seen items ----------------------------------------------------------------------
    @abstractmethod
    def take_poll_lease(self, source: str, holder: str, until: float, *,
                        shared: bool = True) -> bool:
        """Take ``source``'s poll lease for ``holder`` until ``until`` (epoch seconds), in
        one statement: True when taken. ``shared``: only if no other lease is in force
        (several pollers on one store); otherwise unconditionally (the only poller)."""

    @abstractmethod
    def release_poll_leases(self, holder: str) -> None:
        """Give back every poll lease ``holder`` holds (a clean shutdown)."""

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
    def add_alert(
        self,
        alert: Alert,
        destinations: Sequence[str],
        skipped: Mapping[str, str] | None = None,
    ) -> bool:
        """Store an alert, a pending delivery per destination and a ``skipped`` one (with
        its reason) per destination that is switched off. Idempotent: False if the alert id
        was already stored (the same story for the same watchlist)."""

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
    def revive(
        self,
        alert_ids: Sequence[str] = (),
        *,
        destinations: Sequence[str] | None = None,
        since: float | None = None,
        states: Sequence[str] = (DEAD,),
    ) -> int:
        """Deliveries in ``states`` (dead by default; ``skipped`` too when asked) become
        pending again, due now, with their attempt count reset and a fresh max age.
        Filters: ``alert_ids`` (or all), ``destinations`` (or all), created at or after
        ``since``. Returns how many were revived."""

    @abstractmethod
    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        """The ids among ``alert_ids`` that are stored."""

    @abstractmethod
    def record_destination(self, destination: str, error: str | None) -> None:
        """One delivery attempt's outcome: None for success (resets the failure count)."""

    @abstractmethod
    def destination_states(self) -> list[DestinationState]: ...

    @abstractmethod
    def ping(self) -> None:
        """Cheap proof the store is reachable and is the store we opened.

        Raises:
            ServiceUnavailable: it is not (file gone or replaced, server down, locked).
        """

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
