"""Readers that turn someone else's list of names into watchlist terms.

Big watchlists (a sanctions list, a register of officials) are loaded, not typed. Two
sources are read: a CSV with a header row, and OpenSanctions / FollowTheMoney entities as
JSON lines. Each reader yields ``Candidate`` terms with the line they came from; ``collect``
then cleans every spelling, drops what the matcher cannot use, merges duplicates and orders
the result, recording every decision in an ``ImportReport``. Nothing a reader meets in a
row is fatal: an analyst reviewing 10,000 imported names needs to know what was left out
and why, not a traceback at row 7,312. Only a source that cannot be read at all is an error
(``SourceUnreadable``), and a flag that does not fit the source is a usage error
(``ImportUsageError``).

Writing the YAML is the command's job (``monitor/commands/watchlist.py``).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.engine.index import is_acronym
from monitor.engine.watchlist import (
    MAX_SPELLING_CHARS,
    MAX_SPELLING_WORDS,
    MIN_SPELLING_CHARS,
    slug,
)
from monitor.engine.watchlist import spelling_problem as loader_problem
from monitor.models import Term, TermKind

# What a spelling may be is the watchlist loader's rule (``watchlist.spelling_problem``, which
# ``monitor check`` and ``run`` enforce): at most 200 characters and 12 words (a longer cell is
# a pasted paragraph or several names run together), and at least 3 letters after
# normalisation unless it is matched exactly. The importer never sets ``match: exact`` itself:
# an acronym ("UN"; ``index.is_acronym``) is matched exactly anyway, and ``monitor check``
# warns when it is also an English word ("IS"); any other short name is a decision for an
# analyst, who can add it by hand with ``match: exact``. The importer adds one rule: nothing
# of a single letter or digit, not even an acronym ("A" would match every sentence that
# starts with the article).
MAX_TERM_CHARS = MAX_SPELLING_CHARS
MIN_LETTERS = MIN_SPELLING_CHARS
DEFAULT_ALIAS_SEPARATORS = (";", "|")
CSV_DELIMITERS = (",", "\t", ";", "|")
MAX_EXAMPLES = 5  # line numbers quoted per skip reason in the report

# Header cells that obviously hold the name (compared case- and space-folded).
NAME_HEADERS = ("name", "names", "full name", "full_name", "fullname", "caption")
# Columns used without a flag when the header names them exactly as the watchlist does.
AUTO_COLUMNS = {"aliases": ("aliases", "alias"), "kind": ("kind",), "id": ("id",)}

# CSV kind values -> term kind (keys casefolded, spaces and "_"/"-" removed).
KIND_WORDS: dict[str, TermKind] = {
    **dict.fromkeys(("person", "people", "individual", "human", "naturalperson", "pep"),
                    "person"),
    **dict.fromkeys(("org", "organisation", "organization", "company", "entity",
                     "legalentity", "publicbody", "group", "agency", "institution", "body",
                     "corporation", "business", "party", "militia", "ngo"), "org"),
    **dict.fromkeys(("place", "location", "city", "town", "village", "country", "region",
                     "province", "governorate", "district", "area", "site", "address"),
                    "place"),
    **dict.fromkeys(("topic", "subject", "keyword", "term", "other"), "topic"),
}

# FollowTheMoney schemas -> term kind; every other schema (Vessel, Sanction, Ownership, …)
# is skipped and counted. Address is the one place-like schema FollowTheMoney has.
FTM_KINDS: dict[str, TermKind] = {
    "Person": "person",
    "Organization": "org",
    "Company": "org",
    "LegalEntity": "org",
    "PublicBody": "org",
    "Address": "place",
}
FTM_ALIAS_PROPS = ("alias", "previousName")
# Bidi embeddings, overrides and isolates, and directional marks: invisible in review, and
# able to make a name read differently from what it is.
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                               "\u2066\u2067\u2068\u2069"))


class SourceUnreadable(Exception):
    """The source cannot be read at all (missing, not UTF-8, malformed CSV): exit 1."""


class ImportUsageError(Exception):
    """A flag does not fit the source (no name column, an unknown column): exit 2."""


@dataclass
class Candidate:
    """One row or entity as a proposed term, before cleaning and merging."""

    line: int
    name: str
    aliases: list[str] = field(default_factory=list)
    kind: TermKind = "topic"
    id: str | None = None


@dataclass
class ImportedTerm:
    """A term ready to write: spellings cleaned, duplicates merged, id unique."""

    id: str
    name: str
    aliases: list[str]
    kind: TermKind
    lines: list[int]


@dataclass
class ImportReport:
    """What happened to every row, for the written file's header and the command's output."""

    source: str
    format: str  # "csv" | "ftm"
    unit: str  # "row" | "entity"
    read: int = 0
    imported: int = 0
    merged: int = 0
    details: list[str] = field(default_factory=list)  # format-specific lines (columns, …)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    aliases_dropped: Counter[str] = field(default_factory=Counter)
    unknown_kinds: Counter[str] = field(default_factory=Counter)
    kind_conflicts: list[int] = field(default_factory=list)
    weak_aliases: int = 0  # weakAlias values seen
    weak_kept: bool = False
    acronyms: int = 0  # spellings of two capitals kept

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.skipped_lines.setdefault(reason, []).append(line)

    def lines(self) -> list[str]:
        """The report in sentences an analyst reads, one per line, without comment marks."""
        unit = self.unit
        out = [*self.details,
               f"read {self.read:,} {_plural(unit, self.read)}: imported {self.imported:,} "
               f"term(s), merged {self.merged:,} {_plural(unit, self.merged)} into the terms "
               f"they duplicate, skipped {sum(self.skipped.values()):,}"]
        for reason, n in by_count(self.skipped):
            out.append(f"  skipped {n:,} {_plural(unit, n)}: {reason} "
                       f"({_at_lines(self.skipped_lines[reason], n)})")
        for reason, n in by_count(self.aliases_dropped):
            out.append(f"  left out {n:,} alias(es): {reason}")
        if self.unknown_kinds:
            values = counts_text(self.unknown_kinds, quote=True)
            out.append(f"  kind values not understood (the default kind was used): {values}")
        if self.kind_conflicts:
            out.append(f"  {len(self.kind_conflicts):,} merged {_plural(unit, 2)} gave another "
                       f"kind; the first one's was kept ({_at_lines(self.kind_conflicts)})")
        if self.weak_aliases and self.weak_kept:
            out.append(f"  kept {self.weak_aliases:,} weak alias(es) (--weak-aliases): short, "
                       "common strings that match ordinary text and other people; review them")
        elif self.weak_aliases:
            out.append(f"  left out {self.weak_aliases:,} weak alias(es) (weakAlias): short, "
                       "common strings (nicknames, a single given name) that would match "
                       "ordinary text and other people; --weak-aliases keeps them")
        if self.acronyms:
            out.append(f"  kept {self.acronyms:,} spelling(s) of two capital letters as "
                       "acronyms: the matcher matches them exactly (whole word, "
                       "case-sensitive); `monitor check` warns on those that are also English "
                       "words")
        if self.skipped.get(SHORT) or self.aliases_dropped.get(_as_alias(SHORT)):
            out.append(f"  a spelling of fewer than {MIN_LETTERS} letters cannot be matched "
                       "fuzzily; add one by hand with 'match: exact' (whole word, "
                       "case-sensitive) if it is meant")
        return out


EMPTY = "empty name"
TOO_LONG = f"name over {MAX_TERM_CHARS} characters"
TOO_MANY_WORDS = f"name of more than {MAX_SPELLING_WORDS} words"
SHORT = f"name of fewer than {MIN_LETTERS} letters (after normalisation)"


def by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    """Most frequent first, then alphabetical: a stable order for the report."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def counts_text(counter: Counter[str], quote: bool = False, limit: int = 10) -> str:
    """``'vessel' (12), 'ship' (3)``: the most frequent values, at most ``limit`` of them
    (a wrongly chosen column can hold thousands of distinct values)."""
    shown = by_count(counter)
    text = ", ".join(f"{v!r} ({n:,})" if quote else f"{v} ({n:,})" for v, n in shown[:limit])
    rest = len(shown) - limit
    return text + (f" and {rest:,} other value(s)" if rest > 0 else "")


