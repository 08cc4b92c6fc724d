"""Fields -> words: the tokeniser, with offsets into the original text kept for every word.

``tokenize`` masks markup (``normalize.mask_markup``, length-preserving), scans words with one
regex, folds separate Arabic article words into the next word and joins compounds ("Abu
Bakr", "Nasr Allah"). Words are materialised lazily as ``Token`` objects because most words
of an article are only looked up by their raw string in the matcher's cache.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from typing import Any, Final, final, overload

from monitor.engine.names import ARTICLES_ALWAYS, ARTICLES_HYPHENATED
from monitor.engine.normalize import IGNORABLE, TOKEN_RE, Form, mask_markup, token_form


@final
class Token:
    """A word of a field: offsets into the original string and its normalised form.

    Read-only attributes on a plain class (not a frozen dataclass, whose interpreted
    ``__init__`` cost 20 times more when compiled: see ``normalize.Form``)."""

    __slots__ = ("article", "cap", "end", "form", "joined", "lead", "raw", "start", "upper")

    def __init__(self, start: int, end: int, raw: str, form: Form, article: bool = False,
                 joined: bool = True, cap: bool = False, upper: bool = False,
                 lead: int = -1) -> None:
        self.start: Final = start
        self.end: Final = end
        self.raw: Final = raw
        self.form: Final = form
        # a separate article token ("al", "ash-") stood right before it
        self.article: Final = article
        # nothing but spaces/hyphens/an article between it and the previous word
        self.joined: Final = joined
        self.cap: Final = cap  # starts with an upper-case letter
        self.upper: Final = upper  # all upper-case (acronym style)
        # start of the article before it ("al-" of "al-Sharaa"), else ``start``
        self.lead: Final = lead

    def __repr__(self) -> str:
        return f"Token({self.raw!r}, {self.start}-{self.end}, {self.form!r})"


_SOFT_GAP_RE = re.compile(rf"[\s\-‐‑‒–—{IGNORABLE}]*")
_HYPHENS = "-‐‑'’"
_COMPOUND_HEADS = frozenset({"abd", "abdul", "abdel", "abdal", "abdol", "abdoul", "abu", "abou",
                             "~b", "~bd"})  # ~b, ~bd: أبو, عبد
_COMPOUND_TAILS = frozenset({"allah", "ullah", "ollah", "illah", "din", "eddin", "uddin",
                             "addin", "~l"})  # ~l: الله


_ARTICLE_RAW = frozenset(ARTICLES_ALWAYS | ARTICLES_HYPHENATED | {
    "аль", "эль", "аш", "ас", "ар", "ад", "ан", "ат", "аз", "ал", "эл"})  # Russian outlets
_COMPOUND_RAW_HEADS = frozenset({"abd", "abdul", "abdel", "abdal", "abdol", "abdoul", "abu",
                                 "abou", "أبو", "ابو", "عبد"})
_COMPOUND_RAW_TAILS = frozenset({"allah", "ullah", "ollah", "illah", "din", "eddin", "uddin",
                                 "addin", "الله"})
_COMPOUND_RAW = _COMPOUND_RAW_HEADS | _COMPOUND_RAW_TAILS
_SPECIAL_RAW = _ARTICLE_RAW | _COMPOUND_RAW


def any_case(words: frozenset[str]) -> frozenset[str]:
    """Every upper/lower-case variant of each word: a word of a text is then tested by a
    set look-up of its raw string, without lower-casing every word of every article."""
    return frozenset("".join(chars) for w in words
                     for chars in itertools.product(*({c, c.upper(), c.lower()} for c in w)))


_SPECIAL_ANY_CASE = any_case(_SPECIAL_RAW)
_COMPOUND_ANY_CASE = any_case(_COMPOUND_RAW)


class TokenList(Sequence[Token]):
    """The words of one field, built lazily: the scan keeps only regex matches and raw
    strings, and a ``Token`` (form, context flags) is made when the matcher looks at it —
    most words of an article are looked up by their raw string in a cache and never built.
    """

    __slots__ = ("_built", "_ends", "_forms", "_leads", "_title", "arts", "masked", "ms", "raws")

    def __init__(self, masked: str, ms: list[re.Match[str]], raws: list[str]) -> None:
        self.masked = masked
        self.ms = ms
        self.raws = raws
        self.arts: set[int] = set()  # words preceded by a separate article
        self._leads: dict[int, int] = {}  # word -> start of its article
        self._ends: dict[int, int] = {}  # compound word -> end of its second part
        self._forms: dict[int, Form] = {}  # compound word -> its joined form
        self._built: dict[int, Token] = {}
        self._title: bool | None = None

    def title_case(self) -> bool:
        """Headline style ("Syria's Assad Flees To Moscow"): most longer words capitalised.
        Computed once per field: the context guards ask it for many candidates."""
        if self._title is None:
            longer = upper = 0  # one pass, no list: asked of every field with a candidate
            for r in self.raws:
                if len(r) > 3:
                    c = ord(r[0])  # ASCII by code point: no method call for most words
                    if c < 128:
                        up = 65 <= c <= 90
                        cased = up or 97 <= c <= 122
                    else:
                        up = r[0].isupper()
                        cased = up or r[0].islower()
                    if cased:
                        longer += 1
                        upper += up
            self._title = longer >= 4 and upper >= 0.7 * longer
        return self._title

    def __len__(self) -> int:
        return len(self.raws)

    @overload
    def __getitem__(self, i: int) -> Token: ...

    @overload
    def __getitem__(self, i: slice) -> list[Token]: ...

    def __getitem__(self, i: int | slice) -> Token | list[Token]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.raws)
        tok = self._built.get(i)
        if tok is None:
            raw = self.raws[i]
            form = self._forms.get(i) or token_form(raw)
            tok = Token(self.ms[i].start(), self.end(i), raw, form, i in self.arts,
                        self.joined(i), raw[0].isupper(), raw.isupper() and len(raw) > 1,
                        self.lead(i))
            self._built[i] = tok
        return tok

    def form(self, i: int) -> Form:
        """Word i's normalised form, without building its Token."""
        return self._forms.get(i) or token_form(self.raws[i])

    def end(self, i: int) -> int:
        return self._ends.get(i) or self.ms[i].end()

    def lead(self, i: int) -> int:
        return self._leads.get(i, self.ms[i].start())

    def keys(self) -> list[str]:
        """The normalised key of every word (for exact matching over normalised text)."""
        forms = self._forms
        return [(forms.get(i) or token_form(raw)).key for i, raw in enumerate(self.raws)]

    def joined_by_comma(self, i: int) -> bool:
        """Only one comma (and spaces) between word i-1 and word i: "al-Sharaa, Ahmad"."""
        if i <= 0:
            return False
        gap = self.masked[self.end(i - 1):self.lead(i)]
        return gap.count(",") == 1 and not gap.replace(",", "").strip()

    def joined(self, i: int) -> bool:
        """Only spaces, hyphens or an article between word i-1 and word i."""
        if i <= 0:
            return False
        start, stop = self.end(i - 1), self.lead(i)
        if stop == start + 1 and self.masked[start] == " ":
            return True  # most gaps: one space, no regex call
        return _SOFT_GAP_RE.fullmatch(self.masked, start, stop) is not None


