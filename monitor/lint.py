"""Watchlist lints beyond schema validity: what an experienced analyst would flag in review.

Every lint is a warning (``monitor check`` prints it and still exits 0), placed at the line and
column of the spelling it is about, and aimed at a slip that costs alerts in production:

* a spelling too short to match fuzzily, or a single everyday English or French word, which
  the matcher then matches only as written (case-sensitive, whole word: "Of", the Turkish
  town, is not "of") — except a country or another place name that English uses only as a
  proper noun (``countries.py``): "Iran" is what a Syria/Iraq watchlist is made of, and
  warning on it would teach analysts to skip the warnings that matter;
* a short all-capitals spelling that is also an English word ("IS", "US", "WHO"): acronyms
  are matched case-sensitively, but an all-capitals headline ("IS IT OVER?") spells the word
  the same way; ``match: exact`` on the term says the analyst has seen this and keeps it;
* a person named by one word ("Assad"), which matches every member of that family;
* terms of different watchlists that find each other (the overlap check).

The overlap check asks the real matcher, not a string heuristic: every spelling of every
term is matched against all watchlists, so "these two terms find each other" means exactly
what it will mean in production. The other lints follow the matcher's own rule for which
spellings are exact (``index.is_acronym``), so they warn about what will really happen.

Big imported watchlists (10,000 terms) are why two things are shaped as they are. Each
warning carries its kind, so ``monitor check`` can print the first few of a kind that has
hundreds and one line counting the rest (``summarise``): nobody reads 9,000 lines, and the
rare kind that matters would drown in them. And warnings are placed without loading any
file again (``find_positions``): a file in plain block layout, as the importer writes it, is
read line by line and checked against what the loader loaded; any other is read in one
streaming pass over its YAML events. Re-loading a 10,000-term file with the round-trip
loader just to place warnings took longer than every lint together (6 s of 9).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    CollectionEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from monitor.engine.countries import is_country_or_proper_place
from monitor.engine.english import COMMON_WORDS
from monitor.engine.index import is_acronym, is_everyday_spelling
from monitor.engine.matcher import compile_watchlists
from monitor.engine.names import HONORIFICS
from monitor.errors import Problem
from monitor.models import Item, Term, Watchlist
from monitor.yamlfile import MAX_YAML_BYTES

MIN_FUZZY_LETTERS = 4
# All-capitals spellings this long (in letters) are checked against the common-word list:
# "IS", "US", "WHO" are English words in an all-capitals headline; four-letter and longer
# acronyms that spell a word are rare in this domain and left alone.
SHORT_CAPITALS = range(2, 4)

# The kinds of warning, as ``summarise`` names them.
TOO_SHORT = "too short to match fuzzily"
COMMON_WORD = "everyday word"
CAPITALS = "short all-capitals term"
SINGLE_WORD = "person named by a single word"
DUPLICATE = "duplicate term"
OVERLAP = "overlapping term"
# ``summarise``: a kind with more warnings than this is cut to its first SUMMARY_FIRST.
SUMMARY_LIMIT = 20
SUMMARY_FIRST = 5

Loc = tuple[int | str, ...]  # a path into a watchlist file: ("terms", 3, "aliases", 0)


@dataclass(frozen=True)
class LintWarning(Problem):
    """A lint's ``Problem`` (printed the same way) with the kind of lint that raised it."""

    kind: str = ""


@dataclass(frozen=True)
class _Pending:
    """A warning before its position is known."""

    watchlist: Watchlist
    loc: Loc
    kind: str
    message: str


def lint(watchlists: Sequence[Watchlist]) -> list[LintWarning]:
    """Warnings (never errors): duplicate or overlapping terms across watchlists, spellings
    too short or too common to match safely, short acronyms that are also English words, and
    people named by a single word. Each is placed at its file's line and column."""
    pending: list[_Pending] = []
    for wl in watchlists:
        for i, term in enumerate(wl.terms):
            for j, spelling in enumerate(term.spellings):
                loc: Loc = ("terms", i, "name") if j == 0 else ("terms", i, "aliases", j - 1)
                pending.extend(_Pending(wl, loc, kind, message) for kind, message in
                               _spelling_warnings(term, spelling, j > 0))
                if j == 0:
                    pending.extend(_Pending(wl, loc, kind, message)
                                   for kind, message in _person_warnings(term))
    pending.extend(_overlaps(watchlists))
    return _place(pending)