def _plural(unit: str, n: int) -> str:
    if n == 1:
        return unit
    return "entities" if unit == "entity" else unit + "s"


def _at_lines(lines: Sequence[int], total: int | None = None) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_EXAMPLES])
    more = (total or len(lines)) - min(len(lines), MAX_EXAMPLES)
    word = "line" if len(lines) == 1 else "lines"
    return f"{word} {shown}" + (f" and {more:,} more" if more > 0 else "")


# ---------------------------------------------------------------- spellings

def clean_spelling(text: str) -> str:
    """One spelling as it should stand in a watchlist: NFC, control and bidi characters
    removed, every run of white space (tabs, line breaks) one space."""
    text = unicodedata.normalize("NFC", text).translate(_BIDI)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(text.split())


def fold(text: str) -> str:
    """Case and space folded: two spellings equal here are the same spelling."""
    return " ".join(text.casefold().split())


def spelling_problem(text: str) -> str | None:
    """Why this (cleaned) spelling cannot be a term's spelling, or None: the loader's own
    judgement (so an imported file is never rejected by ``check``), put in words that group
    rows by reason ("name over 200 characters"), plus the importer's one-letter rule."""
    if not text:
        return EMPTY
    if len(text) > MAX_TERM_CHARS:
        return TOO_LONG  # before the loader tokenises a paragraph
    why = loader_problem(text, Term(id="import", name=text))
    if why is None:
        return SHORT if sum(c.isalnum() for c in text) < 2 else None
    if "words" in why:
        return TOO_MANY_WORDS
    if "normalises" in why:
        return SHORT
    return f"refused by the watchlist loader ({why})"


