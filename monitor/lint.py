"""Watchlist lints beyond schema validity: what an experienced analyst would flag in review.

Every lint is a warning (``monitor check`` prints it and still exits 0), placed at the line and
column of the spelling it is about, and aimed at a slip that costs alerts in production:

* a spelling too short to match fuzzily, or a single common English word — except a country
  or another place name that English uses only as a proper noun (``countries.py``): "Iran"
  is what a Syria/Iraq watchlist is made of, and warning on it would teach analysts to skip
  the warnings that matter;
* a short all-capitals spelling that is also an English word ("IS", "US", "WHO"): acronyms
  are matched case-sensitively, but an all-capitals headline ("IS IT OVER?") spells the word
  the same way; ``match: exact`` on the term says the analyst has seen this and keeps it;
* a person named by one word ("Assad"), which matches every member of that family;
* terms of different watchlists that find each other (the overlap check).

The overlap check asks the real matcher, not a string heuristic: every spelling of every
term is matched against all watchlists, so "these two terms find each other" means exactly
what it will mean in production. The other lints follow the matcher's own rule for which
spellings are exact (``index.is_acronym``), so they warn about what will really happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monitor.engine.countries import is_country_or_proper_place
from monitor.engine.english import COMMON_WORDS
from monitor.engine.index import is_acronym
from monitor.engine.matcher import compile_watchlists
from monitor.engine.names import HONORIFICS
from monitor.errors import ConfigError, Problem
from monitor.models import Item, Term, Watchlist
from monitor.yamlfile import position, read_yaml

MIN_FUZZY_LETTERS = 4
# All-capitals spellings this long (in letters) are checked against the common-word list:
# "IS", "US", "WHO" are English words in an all-capitals headline; four-letter and longer
# acronyms that spell a word are rare in this domain and left alone.
SHORT_CAPITALS = range(2, 4)


def lint(watchlists: Sequence[Watchlist]) -> list[Problem]:
    """Warnings (never errors): duplicate or overlapping terms across watchlists, spellings
    too short or too common to match safely, short acronyms that are also English words, and
    people named by a single word."""
    where = _Positions()
    out: list[Problem] = []
    for wl in watchlists:
        for i, term in enumerate(wl.terms):
            for j, spelling in enumerate(term.spellings):
                loc: list[int | str] = (
                    ["terms", i, "name"] if j == 0 else ["terms", i, "aliases", j - 1]
                )
                at = where.at(wl, loc)
                out.extend(_spelling_warnings(term, spelling, j > 0, at))
                if j == 0:
                    out.extend(_person_warnings(term, at))
    out.extend(_overlaps(watchlists, where))
    return out


def _spelling_warnings(term: Term, spelling: str, alias: bool,
                       at: tuple[str, int, int]) -> list[Problem]:
    # The matcher's rule (index.compile_spelling): exact when the analyst said so, or for an
    # acronym the analyst left at the default.
    exact = term.match == "exact" or (is_acronym(spelling) and not term.match_set)
    capitals_only = exact and spelling.isupper()  # case-sensitive: never matches "is", "us"
    letters = sum(c.isalpha() for c in spelling)
    words = spelling.split()
    out = []
    if not exact and letters < MIN_FUZZY_LETTERS:
        out.append(Problem(*at, f"warning: {spelling!r} is too short to match fuzzily; "
                           "use 'match: exact' or a longer spelling"))
    if (len(words) == 1 and words[0].casefold() in COMMON_WORDS and not capitals_only
            and not is_country_or_proper_place(spelling)):
        out.append(Problem(*at, f"warning: {spelling!r} is a common English word and will "
                           "match ordinary text; add context with a rule or a fuller name"))
    word = spelling.strip()
    if (not term.match_set and is_acronym(word) and len(word) in SHORT_CAPITALS
            and word.casefold() in COMMON_WORDS):
        confirm = ("give it a term of its own with 'match: exact' ('match' applies to every "
                   "spelling of a term)" if alias else "set 'match: exact'")
        out.append(Problem(*at, f"warning: {spelling!r} is a short all-capitals term, and "
                           f"all-capitals headlines spell the word {word.lower()!r} the same "
                           "way (\"IS IT OVER?\" matches 'IS'); use a fuller name (as "
                           f"'Islamic State' for IS), or {confirm} to confirm the acronym"))
    return out


def _person_warnings(term: Term, at: tuple[str, int, int]) -> list[Problem]:
    """A person whose name is one word (titles aside: "President Assad" is one word too)."""
    if term.kind != "person":
        return []
    words = [w for w in term.name.split() if w.casefold().rstrip(".") not in HONORIFICS]
    if len(words) != 1:
        return []
    # Not "add the short form as an alias": a one-word alias is a spelling of its own and
    # skips the context checks the matcher gives a full name's surname standing alone (it
    # would find "Maher al-Assad" and "the Assad regime" for Bashar al-Assad again).
    return [Problem(*at, f"warning: person {term.name!r} is named by a single word, which "
                    "matches every person of that family or name; use the full name (the "
                    f"matcher still finds {words[0]!r} alone where the context points to "
                    "that person)")]


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
