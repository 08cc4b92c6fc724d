"""Watchlist rules (all / any / none / within / fields / sources) evaluated on matched spans.

Semantics (DESIGN.md "Watchlist"):

* A watchlist without rules fires on any term match; the Hit carries every match.
* With rules, they are tried in file order and the first that fires makes the watchlist's one
  Hit; its matches are those of the rule's ``all``/``any`` terms, with ``Match.rule`` set.
* ``sources``: the rule only considers items whose ``source`` is listed (case-insensitive).
* ``fields``: only matches in these fields count, for ``all``, ``any`` and ``none`` alike.
* ``all``: every listed term matched; ``any``: at least one listed term matched (when given);
  ``none``: no listed term matched.
* ``within: N``: one occurrence of every ``all`` term, plus one of an ``any`` term when
  ``any`` is given, lie in one field with at most N words between the first occurrence's
  last word and the last occurrence's first word.

Terms are referred to by id, name or alias, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.engine.base import Hit
from monitor.engine.watchlist import term_reference_map
from monitor.models import Item, Match, Rule, Watchlist


@dataclass(frozen=True, slots=True)
class Located:
    """A match plus the word positions (token indices in its field) it covers."""

    match: Match
    first: int
    last: int


def apply_rules(wl: Watchlist, item: Item, located: Sequence[Located]) -> Hit | None:
    """The watchlist's Hit for this item, or None when it does not fire."""
    if not located:
        return None
    if not wl.rules:
        return Hit(wl, tuple(loc.match for loc in located), None)
    refs = term_reference_map(wl.terms)
    for rule in wl.rules:
        used = evaluate(rule, item, located, refs)
        if used is not None:
            return Hit(wl, tuple(replace(loc.match, rule=rule.name) for loc in used), rule.name)
    return None


def _ids(names: Sequence[str], refs: dict[str, str]) -> list[str]:
    return [refs.get(n.casefold(), n) for n in names]


def evaluate(rule: Rule, item: Item, located: Sequence[Located],
             refs: dict[str, str]) -> list[Located] | None:
    """The matches that make ``rule`` fire on ``item``, or None."""
    if rule.sources and item.source.casefold() not in {s.casefold() for s in rule.sources}:
        return None
    pool = [loc for loc in located if loc.match.field in rule.fields]
    by_term: dict[str, list[Located]] = {}
    for loc in pool:
        by_term.setdefault(loc.match.term, []).append(loc)
    all_ids, any_ids = _ids(rule.all, refs), _ids(rule.any, refs)
    if any(t in by_term for t in _ids(rule.none, refs)):
        return None
    if any(t not in by_term for t in all_ids):
        return None
    if any_ids and not any(t in by_term for t in any_ids):
        return None
    used = [loc for t in dict.fromkeys(all_ids + any_ids) for loc in by_term.get(t, [])]
    if rule.within is None:
        return used
    return _within(used, all_ids, any_ids, rule.within)


def _within(used: list[Located], all_ids: list[str], any_ids: list[str],
            limit: int) -> list[Located] | None:
    """The smallest window (per field) holding every ``all`` term and one ``any`` term."""
    need_all = set(all_ids)
    need_any = set(any_ids)
    fields = {loc.match.field for loc in used}
    for field in sorted(fields):
        seq = sorted((loc for loc in used if loc.match.field == field), key=lambda x: x.first)
        for i, head in enumerate(seq):
            window: list[Located] = []
            for loc in seq[i:]:
                if loc.first - head.last - 1 > limit and loc is not head:
                    break
                window.append(loc)
                terms = {w.match.term for w in window}
                if need_all <= terms and (not need_any or terms & need_any):
                    return window
    return None