def _as_alias(reason: str) -> str:
    return reason.replace("name", "alias", 1)


def _is_short_acronym(text: str) -> bool:
    return sum(c.isalpha() for c in text) < MIN_LETTERS and is_acronym(text)


# ---------------------------------------------------------------- CSV

@dataclass
class CsvOptions:
    """The column flags of ``monitor watchlist import`` for a CSV (header names)."""

    name_column: str | None = None
    aliases_column: str | None = None
    kind_column: str | None = None
    id_column: str | None = None
    kind: TermKind | None = None  # kind of rows without a (recognised) kind cell
    delimiter: str | None = None
    alias_separators: tuple[str, ...] = DEFAULT_ALIAS_SEPARATORS


def read_csv(path: Path, options: CsvOptions) -> tuple[list[Candidate], ImportReport]:
    """Read a UTF-8 CSV with a header row into candidates, one per non-blank row.

    The delimiter is sniffed from the header row (the one line whose cells are known to be
    short labels; a data row's alias cell may hold ``;`` or ``|`` as alias separators).

    Raises:
        SourceUnreadable: the file cannot be read, is not UTF-8, or is not well-formed CSV.
        ImportUsageError: no name column can be found, or a column flag names no column.
    """
    text = _read_text(path)
    report = ImportReport(str(path), "csv", "row")
    header_line = text.split("\n", 1)[0]
    delimiter = options.delimiter or _sniff_delimiter(header_line)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        header = next(rows, None)
        if not header or not any(cell.strip() for cell in header):
            raise SourceUnreadable(f"{path}: no header row (the first line names the columns)")
        columns = _choose_columns(header, options, path)
        default_kind: TermKind = options.kind or "topic"
        shown = {role: header[i] for role, i in columns.items()}
        report.details.append(
            f"CSV, delimiter {_show_delimiter(delimiter)}; columns: "
            + ", ".join(f"{role}={shown[role]!r}" for role in ("name", "aliases", "kind", "id")
                        if role in shown)
            + (f"; aliases split on {' or '.join(map(repr, options.alias_separators))}"
               if "aliases" in columns else "")
            + (f"; kind {default_kind} where no kind is given" if options.kind else ""))
        candidates = []
        for cells in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line is no row
            report.read += 1
            kind = default_kind
            raw_kind = _cell(cells, columns, "kind").strip()
            if raw_kind:
                mapped = KIND_WORDS.get(re.sub(r"[\s_\-]+", "", raw_kind.casefold()))
                if mapped is None:
                    report.unknown_kinds[raw_kind[:40]] += 1
                else:
                    kind = mapped
            candidates.append(Candidate(
                line=line, name=_cell(cells, columns, "name"),
                aliases=_split_aliases(_cell(cells, columns, "aliases"),
                                       options.alias_separators),
                kind=kind, id=_cell(cells, columns, "id").strip() or None))
    except csv.Error as exc:
        raise SourceUnreadable(f"{path}:{rows.line_num}: not well-formed CSV: {exc}") from None
    return candidates, report