def summarise(warnings: Sequence[Problem], *, limit: int = SUMMARY_LIMIT,
              first: int = SUMMARY_FIRST) -> list[str]:
    """The lines ``monitor check`` prints: every warning of a kind that has at most
    ``limit``; of a kind with more, the first ``first`` (with their positions) and then one
    line per such kind saying how many more there are. Order is kept otherwise."""
    totals = Counter(_kind(w) for w in warnings)
    shown: Counter[str] = Counter()
    out: list[str] = []
    for w in warnings:
        kind = _kind(w)
        if totals[kind] > limit and shown[kind] >= first:
            continue
        shown[kind] += 1
        out.append(str(w))
    for kind, n in totals.items():  # in order of first appearance
        if n > limit:
            out.append(f"… and {n - shown[kind]:,} more {kind!r} warnings; --all-warnings "
                       "prints every one")
    return out


def _kind(warning: Problem) -> str:
    return warning.kind if isinstance(warning, LintWarning) else "other"


def _spelling_warnings(term: Term, spelling: str, alias: bool) -> list[tuple[str, str]]:
    # The matcher's rule (index.compile_spelling): exact when the analyst said so, or for an
    # acronym the analyst left at the default.
    everyday = not term.match_set and is_everyday_spelling(spelling)
    exact = term.match == "exact" or everyday or (is_acronym(spelling) and not term.match_set)
    capitals_only = exact and spelling.isupper()  # case-sensitive: never matches "is", "us"
    letters = sum(c.isalpha() for c in spelling)
    words = spelling.split()
    out = []
    if not exact and letters < MIN_FUZZY_LETTERS:
        out.append((TOO_SHORT, f"warning: {spelling!r} is too short to match fuzzily; "
                    "use 'match: exact' or a longer spelling"))
    if everyday and not capitals_only:
        out.append((COMMON_WORD, f"warning: {spelling!r} is an everyday English or French "
                    f"word, so it is matched only as written ({spelling!r}, case-sensitive, "
                    "whole word), never its respellings or other scripts; add an alias for "
                    "those, or set 'match: fuzzy' to accept ordinary text too"))
    elif (len(words) == 1 and words[0].casefold() in COMMON_WORDS and not capitals_only
            and not is_country_or_proper_place(spelling)):
        out.append((COMMON_WORD, f"warning: {spelling!r} is a common English word and will "
                    "match ordinary text; add context with a rule or a fuller name"))
    word = spelling.strip()
    if (not term.match_set and is_acronym(word) and len(word) in SHORT_CAPITALS
            and word.casefold() in COMMON_WORDS):
        confirm = ("give it a term of its own with 'match: exact' ('match' applies to every "
                   "spelling of a term)" if alias else "set 'match: exact'")
        out.append((CAPITALS, f"warning: {spelling!r} is a short all-capitals term, and "
                    f"all-capitals headlines spell the word {word.lower()!r} the same "
                    "way (\"IS IT OVER?\" matches 'IS'); use a fuller name (as "
                    f"'Islamic State' for IS), or {confirm} to confirm the acronym"))
    return out


def _person_warnings(term: Term) -> list[tuple[str, str]]:
    """A person whose name is one word (titles aside: "President Assad" is one word too)."""
    if term.kind != "person":
        return []
    words = [w for w in term.name.split() if w.casefold().rstrip(".") not in HONORIFICS]
    if len(words) != 1:
        return []
    # Not "add the short form as an alias": a one-word alias is a spelling of its own and
    # skips the context checks the matcher gives a full name's surname standing alone (it
    # would find "Maher al-Assad" and "the Assad regime" for Bashar al-Assad again).
    return [(SINGLE_WORD, f"warning: person {term.name!r} is named by a single word, which "
             "matches every person of that family or name; use the full name (the "
             f"matcher still finds {words[0]!r} alone where the context points to "
             "that person)")]


def _overlaps(watchlists: Sequence[Watchlist]) -> list[_Pending]:
    """Terms that find each other: each spelling, alone as an item, matched against every
    watchlist by the real matcher (one item per spelling, so nothing around it changes what
    the matcher finds: this is what it will find in production)."""
    matcher = compile_watchlists(watchlists)
    out: list[_Pending] = []
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
                    verb = "duplicates" if whole else "overlaps"
                    out.append(_Pending(wl, ("terms", i, "name"),
                                        DUPLICATE if whole else OVERLAP,
                                        f"warning: term {term.id!r} {verb} term {m.term!r} of "
                                        f"watchlist {m.watchlist!r}: {spelling!r} also "
                                        f"matches {m.term_name!r} (as {m.matched_text!r})"))
    return out


def _place(pending: Sequence[_Pending]) -> list[LintWarning]:
    """Each warning with its file, line and column (one pass over each file)."""
    wanted: dict[str, set[Loc]] = {}
    for p in pending:
        wanted.setdefault(p.watchlist.path, set()).add(p.loc)
    by_path = {wl.path: wl for wl in (p.watchlist for p in pending)}
    found = {path: find_positions(Path(path), locs, by_path[path]) if path else {}
             for path, locs in wanted.items()}
    out = []
    for p in pending:
        line, col = _deepest(found[p.watchlist.path], p.loc)
        out.append(LintWarning(p.watchlist.path or p.watchlist.name, line, col, p.message,
                               p.kind))
    return out


