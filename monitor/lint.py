"""Watchlist lints beyond schema validity: what an experienced analyst would flag in review.

The overlap check asks the real matcher, not a string heuristic: every spelling of every
term is matched against all watchlists, so "these two terms find each other" means exactly
what it will mean in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monitor.engine.english import COMMON_WORDS
from monitor.engine.matcher import compile_watchlists
from monitor.errors import ConfigError, Problem
from monitor.models import Item, Watchlist
from monitor.yamlfile import position, read_yaml

MIN_FUZZY_LETTERS = 4


def lint(watchlists: Sequence[Watchlist]) -> list[Problem]:
    """Warnings (never errors): duplicate or overlapping terms across watchlists, and
    spellings too short or too common to match safely."""
    where = _Positions()
    out: list[Problem] = []
    for wl in watchlists:
        for i, term in enumerate(wl.terms):
            for j, spelling in enumerate(term.spellings):
                loc: list[int | str] = (
                    ["terms", i, "name"] if j == 0 else ["terms", i, "aliases", j - 1]
                )
                out.extend(_spelling_warnings(wl, term.match, spelling, where.at(wl, loc)))
    out.extend(_overlaps(watchlists, where))
    return out


def _spelling_warnings(wl: Watchlist, mode: str, spelling: str,
                       at: tuple[str, int, int]) -> list[Problem]:
    letters = sum(c.isalpha() for c in spelling)
    words = spelling.split()
    out = []
    if mode == "fuzzy" and letters < MIN_FUZZY_LETTERS and not spelling.isupper():
        out.append(Problem(*at, f"warning: {spelling!r} is too short to match fuzzily; "
                           "use 'match: exact' or a longer spelling"))
    if len(words) == 1 and words[0].casefold() in COMMON_WORDS and not spelling.isupper():
        out.append(Problem(*at, f"warning: {spelling!r} is a common English word and will "
                           "match ordinary text; add context with a rule or a fuller name"))
    return out


def _overlaps(watchlists: Sequence[Watchlist], where: _Positions) -> list[Problem]:
    matcher = compile_watchlists(watchlists)
    out: list[Problem] = []
    reported: set[tuple[str, str, str, str]] = set()
    for wl in watchlists:
        for i, term in enumerate(wl.terms):
            for spelling in term.spellings:
                item = Item(id="lint", source="lint", title=spelling)
                for m in matcher.find(item):
                    if (m.watchlist, m.term) == (wl.name, term.id):
                        continue
                    pair = (wl.name, term.id, m.watchlist, m.term)
                    if pair in reported or pair[2:] + pair[:2] in reported:
                        continue
                    reported.add(pair)
                    whole = m.start == 0 and m.end >= len(spelling.rstrip())
                    kind = "duplicates" if whole else "overlaps"
                    out.append(Problem(*where.at(wl, ["terms", i, "name"]),
                                       f"warning: term {term.id!r} {kind} term {m.term!r} of "
                                       f"watchlist {m.watchlist!r}: {spelling!r} also matches "
                                       f"{m.term_name!r} (as {m.matched_text!r})"))
    return out


class _Positions:
    """Re-reads a watchlist file (once) to place a warning at its line and column."""

    def __init__(self) -> None:
        self.roots: dict[str, object] = {}

    def at(self, wl: Watchlist, loc: list[int | str]) -> tuple[str, int, int]:
        if wl.path not in self.roots:
            try:
                self.roots[wl.path] = read_yaml(Path(wl.path)) if wl.path else None
            except ConfigError:
                self.roots[wl.path] = None
        line, col = position(self.roots[wl.path], loc)
        return wl.path or wl.name, line, col
