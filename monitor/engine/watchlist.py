"""rules/NAME.yaml -> Watchlist. Every problem in a file is collected and reported at once,
as ``file:line:col: message``; a file with any problem is rejected whole."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from monitor.errors import ConfigError, Problem
from monitor.models import MATCH_FIELDS, Rule, Term, Watchlist
from monitor.yamlfile import position, read_yaml, to_plain, validation_problems

WATCHLIST_SUFFIXES = (".yaml", ".yml")


FieldName = Literal["title", "summary", "content"]
_ALL_FIELDS: tuple[FieldName, ...] = ("title", "summary", "content")
assert _ALL_FIELDS == MATCH_FIELDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermSpec(_Strict):
    id: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    kind: Literal["person", "place", "org", "topic"] = "topic"
    match: Literal["fuzzy", "exact"] | None = None
    threshold: float | None = Field(default=None, ge=0, le=100)
    short: bool | None = None  # a person's bare family name counts alone; default: watchlist's

    @field_validator("name", "aliases")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if any(not str(v).strip() for v in values):
            raise ValueError("must not be blank")
        return value


class RuleSpec(_Strict):
    name: str = Field(min_length=1)
    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    none: list[str] = Field(default_factory=list)
    within: int | None = Field(default=None, ge=1, le=10_000)
    fields: list[FieldName] = Field(default_factory=lambda: list(_ALL_FIELDS))
    sources: list[str] = Field(default_factory=list)


def _term_shorthand(value: Any) -> Any:
    """``terms: [Rutba, Anbar]``: a plain string is a term with only a name."""
    return {"name": value} if isinstance(value, str) else value


class WatchlistSpec(_Strict):
    watchlist: str | None = Field(default=None, min_length=1)
    description: str = ""
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    notify: list[str] = Field(default_factory=list)
    short: bool = False  # default of every person term's ``short``
    terms: list[Annotated[TermSpec, BeforeValidator(_term_shorthand)]] = Field(min_length=1)
    rules: list[RuleSpec] = Field(default_factory=list)


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "term"


def load_watchlist(path: Path, notifiers: Sequence[str] | None = None) -> Watchlist:
    """Read and validate one watchlist file. ``notifiers``: the names config.yaml defines;
    when given, ``notify:`` may only name those (a typo would silently route nowhere).

    Raises:
        ConfigError: with every problem found (syntax, schema, duplicate ids, rules that
            name unknown terms, unknown notifiers), each placed at its line and column.
    """
    name = str(path)
    root = read_yaml(path)
    if root is None:
        raise ConfigError([Problem(name, 1, 1, "the file is empty; a watchlist needs terms")])
    if not isinstance(root, dict):
        raise ConfigError([Problem(name, 1, 1, "a watchlist must be a mapping with 'terms'")])
    try:
        spec = WatchlistSpec.model_validate(to_plain(root))
    except ValidationError as exc:
        raise ConfigError(validation_problems(name, root, exc, WatchlistSpec)) from None
    watchlist = _build(spec, path)
    problems = _cross_check(spec, watchlist, root, name)
    if notifiers is not None:
        problems += _notify_problems(spec, root, name, notifiers)
    if problems:
        raise ConfigError(problems)
    return watchlist


def _build(spec: WatchlistSpec, path: Path) -> Watchlist:
    terms = tuple(
        Term(
            id=t.id or slug(t.name),
            name=t.name.strip(),
            aliases=tuple(a.strip() for a in t.aliases),
            kind=t.kind,
            match=t.match or "fuzzy",
            match_set=t.match is not None,
            threshold=t.threshold,
            short=t.short if t.short is not None else spec.short,
        )
        for t in spec.terms
    )
    rules = tuple(
        Rule(
            name=r.name,
            all=tuple(r.all),
            any=tuple(r.any),
            none=tuple(r.none),
            within=r.within,
            fields=tuple(r.fields),
            sources=tuple(r.sources),
        )
        for r in spec.rules
    )
    return Watchlist(
        name=spec.watchlist or path.stem,
        terms=terms,
        rules=rules,
        description=spec.description,
        severity=spec.severity,
        notify=tuple(spec.notify),
        path=str(path),
    )


MAX_SPELLING_CHARS = 200  # a name, not a paragraph: bounds the work per item and term
MAX_SPELLING_WORDS = 12
MIN_SPELLING_CHARS = 3  # letters and digits after normalisation, unless ``match: exact``


def spelling_problem(text: str, term: Term) -> str | None:
    """Why a spelling cannot be matched safely, or None.

    Matching cost grows with a spelling's length (each of its words is verified around
    every candidate in an item), so a spelling is a name's length at most; and a spelling
    that normalises to one or two characters ("(a+)+$" becomes "a") would match everyday
    words unless the analyst asked for exact, case-sensitive matching.
    """
    from monitor.engine.index import is_acronym
    from monitor.engine.tokens import tokenize

    if len(text) > MAX_SPELLING_CHARS:
        return f"is {len(text)} characters long; a spelling may have at most {MAX_SPELLING_CHARS}"
    keys = tokenize(text, len(text)).keys()
    if len(keys) > MAX_SPELLING_WORDS:
        return f"has {len(keys)} words; a spelling may have at most {MAX_SPELLING_WORDS}"
    letters = sum(len(k.lstrip("~")) for k in keys)
    if letters < MIN_SPELLING_CHARS and term.match != "exact" and not is_acronym(text):
        return (f"normalises to {letters} letter(s); write at least {MIN_SPELLING_CHARS}, or "
                "set 'match: exact' to match it as written (whole word, case-sensitive)")
    return None


def _cross_check(spec: WatchlistSpec, wl: Watchlist, root: Any, name: str) -> list[Problem]:
    problems: list[Problem] = []
    for i, term in enumerate(wl.terms):
        for j, text in enumerate(term.spellings):
            why = spelling_problem(text, term)
            if why:
                loc: list[int | str] = ["terms", i, "name"] if j == 0 else \
                    ["terms", i, "aliases", j - 1]
                line, col = position(root, loc)
                where = "name" if j == 0 else f"aliases[{j - 1}]"
                problems.append(Problem(name, line, col, f"terms[{i}].{where}: {text[:40]!r}"
                                        f"{'…' if len(text) > 40 else ''} {why}"))
    seen: dict[str, int] = {}
    for i, term in enumerate(wl.terms):
        if term.id in seen:
            line, col = position(root, ["terms", i])
            problems.append(
                Problem(name, line, col, f"terms[{i}]: duplicate term id {term.id!r} "
                        f"(also terms[{seen[term.id]}])")
            )
        seen.setdefault(term.id, i)
    refs = term_reference_map(wl.terms)
    rule_names: set[str] = set()
    for i, rule in enumerate(spec.rules):
        if rule.name in rule_names:
            line, col = position(root, ["rules", i, "name"])
            problems.append(
                Problem(name, line, col, f"rules[{i}].name: duplicate rule {rule.name!r}")
            )
        rule_names.add(rule.name)
        if not (rule.all or rule.any):
            line, col = position(root, ["rules", i])
            problems.append(Problem(name, line, col, f"rules[{i}]: needs 'all' or 'any'"))
        for key in ("all", "any", "none"):
            for j, ref in enumerate(getattr(rule, key)):
                if ref.casefold() not in refs:
                    line, col = position(root, ["rules", i, key, j])
                    problems.append(
                        Problem(name, line, col, f"rules[{i}].{key}[{j}]: {ref!r} is not a term "
                                "id, name or alias of this watchlist")
                    )
    return problems


def _notify_problems(spec: WatchlistSpec, root: Any, name: str,
                     notifiers: Sequence[str]) -> list[Problem]:
    problems = []
    for i, target in enumerate(spec.notify):
        if target in notifiers:
            continue
        close = difflib.get_close_matches(target, list(notifiers), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            f" (config.yaml defines: {', '.join(notifiers) or 'none'})"
        line, col = position(root, ["notify", i])
        problems.append(Problem(name, line, col, f"notify[{i}]: unknown notifier {target!r}{hint}"))
    return problems


def term_reference_map(terms: Iterable[Term]) -> dict[str, str]:
    """casefolded id / name / alias -> term id, for resolving the names rules use."""
    refs: dict[str, str] = {}
    for term in terms:
        for ref in (term.id, *term.spellings):
            refs.setdefault(ref.casefold(), term.id)
    return refs


def watchlist_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir()
                                if p.suffix in WATCHLIST_SUFFIXES and not p.name.startswith(".")))
        elif path.exists():
            files.append(path)
    return files


def load_each(
    files: Iterable[Path], notifiers: Sequence[str] | None = None
) -> Iterator[tuple[Path, Watchlist | None, list[Problem]]]:
    """Each file with its watchlist, or None and its problems (a bad file never stops the
    others). A second file claiming a watchlist name already taken is a problem."""
    names: dict[str, Path] = {}
    for file in files:
        try:
            wl = load_watchlist(file, notifiers)
        except ConfigError as exc:
            yield file, None, exc.problems
            continue
        if wl.name in names:
            yield file, None, [Problem(str(file), 1, 1, f"watchlist {wl.name!r} is already "
                                       f"defined in {names[wl.name]}")]
            continue
        names[wl.name] = file
        yield file, wl, []


def load_watchlists(
    paths: Iterable[Path], notifiers: Sequence[str] | None = None
) -> tuple[list[Watchlist], list[Problem]]:
    """Every watchlist under ``paths``: the good ones, and the problems of the bad ones."""
    good: list[Watchlist] = []
    problems: list[Problem] = []
    for _, wl, found in load_each(watchlist_files(paths), notifiers):
        problems.extend(found)
        if wl is not None:
            good.append(wl)
    return good, problems