def tokenize(text: str, limit: int) -> TokenList:
    """Words of ``text[:limit]`` (HTML masked) with separate article tokens folded away.

    An article token ("al", "el"; "ar"/"ash"/... only when hyphenated) is not returned; the
    next word carries ``article=True`` and ``lead`` = the article's offset, so a match on
    "Sharaa" in "al-Sharaa" is shown as "al-Sharaa". Compounds ("Abu Bakr", "Nasr Allah")
    are joined into one word on both the watchlist and the text side. The scan itself runs
    in the regex engine; Python only visits the few article and compound words.
    """
    masked = mask_markup(text[:limit])
    ms = list(TOKEN_RE.finditer(masked))
    raws = [m.group() for m in ms]
    if _SPECIAL_ANY_CASE.isdisjoint(raws):
        return TokenList(masked, ms, raws)
    special = [i for i, r in enumerate(raws) if r in _SPECIAL_ANY_CASE]
    return _fold(masked, ms, raws, special)


def _fold(masked: str, ms: list[re.Match[str]], raws: list[str],
          special: list[int]) -> TokenList:
    """Remove article words (remembering them on the next word) and join compounds."""
    drop: set[int] = set()
    lead_of: dict[int, int] = {}
    for i in special:
        end = ms[i].end()
        nxt = masked[end:end + 1]
        hyphen = nxt != "" and nxt in _HYPHENS
        if i + 1 >= len(ms) or not (hyphen or nxt.isspace()):
            continue
        key = token_form(raws[i]).key
        if key in ARTICLES_ALWAYS or (key in ARTICLES_HYPHENATED and hyphen):
            drop.add(i)
            lead_of[i + 1] = lead_of.get(i, ms[i].start())
    if drop:
        # Few words are dropped: delete them in place (the lists are this scan's own)
        # rather than copy every word of the field.
        gone = sorted(drop)
        for i in reversed(gone):
            del ms[i]
            del raws[i]
        out = TokenList(masked, ms, raws)
        for old, lead in lead_of.items():
            if old not in drop:
                new = old - bisect.bisect_left(gone, old)
                out.arts.add(new)
                out._leads[new] = lead
    else:  # English "as", "at", "an" are article words only before a hyphen
        out = TokenList(masked, ms, raws)
    _join_compounds(out)
    return out


