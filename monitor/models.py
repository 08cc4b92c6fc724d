"""The values that cross the seams between stages. Frozen, JSON-round-trippable."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "low", "medium", "high", "critical"]
TermKind = Literal["person", "place", "org", "topic"]
MATCH_FIELDS: tuple[str, ...] = ("title", "summary", "content")


@dataclass(frozen=True)
class Item:
    """One news item as a source produced it (DESIGN.md "Item").

    ``key`` is the dedupe identity (canonical URL, else guid, else content hash);
    ``id`` is the identity shown to users and used in ``monitor match`` output.
    """

    id: str
    source: str
    url: str = ""
    title: str = ""
    summary: str = ""
    content: str = ""
    published: str | None = None
    language: str | None = None
    guid: str = ""
    key: str = ""
    # The outlet's display name: the source's ``title:`` in config.yaml, else the feed's
    # own title, else empty (then the source's config name is shown).
    source_title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        known = {f for f in cls.__dataclass_fields__}
        clean = {k: v for k, v in data.items() if k in known}
        for name in ("id", "source", "url", "title", "summary", "content", "guid", "key",
                     "source_title"):
            value = clean.get(name)
            clean[name] = "" if value is None else str(value)
        if clean.get("published") is not None:
            clean["published"] = str(clean["published"])
        if not clean["key"]:
            clean["key"] = clean["id"]
        return cls(**clean)

    def field_text(self, name: str) -> str:
        return str(getattr(self, name, "") or "")


@dataclass(frozen=True)
class Term:
    """A watchlist entry: one entity with the spellings the analyst typed."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    kind: TermKind = "topic"
    match: Literal["fuzzy", "exact"] = "fuzzy"
    # True when the analyst wrote ``match:`` themselves: an acronym such as ISIS is then
    # matched as they said (``fuzzy``: case-insensitively) instead of exactly by default.
    match_set: bool = False
    threshold: float | None = None  # None: the engine's per-kind default
    # A person's family name standing alone ("Assad flees") names this person even with no
    # full mention in the item: the analyst's opt-in for headline figures. Without it a bare
    # family name counts only in an item that also names the person in full.
    short: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Rule:
    """Conditions over matched terms; referenced terms are term ids, names or aliases."""

    name: str
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    within: int | None = None
    fields: tuple[str, ...] = MATCH_FIELDS
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Watchlist:
    name: str
    terms: tuple[Term, ...]
    rules: tuple[Rule, ...] = ()
    description: str = ""
    severity: Severity = "medium"
    notify: tuple[str, ...] = ()  # empty: every notifier
    path: str = ""


@dataclass(frozen=True)
class Match:
    """One occurrence of a term in one field, with offsets into the original field text."""

    watchlist: str
    term: str  # term id
    term_name: str
    matched_text: str
    score: float
    field: str
    start: int
    end: int
    rule: str | None = None
    kind: str = "topic"  # the term's kind (person, place, org, topic): shown in alerts

    def to_json(self, item_id: str) -> dict[str, Any]:
        """The DESIGN.md ``monitor match --format jsonl`` object."""
        return {
            "item_id": item_id,
            "watchlist": self.watchlist,
            "rule": self.rule,
            "term": self.term,
            "matched_text": self.matched_text,
            "score": round(self.score, 1),
            "field": self.field,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Alert:
    """A watchlist fired on an item. ``id`` is derived from (watchlist, story), so the
    same story can never produce two alerts for one watchlist."""

    id: str
    watchlist: str
    severity: Severity
    item: Item
    matches: tuple[Match, ...]
    rule: str | None = None
    notify: tuple[str, ...] = ()
    created_at: float = 0.0

    @staticmethod
    def make_id(watchlist: str, story_key: str) -> str:
        digest = hashlib.sha256(f"{watchlist}\x00{story_key}".encode()).hexdigest()
        return f"a-{digest[:24]}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["matches"] = [asdict(m) for m in self.matches]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        return cls(
            id=data["id"],
            watchlist=data["watchlist"],
            severity=data["severity"],
            item=Item.from_dict(data["item"]),
            matches=tuple(Match(**m) for m in data["matches"]),
            rule=data.get("rule"),
            notify=tuple(data.get("notify") or ()),
            created_at=float(data.get("created_at") or 0.0),
        )


@dataclass(frozen=True)
class Delivery:
    """What a notifier reports after a successful send. ``ref`` is the destination's
    handle for the message (Slack ``ts``) when it gives one."""

    destination: str
    ref: str = ""
    reconciled: bool = False  # True when found already posted instead of posting again
    extra: dict[str, Any] = field(default_factory=dict)