def _cell(cells: list[str], columns: dict[str, int], role: str) -> str:
    i = columns.get(role)
    return cells[i] if i is not None and i < len(cells) else ""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceUnreadable(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                               "save it as UTF-8 and import it again") from None
    except OSError as exc:
        raise SourceUnreadable(f"{path}: cannot read: {exc.strerror or exc}") from None


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in CSV_DELIMITERS}
    best = max(CSV_DELIMITERS, key=lambda d: counts[d])  # ties: the order of CSV_DELIMITERS
    return best if counts[best] else ","


def _show_delimiter(delimiter: str) -> str:
    return {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(delimiter, repr(delimiter))


def _choose_columns(header: list[str], options: CsvOptions, path: Path) -> dict[str, int]:
    folded = [fold(h) for h in header]

    def find(flag: str, wanted: str) -> int:
        key = fold(wanted)
        if key in folded:
            return folded.index(key)
        close = difflib.get_close_matches(wanted, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ImportUsageError(f"{flag} {wanted!r}: {path} has no such column "
                               f"(columns: {', '.join(map(repr, header))}){hint}")

    columns: dict[str, int] = {}
    if options.name_column:
        columns["name"] = find("--name-column", options.name_column)
    else:
        found = [i for i, h in enumerate(folded) if h in NAME_HEADERS]
        if not found:
            raise ImportUsageError(f"{path}: no column is obviously the name (columns: "
                                   f"{', '.join(map(repr, header))}); choose one with "
                                   "--name-column")
        columns["name"] = found[0]
    flags = {"aliases": options.aliases_column, "kind": options.kind_column,
             "id": options.id_column}
    for role, wanted in flags.items():
        if wanted:
            columns[role] = find(f"--{role}-column", wanted)
        else:
            auto = [i for i, h in enumerate(folded) if h in AUTO_COLUMNS[role]]
            if auto and auto[0] != columns["name"]:
                columns[role] = auto[0]
    return columns


def _split_aliases(text: str, separators: Sequence[str]) -> list[str]:
    if not text.strip():
        return []
    parts = re.split("|".join(map(re.escape, separators)), text) if separators else [text]
    return [p for p in parts if p.strip()]


# ---------------------------------------------------------------- FollowTheMoney

def read_ftm(path: Path, weak_aliases: bool = False) -> tuple[list[Candidate], ImportReport]:
    """Read FollowTheMoney entities (OpenSanctions' JSON lines, one entity a line).

    ``Person`` becomes a person; ``Organization``, ``Company``, ``LegalEntity`` and
    ``PublicBody`` an org; ``Address`` a place (named by its ``full`` property). The first
    usable ``name`` is the term's name, the other names, ``alias`` and ``previousName`` its
    aliases; ``weakAlias`` only with ``weak_aliases`` (they are short, common strings). The
    entity id becomes the term id, so importing a newer export changes only what changed.

    Raises:
        SourceUnreadable: the file cannot be read or is not UTF-8.
    """
    text = _read_text(path)
    report = ImportReport(str(path), "ftm", "entity", weak_kept=weak_aliases)
    report.details.append("FollowTheMoney entities (JSON lines); Person -> person, "
                          "Organization/Company/LegalEntity/PublicBody -> org, Address -> "
                          "place; names: name, alias, previousName"
                          + (", weakAlias" if weak_aliases else ""))
    other_schemas: Counter[str] = Counter()
    candidates = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        report.read += 1
        try:
            entity = json.loads(raw)
        except ValueError:
            report.skip("not JSON", line)
            continue
        if not isinstance(entity, dict) or not isinstance(entity.get("schema"), str):
            report.skip("not an entity (no schema)", line)
            continue
        schema = entity["schema"]
        kind = FTM_KINDS.get(schema)
        if kind is None:
            other_schemas[schema] += 1
            report.skip("schema not imported", line)
            continue
        props = entity.get("properties")
        props = props if isinstance(props, dict) else {}
        names = _strings(props, ("full", "name") if schema == "Address" else ("name",))
        if not names and schema == "Person":
            given = " ".join(_strings(props, ("firstName",))[:1]
                             + _strings(props, ("lastName",))[:1])
            names = [given] if given.strip() else []
        if not names and isinstance(entity.get("caption"), str):
            names = [entity["caption"]]
        first = next((i for i, n in enumerate(names)
                      if spelling_problem(clean_spelling(n)) is None), 0)
        name = names[first] if names else ""
        aliases = names[:first] + names[first + 1:] + _strings(props, FTM_ALIAS_PROPS)
        weak = _strings(props, ("weakAlias",))
        report.weak_aliases += len(weak)
        if weak_aliases:
            aliases += weak
        entity_id = entity.get("id")
        candidates.append(Candidate(line=line, name=name, aliases=aliases, kind=kind,
                                    id=entity_id if isinstance(entity_id, str) else None))
    if other_schemas:
        report.details.append("schemas not imported: " + counts_text(other_schemas))
    return candidates, report


def _strings(props: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """String values of these properties (nested entities and other values ignored)."""
    out: list[str] = []
    for key in keys:
        values = props.get(key)
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            out.extend(v for v in values if isinstance(v, str))
    return out


# ---------------------------------------------------------------- terms

def collect(candidates: Iterable[Candidate], report: ImportReport) -> list[ImportedTerm]:
    """Clean, check, merge and order candidates into terms; every decision goes to ``report``.

    A candidate whose name cannot be a spelling is skipped; an alias that cannot is left
    out. Candidates with the same id, or the same name after case and space folding, are
    one term (the first one's name, kind and id; every alias). Terms come out sorted by name,
    not in source order, so that a newer export whose rows moved gives a small diff, and every
    id is unique (a duplicate id would make the whole file invalid).
    """
    terms: list[ImportedTerm] = []
    spelled: list[set[str]] = []  # per term: its spellings, folded
    by_id: dict[str, int] = {}
    by_name: dict[str, int] = {}
    for cand in candidates:
        name = clean_spelling(cand.name)
        problem = spelling_problem(name)
        if problem is not None:
            report.skip(problem, cand.line)
            continue
        aliases = []
        for alias in map(clean_spelling, cand.aliases):
            why = spelling_problem(alias)
            if why is None:
                aliases.append(alias)
            elif why != EMPTY:
                report.aliases_dropped[_as_alias(why)] += 1
        key_id = cand.id.strip() if cand.id else None
        at = by_id.get(key_id) if key_id else None
        at = by_name.get(fold(name)) if at is None else at
        if at is None:
            at = len(terms)
            terms.append(ImportedTerm(key_id or "", name, [], cand.kind, [cand.line]))
            spelled.append({fold(name)})
        else:
            report.merged += 1
            terms[at].lines.append(cand.line)
            if cand.kind != terms[at].kind:
                report.kind_conflicts.append(cand.line)
            aliases.insert(0, name)  # another spelling of the same entity (same id)
        for alias in aliases:
            if fold(alias) not in spelled[at]:
                spelled[at].add(fold(alias))
                terms[at].aliases.append(alias)
        by_name.setdefault(fold(name), at)
        if key_id:
            by_id.setdefault(key_id, at)
    for term in terms:
        term.aliases.sort(key=lambda a: (fold(a), a))
        report.acronyms += sum(map(_is_short_acronym, (term.name, *term.aliases)))
    terms.sort(key=lambda t: (fold(t.name), t.name, t.id))
    _assign_ids(terms)
    report.imported = len(terms)
    return terms


def default_id(name: str) -> str:
    """The id the loader gives a term without one (``watchlist.slug``)."""
    return slug(name)


def _assign_ids(terms: Sequence[ImportedTerm]) -> None:
    """Source ids slugged (or the name's slug; for a name with no Latin letters, a short
    hash of it, which stays the same on every import), then made unique with -2, -3, …"""
    taken: set[str] = set()
    for term in [t for t in terms if t.id] + [t for t in terms if not t.id]:
        base = slug(term.id) if term.id else slug(term.name)
        if base == "term" and not (term.id or term.name).isascii():
            digest = hashlib.sha256(fold(term.id or term.name).encode()).hexdigest()
            base = f"term-{digest[:10]}"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        term.id = candidate
