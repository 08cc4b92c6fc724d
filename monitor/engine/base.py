"""The Matcher interface: every watchlist compiled into one object, applied per item."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.models import Item, Match, Watchlist


@dataclass(frozen=True)
class Hit:
    """A watchlist fired on an item: the rule that fired (None when the watchlist has no
    rules and any term match alerts) and every match that supports it."""

    watchlist: Watchlist
    matches: tuple[Match, ...]
    rule: str | None = None


class Matcher(ABC):
    """Compiled once per set of watchlists (cheap to call, costly to build); immutable, so a
    hot reload builds a new one off the hot path and swaps the reference.

    Example::

        matcher = compile_watchlists([load_watchlist(Path("rules/syria-iraq.yaml"))])
        for hit in matcher.match(item):
            print(hit.watchlist.name, [m.matched_text for m in hit.matches])
    """

    watchlists: Sequence[Watchlist]

    @abstractmethod
    def find(self, item: Item) -> list[Match]:
        """Every term occurrence in the item's title/summary/content, with offsets into the
        original field text. Rules are not applied (``Match.rule`` is None)."""

    @abstractmethod
    def match(self, item: Item) -> list[Hit]:
        """Term matches with each watchlist's rules applied: one Hit per watchlist that
        fires. A watchlist whose rule restricts ``sources`` ignores other sources."""
