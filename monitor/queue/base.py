"""The Queue interface between stages: at-least-once, with leases and dead-lettering.

A message leaves the queue only when the consumer acks it, which it does after the next
stage has durably stored its result. A consumer that dies leaves its lease to expire, and
the message comes back to whoever claims next.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ITEMS = "items"
ALERTS = "alerts"


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    payload: dict[str, Any]
    attempts: int  # including this delivery
    receipt: Any  # opaque: what ack/nack need to find this lease


class Queue(ABC):
    """Example::

        queue.publish_many(ITEMS, [(item.key, item.to_dict())])
        for msg in queue.claim(ITEMS, limit=50):
            handle(msg.payload)       # store the result first...
            queue.ack(msg)            # ...then let the message go
    """

    @abstractmethod
    def publish_many(self, topic: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Store messages durably before returning; a key already waiting in the topic is
        not queued twice. Returns how many were new.

        Raises:
            ServiceUnavailable: the queue cannot be written (nothing was published).
        """

    @abstractmethod
    def claim(self, topic: str, limit: int, lease: float = 60.0) -> list[Message]:
        """Lease up to ``limit`` ready messages, oldest first."""

    @abstractmethod
    def ack(self, message: Message) -> bool:
        """Remove a processed message. False if the lease was lost (someone else has it)."""

    @abstractmethod
    def nack(self, message: Message, *, delay: float, error: str, max_attempts: int = 5) -> bool:
        """Processing failed: make the message ready again after ``delay``, or dead-letter
        it with ``error`` once it has been tried ``max_attempts`` times. True if dead."""

    @abstractmethod
    def depth(self, topic: str) -> int:
        """Messages waiting (ready or leased, not dead)."""

    @abstractmethod
    def dead(self, topic: str) -> list[tuple[str, str]]:
        """Dead-lettered messages as (key, reason)."""

    @abstractmethod
    def ping(self) -> None:
        """Cheap proof the queue is reachable (health's readiness check).

        Raises:
            ServiceUnavailable: it is not.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the connection."""