def _deepest(found: dict[Loc, tuple[int, int]], loc: Loc) -> tuple[int, int]:
    """As ``yamlfile.position``: the place of the deepest part of ``loc`` the file has (a
    term written as a plain string has no ``name`` key: the string's own place)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in found:
            return found[loc[:n]]
    return 1, 1


@dataclass
class _Frame:
    """An open mapping or sequence while walking the event stream."""

    path: Loc | None  # None: inside something no wanted location goes through
    mapping: bool
    index: int = 0  # sequences: the next item's index
    key: int | str | None = None  # mappings: the key whose value comes next
    expect_key: bool = True


def find_positions(path: Path, wanted: Iterable[Loc],
                   watchlist: Watchlist | None = None) -> dict[Loc, tuple[int, int]]:
    """1-based line and column of every prefix of the ``wanted`` locations that ``path``
    has, where ``yamlfile.position`` would put it: a mapping key's place for a key, an
    item's place for a sequence item.

    A file in plain block layout (``_block_positions``; what ``monitor watchlist import``
    writes) is read line by line when ``watchlist``, the file as loaded, is given. Any other
    is read by walking the parser's events (no document is built), stopped once every
    wanted location is found. The file was validated by the loader already; one that cannot
    be read or parsed now (changed meanwhile) leaves its warnings at 1:1 rather than
    failing ``check``.
    """
    remaining = set(wanted)
    prefixes = {loc[:n] for loc in remaining for n in range(len(loc) + 1)}
    found: dict[Loc, tuple[int, int]] = {}
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            return found
        text = path.read_text(encoding="utf-8")
        fast = _block_positions(text, watchlist) if watchlist is not None else None
        if fast is not None:
            return {loc: at for loc, at in fast.items() if loc in prefixes}
        stack: list[_Frame] = []
        for event in YAML(typ="safe", pure=True).parse(io.StringIO(text)):
            if isinstance(event, CollectionEndEvent):
                stack.pop()
                continue
            if not isinstance(event, NodeEvent):
                continue  # stream and document start and end
            loc, role = _locate(stack, event)
            if role != "value" and loc is not None and loc in prefixes and loc not in found:
                mark = event.start_mark
                found[loc] = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                remaining.discard(loc)
                if not remaining:
                    break
            if isinstance(event, MappingStartEvent | SequenceStartEvent):
                inside = None if role == "key" or loc not in prefixes else loc
                stack.append(_Frame(inside, isinstance(event, MappingStartEvent)))
    except (OSError, UnicodeDecodeError, YAMLError):
        pass
    return found


def _locate(stack: list[_Frame], event: NodeEvent) -> tuple[Loc | None, str]:
    """Where this node stands (None: nowhere wanted) and its role: a mapping's "key" or
    "value" (whose place is its key's), or a sequence's "item" (or the document's root)."""
    if not stack:
        return (), "item"
    top = stack[-1]
    if not top.mapping:
        top.index += 1
        return (None if top.path is None else (*top.path, top.index - 1)), "item"
    if top.expect_key:
        top.expect_key = False
        top.key = event.value if isinstance(event, ScalarEvent) else None
        role = "key"
    else:
        top.expect_key = True
        role = "value"
    if top.path is None or top.key is None:
        return None, role
    return (*top.path, top.key), role


# ---------------------------------------------------------------- block layout, fast

_TERMS_LINE = re.compile(r"terms:[ \t]*(?:#.*)?")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]+|$)")
_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029", "\ufeff", "\t")