def _join_compounds(out: TokenList) -> None:
    raws = out.raws
    if _COMPOUND_ANY_CASE.isdisjoint(raws):
        return
    spots = [i for i, r in enumerate(raws) if r in _COMPOUND_ANY_CASE]
    merged = 0
    for spot in spots:
        spot -= merged
        lower = raws[spot].lower() if spot < len(raws) else ""
        i = spot + 1 if lower in _COMPOUND_RAW_HEADS else spot
        if not 0 < i < len(raws) or (i - 1) in out._forms or not out.joined(i):
            continue
        a, b = out[i - 1], out[i]
        form = _compound_form(a, b)
        _remove(out, i, b.end)
        out._forms[i - 1] = form
        raws[i - 1] = out.masked[a.lead:b.end]
        merged += 1


def _remove(out: TokenList, i: int, end: int) -> None:
    """Drop word i, extending word i-1 to ``end``; shift the per-word side tables."""
    del out.ms[i]
    del out.raws[i]

    def shift(d: dict[int, Any]) -> dict[int, Any]:
        return {(k - 1 if k > i else k): v for k, v in d.items() if k != i}

    out._leads = shift(out._leads)
    out._ends = shift(out._ends)
    out._forms = shift(out._forms)
    out._built = {}
    out.arts = {(k - 1 if k > i else k) for k in out.arts if k != i}
    out._ends[i - 1] = end


def _no_vowels(form: Form, alts: tuple[Form, ...] = ()) -> Form:
    return Form(form.key, form.skel, None, form.final_vowel, form.script, form.article,
                form.silent, False, alts)


def _compound_form(a: Token, b: Token) -> Form:
    """One form for a joined pair; the linking vowel (Abdul/Abdel/Abd al-) is left open."""
    base = token_form(a.raw + b.raw)
    alts = [_no_vowels(r) for r in base.alts]
    if b.article and base.script == "latin":
        alts.append(_no_vowels(token_form(a.raw + "al" + b.raw)))
    return _no_vowels(base, tuple(alts))
