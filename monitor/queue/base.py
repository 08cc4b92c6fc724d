"""The queue seam between stages, in three parts, shaped so SQLite and Kafka both fit.

* ``Publisher``: puts messages on a topic; stored (SQLite) or produced with ``acks=all``
  (Kafka) before it returns.
* ``Subscription``: one consumer group reading one topic, used from ONE thread (a Kafka
  consumer is not thread-safe; neither is the bookkeeping of what was handed out).
  ``poll`` hands out messages, ``commit`` says "processed, and the result is durably
  stored downstream", ``retry`` says "failed: try again later, or dead-letter it".
* ``QueueAdmin``: depth (Kafka: the group's lag), dead letters and a reachability check,
  safe to call from any thread (the HTTP server's, ``monitor status``).

``Queue`` is a backend: the publisher itself, plus ``subscribe`` and ``admin``.

Delivery is at-least-once. A message neither committed nor retried is handed out again:
by the next ``poll`` of the same subscription (a batch cut short by an error), or, when
the subscriber died, to whoever reads next (SQLite: once its lease expires; Kafka: at the
group's next assignment, from the last committed offset). Stages make the repeat harmless
with ids derived from content.

Example::

    queue.publish_many(ITEMS, [(item.key, item.to_dict())])
    sub = queue.subscribe(ITEMS)              # group "match"; this thread only
    batch = sub.poll(50, timeout=0.2)
    for msg in batch:
        handle(msg.payload)                   # store the result first...
    sub.commit(batch)                         # ...then let the messages go
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ITEMS = "items"
ALERTS = "alerts"
TOPICS = (ITEMS, ALERTS)
#: The consumer group that reads each topic, named by the role that will own it (the
#: match role matches items; the notify role takes alerts into the outbox). Every process
#: of a role shares its group, so the topic's partitions are split between them.
GROUPS = {ITEMS: "match", ALERTS: "notify"}
#: Attempts before a message that keeps failing is dead-lettered.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Message:
    topic: str  # the logical topic (ITEMS, ALERTS), also for a message back from a retry
    key: str
    payload: dict[str, Any]
    attempts: int  # including this delivery (Kafka counts failures, not redeliveries)
    receipt: Any  # opaque: what commit and retry need to find this delivery


class Publisher(ABC):
    @abstractmethod
    def publish_many(self, topic: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Put ``(key, payload)`` messages on ``topic``, durably, before returning.

        SQLite skips a key already waiting in the topic and returns how many were new.
        Kafka partitions by key (one story, one partition, in order) and returns how many
        were produced: it cannot dedupe, so a repeat is deduplicated downstream by id.

        Raises:
            ServiceUnavailable: the queue cannot be written (StoreError: the broker or the
                disk failed). SQLite published nothing; Kafka may have produced part, which
                a retry repeats harmlessly.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""


class Subscription(ABC):
    """One group reading one topic. Not thread-safe: poll, commit and retry from the one
    thread that owns it (Kafka raises if another thread tries)."""

    topic: str
    group: str

    @abstractmethod
    def poll(self, limit: int, timeout: float = 0.0) -> list[Message]:
        """Up to ``limit`` messages that are ready, oldest first per key, waiting at most
        ``timeout`` seconds for some (SQLite answers at once). Messages of an earlier poll
        that are neither committed nor retried are handed out again, first.

        Raises:
            ServiceUnavailable: the queue cannot be read.
        """

    @abstractmethod
    def commit(self, messages: Sequence[Message]) -> None:
        """These messages are processed and their results durably stored downstream: they
        are not handed out again. Order does not matter: Kafka commits, per partition, the
        offset after the highest contiguous processed one, so a message completed out of
        order waits for the ones before it (and comes again if the subscriber dies first).

        Raises:
            ServiceUnavailable: the commit failed; the messages may be handed out again.
        """

    @abstractmethod
    def retry(self, message: Message, *, delay: float, error: str,
              max_attempts: int = MAX_ATTEMPTS) -> bool:
        """Processing failed: hand the message out again after ``delay`` seconds, or, once
        it has been tried ``max_attempts`` times, dead-letter it with ``error`` as the
        reason. Either way this delivery is finished. Returns True if dead-lettered.

        Raises:
            ServiceUnavailable: the retry could not be recorded; the message comes again.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Leave the group; what was not committed is handed out again to the next reader."""


class QueueAdmin(ABC):
    """What operators ask of a queue. Safe from any thread."""

    @abstractmethod
    def depth(self, topic: str) -> int:
        """Messages waiting to be processed by the topic's group: SQLite, ready or leased
        (not dead); Kafka, the group's lag on the topic and on its retry topic."""

    @abstractmethod
    def dead(self, topic: str) -> list[tuple[str, str]]:
        """Dead-lettered messages of ``topic`` as (key, reason), oldest first."""

    @abstractmethod
    def ping(self) -> None:
        """Cheap proof the queue is reachable (health's readiness check).

        Raises:
            ServiceUnavailable: it is not.
        """


class Queue(Publisher):
    """A queue backend: publish here, ``subscribe`` to consume, ``admin`` to look."""

    @abstractmethod
    def subscribe(self, topic: str, group: str | None = None) -> Subscription:
        """A subscription to ``topic`` for ``group`` (default: ``GROUPS[topic]``). SQLite
        has one group per topic: its subscriptions compete for messages through leases."""

    @property
    @abstractmethod
    def admin(self) -> QueueAdmin:
        """The thread-safe view for health, metrics and ``monitor status``."""

    def ping(self) -> None:
        self.admin.ping()