def _block_positions(text: str, wl: Watchlist) -> dict[Loc, tuple[int, int]] | None:
    """Positions of every term's ``name`` key and every alias, read line by line, for a file
    in plain block layout: ``terms:`` at the left margin, each term a ``- key: value``
    mapping of one-line values, aliases a block list or a one-line flow list. None for any
    other layout (the caller then walks the YAML events, which reads anything).

    Thirty times faster than the parser on a 10,000-term file (0.06 s against 1.8 s), and
    safe because it proves itself: every name and alias it reads must equal, in order, what
    the loader loaded, or it gives up.
    """
    if any(c in text for c in _ODD_BREAKS):
        return None
    lines = text.split("\n")
    starts = [n for n, line in enumerate(lines) if _TERMS_LINE.fullmatch(line)]
    if len(starts) != 1:
        return None
    found: dict[Loc, tuple[int, int]] = {("terms",): (starts[0] + 1, 1)}
    names: list[str | None] = []
    aliases: list[list[str]] = []
    item_col = key_col = alias_col = -1  # columns of "- ", of keys, of alias "- " (0-based)
    in_aliases = False
    for n in range(starts[0] + 1, len(lines)):
        line = lines[n]
        body = line.lstrip(" ")
        col = len(line) - len(body)
        if not body or body.startswith("#"):
            continue
        if col == 0 and not body.startswith("- "):
            break  # the next top-level key
        if item_col < 0:
            item_col = col
        if in_aliases and body.startswith("- ") and col >= key_col:
            if alias_col < 0:
                alias_col = col
            if col != alias_col:
                return None
            value_col = col + 2 + len(body[2:]) - len(body[2:].lstrip(" "))
            value = _scalar(line[value_col:])
            if value is None:
                return None
            found[("terms", len(names) - 1, "aliases", len(aliases[-1]))] = (n + 1,
                                                                             value_col + 1)
            aliases[-1].append(value)
            continue
        if col == item_col and body.startswith("- "):
            names.append(None)
            aliases.append([])
            key_col = col + 2 + len(body[2:]) - len(body[2:].lstrip(" "))
        elif col != key_col or key_col < 0:
            return None
        in_aliases = False
        key = _KEY.match(line, key_col)
        if key is None:
            return None
        rest = line[key.end():]
        i = len(names) - 1
        if key.group(1) == "name":
            names[i] = _scalar(rest)
            found[("terms", i, "name")] = (n + 1, key_col + 1)
        elif key.group(1) == "aliases":
            if rest.strip() and not rest.lstrip().startswith("#"):
                flow = _flow_list(line, key.end())
                if flow is None:
                    return None
                for j, (value, at) in enumerate(flow):
                    found[("terms", i, "aliases", j)] = (n + 1, at + 1)
                    aliases[i].append(value)
            else:
                in_aliases, alias_col = True, -1
        elif _scalar(rest) is None:
            return None  # a value on more than one line, or a nested one
    loaded = [(t.name, list(t.aliases)) for t in wl.terms]
    return found if list(zip(names, aliases, strict=True)) == loaded else None


def _scalar(text: str) -> str | None:
    """A one-line block scalar (plain, or quoted without escapes) with its comment; None for
    anything else."""
    text = text.strip(" ")
    if text[:1] == "'":
        end, value = 1, ""
        while True:
            q = text.find("'", end)
            if q < 0:
                return None
            value += text[end:q]
            if text[q + 1:q + 2] == "'":
                value, end = value + "'", q + 2
                continue
            rest = text[q + 1:]
            break
    elif text[:1] == '"':
        q = text.find('"', 1)
        if q < 0 or "\\" in text[:q]:
            return None
        value, rest = text[1:q], text[q + 1:]
    else:
        value = text.split(" #", 1)[0].rstrip(" ")
        if not value or value[0] in "[]{}|>&*!%@`#,?:-" or ": " in value or value.endswith(":"):
            return None
        return value
    return value if not rest.strip(" ") or rest.lstrip(" ").startswith("#") else None


def _flow_list(line: str, start: int) -> list[tuple[str, int]] | None:
    """The items of a one-line flow list of scalars (``[A, 'B C']``) after ``start``, each
    with its column; None for anything else."""
    at = start + len(line[start:]) - len(line[start:].lstrip(" "))
    if line[at:at + 1] != "[":
        return None
    items: list[tuple[str, int]] = []
    pos = at + 1
    while True:
        pos += len(line[pos:]) - len(line[pos:].lstrip(" "))
        if line[pos:pos + 1] == "]" and not items:
            break
        if line[pos:pos + 1] == "'":
            end = pos + 1
            while True:
                q = line.find("'", end)
                if q < 0:
                    return None
                if line[q + 1:q + 2] == "'":
                    end = q + 2
                    continue
                break
            value, nxt = line[pos + 1:q].replace("''", "'"), q + 1
        elif line[pos:pos + 1] == '"':
            q = line.find('"', pos + 1)
            if q < 0 or "\\" in line[pos:q]:
                return None
            value, nxt = line[pos + 1:q], q + 1
        else:
            m = re.match(r"[^,\[\]{}#:'\"&*!|>%@`?]+", line[pos:])
            if m is None:
                return None
            value, nxt = m.group(0).rstrip(" "), pos + m.end()
        items.append((value, pos))
        pos = nxt + len(line[nxt:]) - len(line[nxt:].lstrip(" "))
        if line[pos:pos + 1] == ",":
            pos += 1
            continue
        if line[pos:pos + 1] == "]":
            break
        return None
    tail = line[pos + 1:].strip(" ")
    return items if not tail or tail.startswith("#") else None
