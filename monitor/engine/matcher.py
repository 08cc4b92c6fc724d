"""FuzzyMatcher: candidate lookup on anchor words, then verification of whole spellings.

Pipeline per field: tokenise (``normalize.tokenize``, offsets into the original field) ->
for each word, the postings of the anchor tokens it may be (``index.TermIndex``, cached per
distinct word) -> verify each posting by aligning the spelling's words around that word
(``_align``) -> classify (full name, surname alone, organisation without its generic words)
and apply precision guards -> resolve overlaps -> ``Match`` objects. Rules are applied in
``match`` via ``rules.py``.

Bounds: each field is cut at ``FIELD_CAP`` characters and words longer than
``normalize.MAX_TOKEN_CHARS`` are only compared exactly, so pathological input costs at most
linear time in ``FIELD_CAP``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Final, TypeVar, final

from monitor.engine.base import Hit, Matcher
from monitor.engine.context import (
    after_org_prefix,
    guards_ok,
    lone_arabic_ok,
    partial_org_ok,
    surname_alone_ok,
)
from monitor.engine.english import COMMON_WORDS
from monitor.engine.index import (
    MIN_TYPO_LEN_ALONE,
    Anchored,
    AnchorPosting,
    Gates,
    Posting,
    Spelling,
    TermIndex,
    exact_text,
    file_gated,
    freeze_gated,
)
from monitor.engine.names import (
    ARTICLES_HYPHENATED,
    COMMON_GIVEN_NAMES,
    NAME_STOPWORDS,
    ORG_GENERIC,
    PLACE_GENERIC,
    TITLES,
    canonical_given_name,
)
from monitor.engine.normalize import (
    Form,
    arabic_vowels_agree,
    latin_key,
    readings,
    strong_readings,
    token_form,
    vowels_compatible,
)
from monitor.engine.rules import Located, apply_rules
from monitor.engine.similarity import compare
from monitor.engine.tokens import Token, TokenList, any_case, tokenize
from monitor.engine.wordlists import (
    WRITTEN_ZIPF,
    arabic_function,
    arabic_plain,
    is_arabic_common,
    is_famous,
    is_known_word,
    latin_common,
    preload,
    zipf,
)
from monitor.models import MATCH_FIELDS, Item, Match, Watchlist

_LOOSE_ARTICLES = ARTICLES_HYPHENATED - COMMON_WORDS
_LOOSE_ANY_CASE = any_case(_LOOSE_ARTICLES)  # tested on the raw word: nothing lower-cased
# A word's candidates: the postings of exact spellings it is (spelling, word position),
# and the groups whose anchor postings it may be, with its score and the postings laid out
# for this word (``TermIndex.anchored`` with ``_for_word``'s additions), the groups
# under which these file postings, after the word and before it (``_near`` looks only for
# these: ``Gates``), the groups not scored yet, all of whose postings wait for a word near
# (``_candidates``), and of the groups after and before, those compared with the words near
# rather than looked up (``TermIndex.long_groups``)
Candidates = tuple[tuple[Posting, ...], tuple[tuple[int, float, Anchored], ...],
                   "GateParts", "GateParts", tuple[frozenset[int], ...], frozenset[int],
                   frozenset[int]]
# A word's gates on one side, in parts: each scored group's own, the word's own additions
# and each set of waiting groups' (``TermIndex.waiting``), looked up part by part and never
# merged: merging them cost a new word up to 573 entries at 50,000 names, while a word
# has a median of one part per side
GateParts = tuple[Gates, ...]
FIELD_CAP = 100_000  # characters of a field that are matched; the rest is ignored
DEFAULT_THRESHOLD = 80.0  # per-term threshold when the analyst sets none (0-100)
PARTIAL_FACTOR = 0.9  # a surname alone or an organisation without generic words scores less
_CACHE_LIMIT = 300_000
_WORD_CACHE_LIMIT = 100_000  # words of the per-word dictionaries (a few entries each)
_MAX_WORDS = 64  # above a spelling's word count (``watchlist.MAX_SPELLING_WORDS``)
_EMPTY: frozenset[int] = frozenset()
_NO_CANDIDATES: Candidates = ((), (), (), (), (), _EMPTY, _EMPTY)
_V = TypeVar("_V")


@final
class Found:
    """A verified occurrence of one spelling in one field, before overlap resolution
    (read-only attributes on a plain class: see ``normalize.Form``)."""

    __slots__ = ("end", "field", "first", "last", "partial", "score", "spelling", "start",
                 "surface", "surname_only")

    def __init__(self, spelling: Spelling, field: str, first: int, last: int, start: int,
                 end: int, score: float, partial: bool, surname_only: bool,
                 surface: str) -> None:
        self.spelling: Final = spelling
        self.field: Final = field
        # index of the first and last matched word in the field's tokens
        self.first: Final = first
        self.last: Final = last
        # character offsets into the original field
        self.start: Final = start
        self.end: Final = end
        self.score: Final = score
        self.partial: Final = partial
        self.surname_only: Final = surname_only
        self.surface: Final = surface


class FuzzyMatcher(Matcher):
    """Every watchlist compiled into one index; ``find`` and ``match`` per item.

    Immutable after construction except for bounded per-word caches, so one instance may be
    shared by the threads of one process.
    """

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        self.watchlists = tuple(watchlists)
        self.index = TermIndex(self.watchlists)
        self._by_name = {wl.name: wl for wl in self.watchlists}
        self._cand_cache: dict[str, Candidates] = {}
        self._fam_cache: dict[str, tuple[int, ...]] = {}
        # word -> group -> score: one small dict per word, which holds no object the
        # garbage collector must follow (a (word, group) tuple per entry was one more object
        # for it to traverse, and to hash on every look-up)
        self._cmp_cache: dict[str, dict[int, float]] = {}
        # (word, spelling, spelling word) -> a lone match passes the checks of the word alone
        self._lone_cache: dict[str, dict[int, bool]] = {}  # word -> (spelling, word) key
        self._near_cache: dict[str, AbstractSet[int]] = {}
        self._patronymic_cache: dict[str, bool] = {}  # words near a gated word (``_near``)
        self._inert: set[str] = set()  # words with no candidates and no family names
        self._given_skels = frozenset(
            f.skel for f in (token_form(n) for n in COMMON_GIVEN_NAMES) if len(f.skel) >= 2
        )

    # ------------------------------------------------------------ public API

    def find(self, item: Item) -> list[Match]:
        return [self._to_match(f) for f in self._find(item)]

    def match(self, item: Item) -> list[Hit]:
        found = self._find(item)
        hits: list[Hit] = []
        for wl in self.watchlists:
            mine = [f for f in found if f.spelling.watchlist == wl.name]
            if not mine:
                continue
            located = [Located(self._to_match(f), f.first, f.last) for f in mine]
            hit = apply_rules(wl, item, located)
            if hit is not None:
                hits.append(hit)
        return hits

    # ------------------------------------------------------------ per item

    def verifications(self, item: Item) -> int:
        """How many (word, spelling) candidates matching ``item`` verifies: the engine's unit
        of work, which tests bound on hostile text (one word repeated, name parts
        alternating). Each verification compares at most a spelling's words
        (``watchlist.MAX_SPELLING_WORDS``), so an item costs at most its words times the
        candidates of its most frequent word times that; candidates that the words around
        rule out (``_near``) cost a set look-up per group near, and are not counted."""
        work = [0]
        self._find(item, work)
        return work[0]

    def _find(self, item: Item, work: list[int] | None = None) -> list[Found]:
        found: list[Found] = []
        conflicts: set[str] = set()
        fields: dict[str, tuple[str, TokenList]] = {}
        families: list[tuple[str, int, tuple[int, ...]]] = []
        for name in MATCH_FIELDS:
            text = item.field_text(name)
            if text:
                toks = tokenize(text, FIELD_CAP)
                fields[name] = (text, toks)
                found.extend(self._find_field(name, text, toks, conflicts, work, families))
        if families:
            found.extend(self._family_names(found, fields, families, conflicts))
        if conflicts:
            found = [f for f in found
                     if not (f.surname_only and f.spelling.term.id in conflicts)]
        return _resolve(_named_in_full(found))

    def _family_names(self, found: list[Found], fields: dict[str, tuple[str, TokenList]],
                      families: list[tuple[str, int, tuple[int, ...]]],
                      conflicts: set[str]) -> list[Found]:
        """A person named in full in this item may be named again by family name alone
        ("Ahmad al-Sharaa … Sharaa said"). Family names were looked up while scanning
        (``families``: field, word, family-name groups); only now, for the few people the
        item names in full, are they scored and weighed as mentions. (Scoring every group
        a capitalised word's keys found, as the scan did, cost 1,445 comparisons per pass
        over the real-text benchmark at 50,000 names.)"""
        named = {(f.spelling.watchlist, f.spelling.term.id) for f in found
                 if not f.surname_only and f.spelling.term.kind == "person"}
        if not named:
            return []
        # The family groups of the people named in full, each with those people's spellings
        # in index order: a family word costs a look-up per group, not a test per spelling
        # of every person who bears the name (hundreds for Hussein at 50,000 names).
        index = self.index
        family_of = index.family_of
        wanted: dict[int, list[int]] = {}
        for key in named:
            for sp_index in index.by_term.get(key, ()):
                fam = family_of.get(sp_index)
                if fam is not None:
                    wanted.setdefault(fam, []).append(sp_index)
        for sps in wanted.values():
            sps.sort()
        inside = {(f.spelling.term.id, f.field, p) for f in found
                  for p in range(f.first, f.last + 1)}
        out: list[Found] = []
        spellings = index.spellings
        for name, p, gids in families:
            text, toks = fields[name]
            for gid in gids:
                mine = wanted.get(gid)
                if mine is None:
                    continue
                score = -1.0
                for sp_index in mine:
                    sp = spellings[sp_index]
                    if (sp.term.id, name, p) in inside:
                        continue
                    if score < 0:
                        score = self._cmp_group(toks[p], gid)
                    if not score:
                        break
                    f = self._classify(sp, {len(sp.tokens) - 1: (p, score)}, toks, name, text,
                                       conflicts)
                    if f is not None:
                        out.append(f)
        return out

    def _family_candidates(self, tok: Token, gids: Iterable[int] | None = None) -> tuple[int, ...]:
        """The family-name groups this word's keys found (``gids``, if looked up already),
        scored only for a person the item names in full (``_family_names``); cached per
        word (most words: none, one shared empty tuple)."""
        found: tuple[int, ...] = ()
        if _may_be_family(tok):  # a family name standing alone is capitalised
            if gids is None:
                gids = self.index.probe(tok.form, fuzzy=False)[1]
            found = tuple(gids)
        _remember(self._fam_cache, tok.raw, found)
        return found

    def _find_field(self, name: str, text: str, toks: TokenList, conflicts: set[str],
                    work: list[int] | None = None,
                    families: list[tuple[str, int, tuple[int, ...]]] | None = None,
                    ) -> list[Found]:
        out: list[Found] = []
        cache = self._cand_cache
        fam_cache = self._fam_cache
        inert = self._inert
        for p, raw in enumerate(toks.raws):
            if raw in inert:
                continue  # most words of a text: one set look-up each
            entry = cache.get(raw)
            if entry is None:
                if p not in toks._forms and self._plain_word(raw):
                    self._remember_inert(raw)  # a lower-case word no watchlist word is
                    continue
                entry = self._candidates(toks[p])
            fam = fam_cache.get(raw)
            if fam is None:
                fam = self._family_candidates(toks[p])
            exact, groups, after, before, deferred, long_after, long_before = entry
            if not fam and not exact and not groups and not deferred:
                self._remember_inert(raw)
                continue
            if fam and families is not None:
                families.append((name, p, fam))
            if work is not None:
                work[0] += len(exact)
            for sp_index, pos in exact:
                self._verify(sp_index, pos, p, 100.0, toks, name, text, conflicts, out)
            around: AbstractSet[int] | None = None
            if deferred:
                around = self._near(toks, p, after, before, long_after, long_before)
                if around:
                    groups = self._score_deferred(toks[p], entry, around)
            for _, score, (free, gated, extra, _, _) in groups:
                chosen: Sequence[AnchorPosting] = free
                if gated or extra:
                    # Names that need a second word: only those of which one may be near.
                    if around is None:
                        around = self._near(toks, p, after, before, long_after, long_before)
                    if around:
                        chosen = _gated(free, gated, extra, around)
                if work is not None:
                    work[0] += len(chosen)
                for _, sp_index, pos in chosen:
                    self._verify(sp_index, pos, p, score, toks, name, text, conflicts, out)
        return out

    def _remember_inert(self, raw: str) -> None:
        """Each later occurrence of this word costs one set look-up (bounded like the
        other per-word caches)."""
        if len(self._inert) > _CACHE_LIMIT:
            self._inert.clear()
        self._inert.add(raw)

    def _verify(self, sp_index: int, pos: int, p: int, score: float, toks: TokenList,
                name: str, text: str, conflicts: set[str], out: list[Found]) -> None:
        """Spelling ``sp_index`` around its word ``pos`` found at text word ``p``."""
        sp = self.index.spellings[sp_index]
        got = (self._align_exact(sp, toks, p) if sp.exact
               else self._align(sp, pos, p, score, toks))
        if got is None or (len(got) == 1 and sp.term.kind == "person"
                           and not sp.term.short and len(sp.tokens) > 1):
            return  # one word of a person's name: only the family-name pass counts
        f = self._classify(sp, got, toks, name, text, conflicts)
        if f is not None:
            out.append(f)

    def _plain_word(self, raw: str) -> bool:
        """A lower-case ASCII word that can match nothing: it may only match a watchlist
        word by equal key (``_candidates``: no fuzzy look-up without a capital), its key
        and its article-less key are no watchlist word's, and no exact spelling is it.
        Most words of a text are such words; they skip normalisation altogether. So do
        capitalised everyday English words that are inert (``_inert_common``)."""
        if not raw.isascii():
            return False
        if raw[:1].isupper() and raw.isalpha():
            return self._inert_common(raw.lower(), raw)
        if not raw[:1].islower() or _CONTRACTION.search(raw):
            return False
        key = raw.lower() if raw.isalnum() else latin_key(raw)
        index = self.index
        if index.is_anchor_key(key) or _strip_possessive(raw) in index.by_exact:
            return False
        return not (key[:2] in ("al", "el") and index.is_anchor_key(key[2:]))

    def _inert_common(self, key: str, raw: str) -> bool:
        """A capitalised everyday English word ("The", "However", "Security": 42% of the
        capitalised words of the benchmark's news) that ``similarity.compare`` scores 0
        against every watchlist word: a common word is compared by equal key, plural and
        given-name variant only, and none of these is a watchlist word's; nor is it an
        exact spelling. It has no candidates, no family names and no near groups, so it
        is not normalised at all (a third of the cost of a new word)."""
        keys = self.index.all_keys
        return (key in COMMON_WORDS and key not in keys and key + "s" not in keys
                and not (key.endswith("s") and "~s:" + key[:-1] in keys)
                and canonical_given_name(key) is None and raw not in self.index.by_exact)

    def _near_plain(self, raw: str) -> AbstractSet[int] | None:
        """``_near``'s groups of an ASCII word of letters without normalising it, or None
        when they need its form: a lower-case word is looked up by its key and its
        article-less key (``near_groups(lower=True)``: these are all its readings), an
        inert capitalised one has none."""
        key = raw.lower()
        if raw[0].isupper():
            return _EMPTY if not raw.isupper() and self._inert_common(key, raw) else None
        if canonical_given_name(key) is not None:
            return None
        keys = self.index.all_keys
        groups: AbstractSet[int] = keys.get(key, _EMPTY)  # the index's own: never changed
        if key[:2] in ("al", "el") and len(key) >= 6 and key not in COMMON_WORDS:
            more = keys.get(key[2:])
            if more:
                groups = groups | more
        return groups

    def _near(self, toks: TokenList, p: int, after: GateParts, before: GateParts,
              long_after: frozenset[int] = _EMPTY,
              long_before: frozenset[int] = _EMPTY) -> AbstractSet[int]:
        """Groups the words around word p may be among those that gate its postings
        (``after`` it, ``before`` it), signed by side (``g`` after, ``~g`` before, as
        ``TermIndex.other_words`` signs a spelling's). Only words ``_align`` may reach for
        a name's second word are looked at: on each side, through joined words only (no
        punctuation between; one comma after the word, as lists write a reversed name),
        loose articles, then the first word, and the word after it when that one may be
        a patronymic ("Ahmed Hussein al-Sharaa"). A word near "Assad" in Syrian news may be
        fifty groups at 50,000 names; only the few that gate its postings are kept. The
        words of ``long_after`` and ``long_before`` (two typos allowed) are compared."""
        out: set[int] | None = None  # most calls find none: no set made
        n = len(toks)
        for step in (-1, 1):
            gates = after if step > 0 else before
            q = p + step
            if not gates or not 0 <= q < n:
                continue  # no spelling has a word on this side: its words are not looked up
            link = q if step > 0 else p  # the later word of the pair
            if not (toks.joined(link) or (step > 0 and toks.joined_by_comma(link))):
                continue  # _align never crosses punctuation
            patronymic = False
            longs = long_after if step > 0 else long_before
            while True:
                raw = toks.raws[q]
                plain = raw.isascii() and raw.isalpha()  # then its key is raw.lower()
                groups = self._near_groups(toks, q, raw, plain)
                if groups:
                    # Most words near have no gating group: a C call per part (over the
                    # smaller set) decides, not an iteration in the engine's own loop
                    for part in gates:
                        if part.isdisjoint(groups):
                            continue
                        if out is None:
                            out = set()
                        if step > 0:
                            out.update(part & groups)
                        else:
                            out.update([~g for g in part & groups])
                if longs:
                    scores = self._cmp_cache.get(raw)  # a word seen before: no Token built
                    tok: Token | None = None
                    for g in longs:
                        score = scores.get(g) if scores is not None else None
                        if score is None:
                            if tok is None:
                                tok = toks[q]
                            score = self._cmp_group(tok, g)
                            scores = self._cmp_cache.get(raw)
                        if score > 0:
                            if out is None:
                                out = set()
                            out.add(g if step > 0 else ~g)
                if patronymic:
                    break  # the word after a patronymic: the last _align compares
                nxt = q + step
                if not 0 <= nxt < n or not toks.joined(max(nxt, q)):
                    break
                if raw in _LOOSE_ANY_CASE if plain else toks.form(q).key in _LOOSE_ARTICLES:
                    q = nxt  # an article written as a separate word ("Deir Ez Zor")
                    continue
                if not self._may_be_patronymic(toks, q, raw):
                    break
                patronymic = True
                q = nxt
        return out if out is not None else _EMPTY

    def _near_groups(self, toks: TokenList, q: int, raw: str, plain: bool) -> AbstractSet[int]:
        """Every group word q may compare equal to (``TermIndex.near_groups``), cached per
        word."""
        groups = self._near_cache.get(raw)
        if groups is None:
            groups = self._near_plain(raw) if plain else None
            if groups is None:
                form = toks.form(q)
                if form.script == "latin" and not raw[:1].isupper():
                    groups = self.index.near_groups(form, lower=not raw.isupper())
                elif not raw[:1].isupper() and _is_cyrillic(raw):
                    groups = _EMPTY  # see _cmp_group: a lower-case Cyrillic word
                else:
                    groups = self.index.near_groups(form)
                if not groups:
                    groups = _EMPTY  # one shared empty set, not one per word
            _remember(self._near_cache, raw, groups)
        return groups

    def _may_be_patronymic(self, toks: TokenList, q: int, raw: str) -> bool:
        """``_patronymic`` of word q without building its Token; cached per word."""
        if raw.isascii() and not raw[:1].isupper():
            return False
        known = self._patronymic_cache.get(raw)
        if known is not None:
            return known
        known = self._patronymic_form(raw, toks.form(q))
        _remember(self._patronymic_cache, raw, known)
        return known

    def _candidates(self, tok: Token) -> Candidates:
        """The exact spellings this word is and the anchor groups it matches, with its score
        against each; cached per word. Each group's postings, and the words one of which
        must be near each, were laid out when the index was built (``TermIndex.anchored``)."""
        cached = self._cand_cache.get(tok.raw)
        if cached is not None:
            return cached
        index = self.index
        exact = tuple(index.by_exact.get(exact_text(_strip_possessive(tok.raw)), ()))
        groups: list[tuple[int, float, Anchored]] = []
        form = tok.form
        fuzzy = (form.script != "latin" or tok.cap or tok.upper) and \
            not _CONTRACTION.search(tok.raw)  # "They're" is not Tyre
        marked = not tok.raw.isascii() and not _TRANSLIT_MARKS.isdisjoint(tok.raw)
        latin = form.script == "latin" and not marked and (
            tok.raw.isascii() or not _is_cyrillic(tok.raw))
        name = latin and (form.key in COMMON_GIVEN_NAMES or form.key in index.known_keys
                          or canonical_given_name(form.key) is not None)
        # How often a one-word name must be written for this word to be a respelling of
        # it: a scholar's transliteration (Darʿā) names a written place; a word written far
        # more often than the name is itself ("Malawi" is not the village Mallawi, "Lair"
        # not Lar; Deraa and Daraa, Daech and Daesh are peers).
        floor: float | None = WRITTEN_ZIPF if marked else None
        if fuzzy and latin and not name:  # only a capitalised word is looked up fuzzily
            written = max(zipf(form.key),
                          WRITTEN_ZIPF if is_known_word(form.key) else 0.0)
            floor = written - 0.4 if written >= WRITTEN_ZIPF else None
        keys = {r.key for r in readings(form)} if floor is not None else set()
        ayn = _ayn_marked(tok.raw)
        family = _may_be_family(tok)
        # every posting of a waiting group waits for a word near: scored then, a key's set at
        # a time (``_score_deferred``)
        waiting: list[frozenset[int]] = []
        anchors, families = index.probe(form, fuzzy, alone=not name, family=family,
                                        waiting=waiting)
        anchored = index.anchored
        for gid in anchors:
            if (floor is not None and index.alone_zipf.get(gid, 9.0) < floor
                    and index.groups[gid].form.key not in keys):
                continue
            if ayn and not _SHOWS_AYN.search(index.groups[gid].raw):
                continue  # Darʿā (Daraa) is not Dara: the mark is a letter the name lacks
            score = self._cmp_group(tok, gid)
            if score > 0:
                groups.append((gid, score, self._for_word(tok, anchored[gid], score)))
        entry: Candidates = _NO_CANDIDATES
        deferred = tuple(dict.fromkeys(waiting))  # a set filed under several keys: once
        if exact or groups or deferred:
            gates = index.gates
            afters: list[Gates] = []
            befores: list[Gates] = []
            extras: list[int] = []
            for gid, _, layout in groups:
                if layout[1]:
                    _add_gates(gates[gid], afters, befores)
                extras.extend(layout[2])  # this word's own (``_for_word``): few
            long_after, long_before = self._long([g for g, _, _ in groups])
            for wait in deferred:
                w_after, w_before, w_long_after, w_long_before = index.waiting[wait]
                _add_gates((w_after, w_before), afters, befores)
                if w_long_after or w_long_before:
                    long_after = long_after | w_long_after
                    long_before = long_before | w_long_before
            if extras:
                _add_gates((frozenset([g for g in extras if g >= 0]),
                            frozenset([~g for g in extras if g < 0])), afters, befores)
            entry = (exact, tuple(groups), tuple(afters), tuple(befores), deferred,
                     long_after, long_before)
        _remember(self._cand_cache, tok.raw, entry)
        self._family_candidates(tok, families if family else ())
        return entry

    def _long(self, gids: list[int]) -> tuple[frozenset[int], frozenset[int]]:
        """The gates of these groups compared rather than looked up (most: none), after
        the word and before it."""
        long_gates = self.index.long_gates
        if not long_gates:
            return _EMPTY, _EMPTY
        after: frozenset[int] = _EMPTY
        before: frozenset[int] = _EMPTY
        for gid in gids:
            pair = long_gates.get(gid)
            if pair is not None:
                after, before = after | pair[0], before | pair[1]
        return after, before

    def _score_deferred(self, tok: Token, entry: Candidates,
                        around: AbstractSet[int]) -> tuple[tuple[int, float, Anchored], ...]:
        """The word's groups with those deferred groups scored that a word near it may
        open (``around``: signed groups near this occurrence), the entry updated.

        A group whose every posting waits for one of its spelling's other words is not
        scored when the word is first seen, only at an occurrence with one of those words
        near it: its score decides nothing elsewhere. At 50,000 real names, 6,535 of the
        8,563 comparisons a new word's look-up made per pass over the real-text benchmark
        were of such groups ("Assad" with every Bashar, Hafez and Maher of the list), and
        at most occurrences no word near opens any of them."""
        exact, groups, after, before, deferred, long_after, long_before = entry
        index = self.index
        anchored = index.anchored
        # Darʿā (Daraa) is not Dara: see ``_candidates``, which leaves such groups out of
        # the groups it scores; a waiting set is filed whole
        ayn = _ayn_marked(tok.raw)
        scored: list[tuple[int, float, Anchored]] | None = None
        waiting: list[int] = []
        seen: set[int] = set()
        for wait in deferred:
            for gid in wait:
                if gid in seen:
                    continue  # filed under two keys of the word
                seen.add(gid)
                if ayn and not _SHOWS_AYN.search(index.groups[gid].raw):
                    continue
                gated = anchored[gid][1]
                opened = False
                for g in around:  # few: only the gating groups near this occurrence
                    if g in gated:
                        opened = True
                        break
                if not opened:
                    waiting.append(gid)
                    continue
                if scored is None:
                    scored = list(groups)
                score = self._cmp_group(tok, gid)
                if score > 0:
                    scored.append((gid, score, anchored[gid]))
        if scored is None:
            return groups
        now = tuple(scored)
        self._cand_cache[tok.raw] = (exact, now, after, before,
                                     (frozenset(waiting),) if waiting else (), long_after,
                                     long_before)
        return now

    def _for_word(self, tok: Token, layout: Anchored, score: float) -> Anchored:
        """The group's postings laid out for this word: an organisation's or place's
        spelling that this word alone does not name (``_lone_ok``: "Assad" is not the
        Assad Group, "Bashar" not the Basheer Group) is verified only when one of its
        other words may be near, and a one-word spelling not at all. At 50,000 real names
        these were 1,914 of the 4,164 verifications per pass over the real-text benchmark's
        Syrian news, each failing after aligning the spelling around the word."""
        lone = layout[4]
        if not lone:
            return layout
        spellings = self.index.spellings
        dropped: set[AnchorPosting] | None = None
        extra: dict[int, list[AnchorPosting]] | None = None
        for posting, need in lone:
            if self._lone_ok(tok, spellings[posting[1]], posting[2], score):
                continue
            if dropped is None:
                dropped = set()
            dropped.add(posting)
            if need:  # else a one-word spelling: never this word's
                if extra is None:
                    extra = {}
                file_gated(extra, need, posting)
        if dropped is None:
            return layout
        return (tuple([p for p in layout[0] if p not in dropped]), layout[1],
                freeze_gated(extra) if extra is not None else {}, layout[3], ())

    def _lone_ok(self, word: Token, sp: Spelling, i: int, score: float) -> bool:
        """Does this word alone, at this score, name the spelling (word ``i``) as far as
        the word itself tells (its context is checked per occurrence in
        ``_classify_lone``)? Cached per (word, spelling, word position)."""
        mine = self._lone_cache.get(word.raw)
        key = sp.index * _MAX_WORDS + i
        ok = mine.get(key) if mine is not None else None
        if ok is None:
            missing = [j for j in range(len(sp.tokens)) if j != i and not sp.tokens[j].stop]
            # cheapest first: most words fail the organisation checks
            ok = (score * (PARTIAL_FACTOR if missing else 1.0) >= _threshold(sp)
                  and (not missing or partial_org_ok(sp, {i: (0, score)}, missing, [word]))
                  and lone_arabic_ok(word, sp, i) and _arabic_tokens_ok(sp, [(i, word)], 1)
                  # one word alone must match without guessing ("Hamas" is not Hama)
                  and compare(word.form, sp.tokens[i], self.index.known_keys, weak=False) > 0)
            if mine is None:
                mine = _new_word_entry(self._lone_cache, word.raw)
            mine[key] = ok
        return ok

    def _cmp(self, tok: Token, sp_index: int, pos: int) -> float:
        return self._cmp_group(tok, self.index.group_of[sp_index][pos])

    def _cmp_group(self, tok: Token, gid: int) -> float:
        mine = self._cmp_cache.get(tok.raw)
        score = mine.get(gid) if mine is not None else None
        if score is None:
            if not tok.cap and tok.form.script != "arabic" and _is_cyrillic(tok.raw):
                score = 0.0  # Russian capitalises names: газа ("of gas") is not Gaza
            else:
                score = compare(tok.form, self.index.groups[gid], self.index.known_keys)
            lower = tok.form.script == "latin" and not tok.cap and not tok.upper
            if (score and score < 100 and lower
                    and canonical_given_name(tok.form.key) is None):
                score = 0.0  # a lower-case word is not fuzzily a name ("sharia"); "ibn" is
            elif (score and lower and self.index.groups[gid].raw[:1].isupper()
                  and not self.index.groups[gid].generic and tok.form.key not in PLACE_GENERIC
                  and tok.form.key in latin_common() and tok.form.key not in NAME_STOPWORDS):
                score = 0.0  # "Rami Abdel Rahman said" is not Rami Said
            if mine is None:
                mine = _new_word_entry(self._cmp_cache, tok.raw)
            mine[gid] = score
        return score

    # ------------------------------------------------------------ verification

    def _align_exact(self, sp: Spelling, toks: TokenList,
                     p: int) -> dict[int, tuple[int, float]] | None:
        n = len(sp.exact_tokens)
        if p + n > len(toks):
            return None
        for i in range(1, n):
            t = toks[p + i]
            if not t.joined or exact_text(_strip_possessive(t.raw)) != sp.exact_tokens[i]:
                return None
        return {i: (p + i, 100.0) for i in range(n)}

    def _align(self, sp: Spelling, j: int, p: int, score: float,
               toks: TokenList) -> dict[int, tuple[int, float]]:
        """Spelling word -> (text word, score), grown left and right from anchor j at p.

        Words must be adjacent (no punctuation between); a spelling's function word may be
        missing; once per person, an extra capitalised word may stand inside the name (a
        patronymic: "Ahmed Hussein al-Sharaa") or a middle word of the spelling may be left out
        ("Mohammed al-Sudani" for Mohammed Shia al-Sudani).
        """
        got = {j: (p, score)}
        skipped = False
        for step in (-1, 1):
            i, ti = j + step, p + step
            while 0 <= i < len(sp.tokens):
                if not 0 <= ti < len(toks):
                    break
                at = max(ti, ti - step)
                if not (toks[at].joined or (sp.reversed and at == first_gap(got, sp, step, i)
                                            and toks.joined_by_comma(at))):
                    break
                s = self._cmp(toks[ti], sp.index, i)
                if s:
                    got[i] = (ti, s)
                    i, ti = i + step, ti + step
                    continue
                if sp.tokens[i].stop:
                    i += step
                    continue
                nxt = ti + step
                if (toks[ti].form.key in _LOOSE_ARTICLES and 0 <= nxt < len(toks)
                        and toks[max(nxt, ti)].joined):
                    ti = nxt  # "Deir Ez Zor": an article written as a separate word
                    continue
                if not skipped and sp.term.kind == "person":
                    if (self._patronymic(toks[ti])
                            and 0 <= nxt < len(toks) and toks[max(nxt, ti)].joined):
                        s = self._cmp(toks[nxt], sp.index, i)
                        if s:  # an extra middle name in the text
                            skipped = True
                            got[i] = (nxt, s)
                            i, ti = i + step, nxt + step
                            continue
                    after = i + step
                    if 0 < after < len(sp.tokens) - 1 or after == 0:
                        s = self._cmp(toks[ti], sp.index, after)
                        if s:  # the spelling's middle name left out ("Mohammed al-Sudani")
                            skipped = True
                            got[after] = (ti, s)
                            i, ti = after + step, ti + step
                            continue
                break
        return got

    def _patronymic(self, tok: Token) -> bool:
        """A word that may stand inside a person's name in the text without being in the
        spelling: a given name (the father's: "Ahmed Hussein al-Sharaa"), never another
        family's name or a possessive ("Ahmed al-Sharaa's Hayat" is not "Ahmad Hayat")."""
        return self._patronymic_form(tok.raw, tok.form)

    def _patronymic_form(self, raw: str, form: Form) -> bool:
        if form.script == "arabic":
            return form.skel in self._given_skels
        if not raw[:1].isupper() or _strip_possessive(raw) != raw:
            return False  # (a Token's ``cap`` is its first letter's case)
        return form.key in COMMON_GIVEN_NAMES or canonical_given_name(form.key) is not None

    def _classify(self, sp: Spelling, got: dict[int, tuple[int, float]], toks: TokenList,
                  field: str, text: str, conflicts: set[str]) -> Found | None:
        if len(got) == 1 and not sp.exact and sp.term.kind != "person":
            return self._classify_lone(sp, got, toks, field, text)
        k = len(sp.tokens)
        positions = sorted(ti for ti, _ in got.values())
        first, last = positions[0], positions[-1]
        scores = [s for _, s in got.values()]
        missing = [i for i in range(k) if i not in got and not sp.tokens[i].stop]
        surname_only = False
        if missing:
            kind = sp.term.kind
            if kind == "person" and 0 in got and (k - 1) in got and len(missing) == 1:
                pass  # given name and surname with one middle name left out
            elif kind == "person":
                if not (sp.surname_ok and (k - 1) in got and len(got) == 1):
                    return None
                if not surname_alone_ok(sp, toks, first, conflicts, text, self._given_skels):
                    return None
                surname_only = True
            elif not partial_org_ok(sp, got, missing, toks):
                return None
        if not guards_ok(sp, got, toks, first, last):
            return None
        if sp.term.kind == "person" and len(got) > 1 and not self._names_agree(sp, got, toks):
            return None
        if not sp.exact and not _arabic_words_ok(sp, got, toks):
            return None
        if sp.term.kind == "person" and len(got) > 1 and not missing and \
                self._other_persons_name(sp, toks, first, last):
            return None
        if len(got) == 1 and not sp.exact:
            i, (ti, _) = next(iter(got.items()))
            if not compare(toks[ti].form, sp.tokens[i], self.index.known_keys, weak=False):
                return None  # one word alone must match without guessing ("Hamas" ≠ Hama)
        score = sum(scores) / len(scores) * (PARTIAL_FACTOR if missing else 1.0)
        if score < _threshold(sp):
            return None
        start = toks[first].lead if toks[first].lead >= 0 else toks[first].start
        end = toks[last].end
        return Found(sp, field, first, last, start, end, score, bool(missing), surname_only,
                     text[start:end])

    def _classify_lone(self, sp: Spelling, got: dict[int, tuple[int, float]],
                       toks: TokenList, field: str, text: str) -> Found | None:
        """``_classify`` for one word of a place, organisation or topic standing alone: the
        checks that depend on the word alone are cached per (word, spelling word); most
        such matches (an organisation's distinctive word without its generic one, a place
        name that is another word) fail them, and each occurrence then costs a look-up."""
        ((i, (ti, score)),) = got.items()
        word = toks[ti]
        missing = any(j != i and not sp.tokens[j].stop for j in range(len(sp.tokens)))
        ok = self._lone_ok(word, sp, i, score)
        if not ok or after_org_prefix(sp, toks, ti):
            return None
        if (missing or score < 100) and inside_longer_name(toks, ti, ti):
            return None  # "Maaret al-Numan" is not Mareth; "Kassem Kassab" not Kassab Group
        if word.form.script == "arabic" and arabic_person_context(toks, ti):
            return None  # الدكتور بدر عبد العاطي: a minister's given name, not the town Badr
        start = word.lead if word.lead >= 0 else word.start
        return Found(sp, field, ti, ti, start, word.end,
                     score * (PARTIAL_FACTOR if missing else 1.0), bool(missing), False,
                     text[start:word.end])

    @staticmethod
    def _other_persons_name(sp: Spelling, toks: TokenList, first: int, last: int) -> bool:
        """The text names someone with a longer name that merely contains this one: a given
        name right before it ("Ahmed [Hussein al-Shara]" is not Houssein Sharf), or, when
        this name ends in a given name (Arab names put the father's name second), a family
        name right after it ("[Ahmed Hussein] al-Shara" is not Ahmed Huseen)."""
        if first > 0 and toks[first].joined:
            prev = toks[first - 1]
            if prev.cap and not prev.upper and (prev.form.key in COMMON_GIVEN_NAMES
                                                or canonical_given_name(prev.form.key)):
                return True
        end = toks[last].form.key
        ends_in_given = not sp.reversed and (
            sp.tokens[-1].canon is not None or sp.tokens[-1].form.key in COMMON_GIVEN_NAMES
            or end in COMMON_GIVEN_NAMES or canonical_given_name(end) is not None)
        if ends_in_given and last + 1 < len(toks) and toks[last + 1].joined:
            nxt = toks[last + 1]
            return nxt.cap and not nxt.upper and (nxt.article or nxt.form.key not in TITLES)
        return False

    @staticmethod
    def _names_agree(sp: Spelling, got: dict[int, tuple[int, float]], toks: TokenList) -> bool:
        """A person's name words other than given names must agree by more than a typo,
        unless long enough that a one-letter neighbour is unlikely (seven letters, as for a
        one-word name): with thousands of names, a common given name and a short family
        name one letter off is another person ("Ahmed Sharaf" is not Ahmed al-Sharaa)."""
        family = [(i, ti) for i, (ti, _) in got.items()
                  if sp.tokens[i].canon is None and sp.tokens[i].form.key not in COMMON_GIVEN_NAMES
                  and not sp.tokens[i].stop]
        if not family:
            return True
        return any(_same_or_transliterated(toks[ti].form, sp.tokens[i].form)
                   or len(sp.tokens[i].form.key) >= MIN_TYPO_LEN_ALONE for i, ti in family)

    @staticmethod
    def _to_match(f: Found) -> Match:
        term = f.spelling.term
        return Match(watchlist=f.spelling.watchlist, term=term.id, term_name=term.name,
                     matched_text=f.surface, score=round(f.score, 1), field=f.field,
                     start=f.start, end=f.end, kind=term.kind)


# ---------------------------------------------------------------- helpers

def _arabic_words_ok(sp: Spelling, got: dict[int, tuple[int, float]], toks: TokenList) -> bool:
    """Arabic words matched to a Latin spelling carry the evidence Latin words would:

    * a name word the analyst wrote with the article (Alkhateb, al-Shibani) matches an
      Arabic word written with it (الخطيب, الشيباني), as Arabic always writes it; خطاب
      ("speech", or the name Khattab) is not Alkhateb;
    * a name written family name first is a list's convention, not Arabic prose's;
    * an organisation's or place's words are not all everyday words, unless the name's own
      words say it is one the world writes about.
    """
    return _arabic_tokens_ok(sp, [(i, toks[ti]) for i, (ti, _) in got.items()], len(got))


def _arabic_tokens_ok(sp: Spelling, words: list[tuple[int, Token]], n_got: int) -> bool:
    """``_arabic_words_ok`` on the matched words themselves ((spelling word, text word)),
    ``n_got`` of them in all."""
    arabic = [(i, tok) for i, tok in words if tok.form.script == "arabic"]
    if not arabic or sp.tokens[0].form.script == "arabic":
        return True
    if sp.reversed:
        return False
    if any(arabic_plain(tok.raw) in arabic_function() for _, tok in arabic):
        return False  # "على العاصمة" ("on the capital") is not Alaa Souma
    for i, tok in arabic:
        word = sp.tokens[i]
        if not word.article:
            continue
        skels = {r.skel for r in strong_readings(word.form) if r.article} or {word.form.skel}
        if not any(r.article and r.skel in skels for r in readings(tok.form)):
            return False
    if n_got == 1 or not all(is_arabic_common(tok.raw) for _, tok in arabic):
        return True
    # Every Arabic word is an everyday word, as in many real names (بشار الأسد, كمال,
    # هيئة تحرير الشام): an organisation or place then needs a word the world writes about
    # (Sham), not just any words; a person's words are checked one by one above and in
    # ``arabic_vowels_agree`` (its initial vowel: Eslam is not السلام).
    if sp.term.kind == "person":
        return True  # a person's name words are everyday words often (كمال, سليم)
    return any(is_famous(t.form.key) for t in sp.tokens if not t.stop)


_ARABIC_TITLES = frozenset(arabic_plain(w) for w in [
    "الدكتور", "الرئيس", "الشيخ", "السيد", "السيدة", "اللواء", "العميد", "العقيد", "الفريق",
    "المشير", "الوزير", "الأمير", "الملك", "المهندس", "الأستاذ", "الحاج", "النائب", "الشهيد",
    "القائد", "الإمام", "المستشار", "السفير"
])
_ARABIC_NAME_PARTICLES = ("عبد", "ابو", "أبو", "بن", "ابن")


def arabic_person_context(toks: TokenList, p: int) -> bool:
    """An Arabic word that Arabic prose shows to be a person's name: a title before it
    (الدكتور بدر) or a name particle after it (بدر عبد العاطي, ... بن ...). Arabic has no
    capitals, so these are what says "name" there."""
    if p > 0 and toks[p].joined and arabic_plain(toks[p - 1].raw) in _ARABIC_TITLES:
        return True
    if p + 1 < len(toks) and toks[p + 1].joined:
        return toks[p + 1].raw.startswith(_ARABIC_NAME_PARTICLES)
    return False


def inside_longer_name(toks: TokenList, first: int, last: int) -> bool:
    """The matched words are joined to another capitalised word (not a title, an acronym,
    or a generic word such as Province or Group): part of a longer name the term is not."""
    for i in (first - 1, last + 1):
        if not 0 <= i < len(toks) or not toks[max(i, first)].joined:
            continue
        word = toks[i]
        key = word.form.key
        if i < first and _strip_possessive(word.raw) != word.raw:
            continue  # "Iran's Shiraz": a possessive is not part of the name
        if word.cap and not word.upper and key not in TITLES and key not in ORG_GENERIC \
                and key not in PLACE_GENERIC and key not in NAME_STOPWORDS \
                and not toks.title_case():
            return True
    return False


def _same_or_transliterated(t: Form, u: Form) -> bool:
    """Equal keys, or equal consonant skeletons with compatible vowels, in some reading:
    a transliteration, not a mere edit (Mulla and Malla share a skeleton, not a name)."""
    return any(a.key == b.key or (a.skel and a.skel == b.skel and _vowels_agree(a, b))
               for a in readings(t) for b in readings(u))


def _vowels_agree(a: Form, b: Form) -> bool:
    if a.script == "arabic" and b.script == "arabic":
        return True
    if a.script == "arabic" or b.script == "arabic":
        ar, la = (a, b) if a.script == "arabic" else (b, a)
        return arabic_vowels_agree(ar.vowels, la.vowels)
    return vowels_compatible(a.vowels, b.vowels)


def first_gap(got: dict[int, tuple[int, float]], sp: Spelling, step: int, i: int) -> int:
    """The text position of the gap after a reversed spelling's family name (where lists put
    a comma: "al-Sharaa, Ahmad"), or -1 when ``i`` is not the word after it."""
    if i != 1 or step != 1 or 0 not in got:
        return -1
    return got[0][0] + 1


_SHOWS_AYN = re.compile(r"[aeiou]{2}|['’ʿʾ`]", re.IGNORECASE)
_CONTRACTION = re.compile(r"[a-z](?:['’ʼ](?:re|ve|ll|d|m|t)|n['’ʼ]t)$", re.IGNORECASE)
_TRANSLIT_MARKS = frozenset("ʿʾāīūĀĪŪḥḤṣṢṭṬḍḌẓẒ")  # Darʿā, Ḥamāh: a transliterated name


def _gated(free: tuple[AnchorPosting, ...], gated: dict[int, tuple[AnchorPosting, ...]],
           extra: dict[int, tuple[AnchorPosting, ...]],
           around: AbstractSet[int]) -> Sequence[AnchorPosting]:
    """A group's postings to verify at a word with groups ``around`` it (few: ``_near``
    keeps only gating groups): the unconditional ones and those filed under a group near
    it (by the group, or for this word: ``extra``), each once, in posting order."""
    hits: list[AnchorPosting] = []
    for g in around:
        more = gated.get(g)
        if more is not None:
            hits.extend(more)
        if extra:
            more = extra.get(g)
            if more is not None:
                hits.extend(more)
    if not hits:
        return free
    if free or len(hits) > 1:
        hits = sorted(set(hits).union(free))
    return hits


def _add_gates(pair: tuple[Gates, Gates], afters: list[Gates], befores: list[Gates]) -> None:
    if pair[0]:
        afters.append(pair[0])
    if pair[1]:
        befores.append(pair[1])


def _remember(cache: dict[str, _V], raw: str, value: _V) -> None:
    """A word's entry in a per-word cache, the cache emptied first when full (bounded by
    words: a feed of endless new words cannot grow it)."""
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    cache[raw] = value


def _new_word_entry(cache: dict[str, dict[int, _V]], raw: str) -> dict[int, _V]:
    """A word's own dictionary in a per-word cache, made now (the cache bounded by words)."""
    if len(cache) > _WORD_CACHE_LIMIT:
        cache.clear()
    mine: dict[int, _V] = {}
    cache[raw] = mine
    return mine


def _threshold(sp: Spelling) -> float:
    return sp.term.threshold if sp.term.threshold is not None else DEFAULT_THRESHOLD


def _ayn_marked(raw: str) -> bool:
    """A scholar's transliteration with an ayn or hamza mark after its first letter
    (Darʿā): it names only a spelling that shows the letter (``_SHOWS_AYN``)."""
    return (not raw.isascii() and not _TRANSLIT_MARKS.isdisjoint(raw)
            and any(c in "ʿʾ" for c in raw[1:]))


def _may_be_family(tok: Token) -> bool:
    """A family name standing alone is capitalised (or written in a script without case)."""
    return tok.form.script != "latin" or tok.cap or tok.upper


def _is_cyrillic(raw: str) -> bool:
    return not raw.isascii() and any("\u0400" <= c <= "\u04ff" for c in raw)


def _strip_possessive(raw: str) -> str:
    if len(raw) > 2 and raw[-1] in "sS" and raw[-2] in "'’ʼ":
        return raw[:-2]
    return raw


def _named_in_full(found: list[Found]) -> list[Found]:
    """A bare family name names the watchlisted person only in an item that names that
    person in full (the newsroom convention: "Ahmad al-Sharaa … Sharaa said"), unless the
    analyst opted in for the term (``short: true``, for headline figures: "Assad falls").
    At the size of a real watchlist, "Haddad said" is almost never the Haddad on the list."""
    if not any(f.surname_only for f in found):
        return found
    full = {(f.spelling.watchlist, f.spelling.term.id) for f in found if not f.surname_only}
    return [f for f in found if not f.surname_only or f.spelling.term.short
            or (f.spelling.watchlist, f.spelling.term.id) in full]


def _resolve(found: list[Found]) -> list[Found]:
    """One match per (term, field, span): the best; a mention inside a longer mention of the
    same term is dropped, and so is a partial mention inside another term's full mention
    ("Assad" inside "Assad al-Shibani"). One sweep over spans sorted by start; at one span,
    full mentions first and ties broken by spelling, so the result does not depend on the
    order the words' candidates were verified in (the place Faruq and a partial "Faroq
    Group" on one word: the partial one was kept only when verified first)."""
    best: dict[tuple[str, str, str, int, int], Found] = {}
    for f in found:
        key = (f.spelling.watchlist, f.spelling.term.id, f.field, f.start, f.end)
        was = best.get(key)
        if was is None or f.score > was.score or (
                f.score == was.score and f.spelling.index < was.spelling.index):
            best[key] = f
    items = sorted(best.values(), key=lambda f: (MATCH_FIELDS.index(f.field), f.start, -f.end,
                                                 f.partial, f.spelling.index))
    kept: list[Found] = []
    field = ""
    term_end: dict[tuple[str, str], int] = {}
    full_end = -1
    for f in items:
        if f.field != field:
            field, term_end, full_end = f.field, {}, -1
        tkey = (f.spelling.watchlist, f.spelling.term.id)
        if term_end.get(tkey, -1) >= f.end or (f.partial and full_end >= f.end):
            continue
        kept.append(f)
        term_end[tkey] = max(term_end.get(tkey, -1), f.end)
        if not f.partial:
            full_end = max(full_end, f.end)
    return kept


def compile_watchlists(watchlists: Sequence[Watchlist]) -> FuzzyMatcher:
    """Compile watchlists into one matcher (costly once, then cheap per item)."""
    preload()
    return FuzzyMatcher(watchlists)
