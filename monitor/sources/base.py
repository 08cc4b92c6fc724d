"""The Source interface: a place items come from, polled on a schedule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.models import Item


@dataclass(frozen=True)
class Cursor:
    """Everything a source needs to resume: stored by the scheduler after the items of a
    poll are durably queued, and handed back on the next poll (and after a restart)."""

    etag: str | None = None
    last_modified: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Cursor:
        data = data or {}
        return cls(
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True)
class PollResult:
    """What one poll found. An empty result (or ``not_modified``) is normal, not an error.
    ``warnings`` are problems that did not stop the poll (a bozo feed that still parsed,
    items dropped past the per-poll cap); the scheduler logs them once."""

    items: list[Item]
    cursor: Cursor
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)
    # A condition an operator should see in health until a later poll clears it, e.g. a
    # JSON API whose ``items`` expression finds nothing (the API changed shape).
    note: str | None = None


class Source(ABC):
    """Keeps no state between polls: everything needed to resume is in the cursor.

    Example::

        async with Fetcher() as fetcher:
            source = RssSource("aljazeera", "https://www.aljazeera.com/xml/rss/all.xml", fetcher)
            result = await source.poll(None)
            later = await source.poll(result.cursor)   # conditional GET: 304 -> no items
    """

    name: str
    url: str

    @abstractmethod
    async def poll(self, cursor: Cursor | None) -> PollResult:
        """Fetch what is new since ``cursor``.

        Raises:
            SourceError: ``.retryable`` says whether a later poll may succeed
                (timeout, 5xx, 429) or a person is needed (404, 401, not a feed).
        """
