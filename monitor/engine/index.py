"""Watchlists compiled into one candidate index, so an item costs O(its words), not O(terms).

Every spelling (name or alias) of every term is tokenised with the same normaliser as item
text. Only its *anchor* tokens are indexed — the rarest token across the whole watchlist set
plus any token used by few spellings (a person's surname, a place name) — under three keys:
the exact key, the consonant skeleton, and the SymSpell deletion-1 neighbours of the key
(typos). A text word looks up the same keys once (results are cached per distinct word) and
each posting points at (spelling, token position); ``matcher.py`` then verifies the whole
spelling around that word.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final, final

from monitor.engine.countries import is_country_or_proper_place
from monitor.engine.names import (
    COMMON_GIVEN_NAMES,
    FEMALE_GIVEN_NAMES,
    HONORIFICS,
    NAME_STOPWORDS,
    ORG_GENERIC,
    ORG_PREFIXES,
    canonical_given_name,
)
from monitor.engine.normalize import IGNORABLE, Form, readings, strong_readings
from monitor.engine.tokens import Token, tokenize
from monitor.engine.wordlists import latin_common, zipf
from monitor.models import Term, Watchlist

RARE_IN_TEXT = 2.5  # wordfreq Zipf below which a word is rare enough in text to be a 2nd anchor
SECOND_ANCHOR_DF = 8  # ... and shared by at most this many spellings
MIN_TYPO_LEN = 5  # shorter tokens are never matched with an edit (too many near neighbours)
MIN_TYPO_LEN_ALONE = 8  # the same for one-word terms, which have no other word to confirm them
_IGNORABLE_TABLE = {ord(c): None for c in IGNORABLE}


def exact_text(raw: str) -> str:
    """Case-sensitive comparison form for exact terms: NFKC, zero-width characters removed
    (ASCII is its own: NFKC leaves it alone and every zero-width character is beyond it)."""
    if raw.isascii():
        return raw
    return unicodedata.normalize("NFKC", raw).translate(_IGNORABLE_TABLE)


@final
class TermToken:
    """One word of a spelling, in normalised form, with what the verifier needs to know
    (read-only attributes on a plain class: see ``normalize.Form``)."""

    __slots__ = ("article", "canon", "form", "generic", "raw", "stop", "typo_min")

    def __init__(self, raw: str, form: Form, canon: str | None, generic: bool, stop: bool,
                 typo_min: int, article: bool = False) -> None:
        self.raw: Final = raw
        self.form: Final = form
        self.canon: Final = canon  # canonical given name (Ahmed -> ahmad)
        # generic organisation word or function word: may be missing in a mention
        self.generic: Final = generic
        self.stop: Final = stop  # function word ("of", "for")
        self.typo_min: Final = typo_min  # shortest key length that may match with an edit
        # written with the Arabic article (al-Baghdadi, Aliraqi)
        self.article: Final = article

    def _fields(self) -> tuple[object, ...]:
        return (self.raw, self.form, self.canon, self.generic, self.stop, self.typo_min,
                self.article)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TermToken) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"TermToken({self.raw!r}, {self.form!r})"


@dataclass(frozen=True, slots=True)
class Spelling:
    """One analyst-typed spelling of a term, ready to verify."""

    index: int
    watchlist: str
    term: Term
    text: str
    tokens: tuple[TermToken, ...]
    exact: bool  # whole-word, case-sensitive (``match: exact`` or an acronym)
    exact_tokens: tuple[str, ...]
    surname_ok: bool  # a person whose last word may stand alone ("Shaibani said")
    reversed: bool = False  # family name first, as lists write it ("al-Sharaa, Ahmad")


def is_acronym(text: str) -> bool:
    """HTS, SDF, ISIS, SOHR: a single upper-case word of at most five letters."""
    word = text.strip()
    return word.isalpha() and word.isupper() and len(word) <= 5


def is_everyday_word(toks: Sequence[Token]) -> bool:
    """A one-word spelling that is an everyday word in English, French or Russian ("Of",
    the Turkish town; "Nice"): matched only as written, case-sensitively, or it would fire
    on ordinary text. Country names are proper nouns only and keep fuzzy matching."""
    return (len(toks) == 1 and toks[0].form.script == "latin"
            and toks[0].form.key in latin_common()
            and not is_country_or_proper_place(toks[0].raw))


def is_everyday_spelling(text: str) -> bool:
    """``is_everyday_word`` for a spelling as the analyst typed it (for lints)."""
    return is_everyday_word(list(tokenize(text, len(text))))


def _surname_ok(kind: str, tokens: Sequence[TermToken]) -> bool:
    if kind != "person" or len(tokens) < 2:
        return False
    last = tokens[-1]
    key = last.form.key
    return len(key) >= 4 and key not in COMMON_GIVEN_NAMES and last.canon is None


def compile_spelling(index: int, watchlist: str, term: Term, text: str) -> Spelling | None:
    """Tokenise one spelling; None if it has no word at all."""
    toks: list[Token] = list(tokenize(text, len(text)))
    if term.kind == "person":
        while len(toks) > 2 and toks[0].form.key in HONORIFICS:
            toks = toks[1:]  # "President Bashar al-Assad": the title is not part of the name
    if not toks:
        return None
    words = sum(t.form.key not in NAME_STOPWORDS for t in toks)
    tokens = tuple(
        TermToken(
            t.raw, t.form, canonical_given_name(t.form.key),
            t.form.key in ORG_GENERIC or t.form.key in NAME_STOPWORDS,
            t.form.key in NAME_STOPWORDS,
            MIN_TYPO_LEN if words > 1 else MIN_TYPO_LEN_ALONE,
            t.article or any(r.article for r in strong_readings(t.form)),
        )
        for t in toks
    )
    exact = term.match == "exact" or (not term.match_set and (
        is_acronym(text) or is_everyday_word(toks)))
    return Spelling(index, watchlist, term, text, tokens, exact,
                    tuple(exact_text(t.raw) for t in toks), _surname_ok(term.kind, tokens))


_KUNYA = frozenset({"abu", "abou", "abū"})


def _forms_of(term: Term) -> list[tuple[str, bool]]:
    """The analyst's spellings, plus the forms of a person's name that news and lists print
    without the analyst typing them: (text, reversed).

    * a nom de guerre without its "Abu": "Abu Mohammad al-Jolani" is "Mohammad al-Jolani";
    * family name first, as lists and indexes print names ("al-Sharaa Ahmad",
      "al-Sharaa, Ahmad"), for a two- or three-word name whose family name carries the
      article — a name such as "Ali Hassan" reversed is another person ("Hassan Ali").
    """
    out = [(text, False) for text in dict.fromkeys(term.spellings)]
    if term.kind != "person" or term.match == "exact":
        return out
    for text in list(dict.fromkeys(term.spellings)):
        words = text.split()
        if len(words) >= 3 and words[0].casefold() in _KUNYA:
            out.append((" ".join(words[1:]), False))
        last = words[-1] if words else ""
        if 2 <= len(words) <= 3 and last[:3].casefold() in ("al-", "el-"):
            out.append((" ".join([last, *words[:-1]]), True))
    return list(dict.fromkeys(out))


@lru_cache(maxsize=100_000)
def deletions(key: str) -> tuple[str, ...]:
    """The key and every string one character shorter that keeps its first consonant (the
    SymSpell deletion-1 neighbourhood less one key); cached, as three look-ups (anchors,
    family names, neighbours) ask it per new word.

    ``similarity.compare`` takes a typo only between words of the same first letter, and
    two such words within its edit budget share a deletion that keeps it (a doubled first
    letter deletes either way); a skeleton of one consonant, which the skeleton index
    leaves out, is found here only between words that start with a vowel or a digraph.
    Deleting a first consonant found only pairs that compare then rejected ("Bashar" and
    "Alashkar" through "ashar": 700 of 12,500 comparisons on the real-text benchmark at
    10,000 terms)."""
    # Eissa/Issa, Chaaya/Shaaya: a skeleton of one consonant after a vowel or a digraph
    first = 0 if key[:1] in "aeiouy" or key[1:2] == "h" or key[:2] in ("dj", "ts") else 1
    # a tuple, each once (a doubled letter deletes to one string): a new word's costs no
    # hashing of its strings into a set, and the collector soon stops following it
    return tuple(dict.fromkeys([key, *(key[:i] + key[i + 1:] for i in range(first, len(key)))]))


def _skel(r: Form) -> str:
    return r.skel + "|v" if r.final_vowel else r.skel


def _vowel_gaps(r: Form) -> str:
    return _gaps(r.vowels or ())


@lru_cache(maxsize=4096)
def _gaps(vowels: tuple[str, ...]) -> str:
    """Which gaps of a Latin skeleton hold a vowel ("1") or none ("0"); cached, as every
    new word of a text asks it in each of its look-ups (few distinct vowel patterns)."""
    return "".join(["1" if v else "0" for v in vowels])


def posted_skels(r: Form) -> tuple[str, ...]:
    """The skeleton keys a spelling word's reading is indexed under: for Arabic-script text,
    and for Latin text (``text_skels``).

    Each carries what ``similarity.compare`` requires equal for a skeleton match, so a
    look-up returns fewer words that compare then rejects: the final vowel (Iraq is not
    Aliraqi, Bashar not Boshra); between two Latin words, which gaps of the skeleton hold
    a vowel (``vowels_compatible``: Abdi is not Abadi); between Latin and Arabic, whether
    the word begins with a vowel (``arabic_vowels_agree``: a Latin initial vowel needs an
    alef, ʿayn or long vowel before the Arabic word's first consonant, and they need one:
    الشرع is not Achouri). At 10,000 terms the first two halved the comparisons of the
    real-text benchmark; at 50,000 the third was 1,368 of the 6,867 comparisons per pass
    that compare rejected. A typo is found through the deletion keys.
    """
    sk = _skel(r)
    if r.script == "latin" and r.vowels is not None:
        return *_initials(sk, r.vowels), sk + "|" + _vowel_gaps(r)
    return *_initials(sk, None), "A|" + sk


def text_skels(r: Form) -> tuple[str, ...]:
    """The skeleton keys a text word's reading looks up (``posted_skels``)."""
    sk = _skel(r)
    if r.script == "latin" and r.vowels is not None:
        return sk + "|" + _vowel_gaps(r), "A|" + sk
    return _initials(sk, r.vowels)


def _initials(sk: str, vowels: tuple[str, ...] | None) -> tuple[str, ...]:
    """A skeleton key split by whether a vowel comes before the first consonant (both when
    unknown, or for an Arabic-script spelling, which Arabic text matches either way)."""
    if vowels is None:
        return sk + "|i0", sk + "|i1"
    return (sk + ("|i1" if vowels[0] else "|i0"),)


Posting = tuple[int, int]  # (spelling index, token position)
_NONE: frozenset[int] = frozenset()
Gates = frozenset[int]  # groups (see ``TermIndex.gates``)
# (ordinal in its group's posting list, spelling index, token position)
AnchorPosting = tuple[int, int, int]
# A group's anchor postings: those verified whatever is near the word, those verified only
# when one of the other words of their spelling may be near it (by that word's group,
# signed by side: ``TermIndex.other_words``), the same for one text word only (filled by
# ``matcher.FuzzyMatcher._for_word``; empty here), how many there are in all, and the
# unconditional ones that a text word alone may fail to name (``Lone``)
Anchored = tuple[tuple[AnchorPosting, ...], dict[int, tuple[AnchorPosting, ...]],
                 dict[int, tuple[AnchorPosting, ...]], int, tuple["Lone", ...]]
# An organisation's or place's posting verified whatever is near, with the signed groups of
# its spelling's other words (``other_words``: empty for a one-word spelling), for
# ``matcher.FuzzyMatcher._for_word``
Lone = tuple[AnchorPosting, frozenset[int]]
_Roles = list[AbstractSet[int]]  # groups per role under one key (``probe``)
# anchors, anchors of one-word spellings, family names, every group (``near_groups``), and
# the anchors all of whose postings wait for a second word of the name (``WAITING``: taken
# out of ``ANCHOR`` once the index is laid out, see ``TermIndex._split_waiting``)
ANCHOR, ALONE, FAMILY, NEAR, WAITING = 0, 1, 2, 3, 4
# A set of waiting anchor groups under one key: the union of their gates after and before,
# and of their long gates after and before (``TermIndex.waiting``)
Waiting = tuple[Gates, Gates, frozenset[int], frozenset[int]]


def _file(table: dict[str, _Roles], key: str, role: int, gid: int) -> None:
    roles = table.get(key)
    if roles is None:
        roles = table[key] = [_NONE, _NONE, _NONE, _NONE, _NONE]  # most hold one or two
    groups = roles[role]
    if not isinstance(groups, set):
        groups = roles[role] = set()
    groups.add(gid)


def _take_waiting(anchors: set[int], wait: AbstractSet[int],
                  waiting: list[frozenset[int]] | None) -> None:
    if waiting is None:
        anchors.update(wait)
    elif isinstance(wait, frozenset):  # always: filed by ``_split_waiting``
        waiting.append(wait)


def file_gated(gated: dict[int, list[AnchorPosting]], need: frozenset[int],
               posting: AnchorPosting) -> None:
    for g in need:
        gated.setdefault(g, []).append(posting)


def freeze_gated(gated: dict[int, list[AnchorPosting]]) -> dict[int, tuple[AnchorPosting, ...]]:
    return {g: tuple(v) for g, v in gated.items()}


class TermIndex:
    """Postings for the anchor tokens of every spelling of every term.

    Spelling words with the same key (and the same typo rule) form one *group*: a text word is
    compared once per group, not once per spelling, and the comparison is cached per (text
    word, group). Index keys point at groups; ``postings[group]`` lists where the group's
    word is an anchor.
    """

    def __init__(self, watchlists: Iterable[Watchlist]) -> None:
        self.spellings: list[Spelling] = []
        for wl in watchlists:
            for term in wl.terms:
                for text, flipped in _forms_of(term):
                    sp = compile_spelling(len(self.spellings), wl.name, term, text)
                    if sp is not None:
                        if flipped:
                            sp = replace(sp, reversed=True, surname_ok=False)
                        self.spellings.append(sp)
        self._share_surnames()
        self.by_term: dict[tuple[str, str], list[int]] = defaultdict(list)
        for sp in self.spellings:
            self.by_term[(sp.watchlist, sp.term.id)].append(sp.index)
        self.groups: list[TermToken] = []  # group id -> representative word
        self.group_of: list[tuple[int, ...]] = []  # spelling index -> group id per word
        self.postings: list[list[Posting]] = []  # group id -> anchor postings
        self.by_exact: dict[str, list[Posting]] = defaultdict(list)
        # One table per kind of key (word key, skeleton, deletion): per key, the groups under
        # it in each role (``ANCHOR``, ``ALONE``, ``FAMILY``; ``NEAR``: every group, for
        # ``near_groups``), so a new text word visits each of its keys once for the
        # anchor and family-name look-ups (``probe``). The words of one-word
        # spellings are kept apart from other anchors: a word the text is known to be (a
        # given name, a famous name, a watchlist word) is not looked up fuzzily among them
        # ("Bashar" is not the village Bawshar; "Hussein" is not Husan).
        self._key_roles: dict[str, _Roles] = {}
        self._skel_roles: dict[str, _Roles] = {}
        self._del_roles: dict[str, _Roles] = {}
        self.alone_zipf: dict[int, float] = {}  # one-word Latin groups: how often it is written
        self.known_keys: set[str] = set()
        # spelling -> its family name's group, for a person whose family name may stand alone
        self.family_of: dict[int, int] = {}
        # Every group (not only anchors) by the keys ``similarity.compare`` can match on,
        # and per anchor posting the groups of the spelling's other words that must be
        # near it: see ``near_groups`` and ``needs``.
        self.all_keys: dict[str, set[int]] = defaultdict(set)  # and role NEAR of the tables
        self.needs: dict[Posting, frozenset[int]] = {}  # signed: ``other_words``
        # Words that allow two typos: near a text word, compared, not looked up by key. They
        # were verified wherever their name's other word was (Abdurahman Aliraqi at every
        # "Iraqi": 99 of the 1,598 verifications per pass over the real-text benchmark);
        # per group, those of its postings' other words after it and before it
        self.long_groups: frozenset[int] = frozenset()
        self.long_gates: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        # per group, the groups its gated postings are filed under, after it and before it
        # (a word's are its groups', looked up part by part: ``matcher.GateParts``)
        self.gates: list[tuple[Gates, Gates]] = []
        # per set of waiting anchor groups filed under a key, their gates (``_split_waiting``)
        self.waiting: dict[frozenset[int], Waiting] = {}
        self.prefilter = True  # ``needs`` and ``matcher._for_word`` narrow verification
        self._build()
        self._build_neighbours()

    def _share_surnames(self) -> None:
        """A bare surname shared by several persons of one watchlist ("Assad" for Bashar,
        Hafez and Maher al-Assad) is attributed to the first of them in file order — the
        analyst lists the principal first; the others need their given name."""
        owner: dict[tuple[str, str], str] = {}
        for i, sp in enumerate(self.spellings):
            if not sp.surname_ok or sp.tokens[0].form.key in FEMALE_GIVEN_NAMES:
                continue  # a woman's bare surname needs "Mrs"/"Lady": no competition
            key = (sp.watchlist, sp.tokens[-1].form.skel)
            first = owner.setdefault(key, sp.term.id)
            if first != sp.term.id:
                self.spellings[i] = replace(sp, surname_ok=False)

    def _group(self, tok: TermToken) -> int:
        key = (tok.form.key, tok.typo_min, tok.raw[:1].isupper())
        gid = self._gids.get(key)
        if gid is None:
            gid = self._gids[key] = len(self.groups)
            self.groups.append(tok)
            self.postings.append([])
        return gid

    def _build(self) -> None:
        self._gids: dict[tuple[str, int, bool], int] = {}
        self._family_groups: set[int] = set()  # filed under their keys (``_post_family``)
        df: Counter[str] = Counter()
        for sp in self.spellings:
            for key in {t.form.key for t in sp.tokens}:
                df[key] += 1
            self.known_keys.update(t.form.key for t in sp.tokens)
            self.group_of.append(tuple(self._group(t) for t in sp.tokens))
        for sp in self.spellings:
            if sp.exact:
                self.by_exact[sp.exact_tokens[0]].append((sp.index, 0))
                continue
            for pos in self._anchors(sp, df):
                gid = self.group_of[sp.index][pos]
                if not self.postings[gid]:
                    self._post(self.groups[gid].form, gid)
                self.postings[gid].append((sp.index, pos))
            if sp.surname_ok and not sp.term.short:
                self._post_family(sp)

    def _build_neighbours(self) -> None:
        """Index every group under each key by which a text word may compare equal to it
        (key, canonical given name, plural, skeleton, deletion-1 neighbours), and record,
        for each anchor posting of a person's name of several words, the groups of its
        other words: such a name is a mention only with two of its words found, so an
        anchor hit with none of them near costs a set test instead of a verification."""
        long_groups: list[int] = []
        for gid, tok in enumerate(self.groups):
            for r in strong_readings(tok.form):
                if len(r.key) >= 10 and long_groups[-1:] != [gid]:
                    long_groups.append(gid)
                keys = [r.key, "~s:" + r.key]
                if tok.canon is not None:
                    keys.append("~canon:" + tok.canon)
                for key in keys:
                    self.all_keys[key].add(gid)
                if r.skel:
                    for k in posted_skels(r):
                        _file(self._skel_roles, k, NEAR, gid)
                if r.script == "latin" and len(r.key) >= MIN_TYPO_LEN:
                    for d in deletions(r.key):
                        _file(self._del_roles, d, NEAR, gid)
        self.long_groups = frozenset(long_groups)
        for postings in self.postings:
            for sp_index, pos in postings:
                sp = self.spellings[sp_index]
                if len(sp.tokens) < 2 or not self._needs_two_words(sp, pos):
                    continue
                self.needs[(sp_index, pos)] = self.other_words(sp_index, pos)
        self._build_anchored()
        self._split_waiting()

    def other_words(self, sp_index: int, pos: int) -> frozenset[int]:
        """The groups of a spelling's words other than ``pos``, each signed by the side of
        ``pos`` it stands on (``g`` after, ``~g`` before: ``_align`` grows a match outward
        from its anchor, so "Bashar al-Assad" is never "Asad Basheer"), as
        ``matcher._near`` signs the groups of the words around a text word. A word that
        allows two typos (``long_groups``), which the deletion-1 keys of ``near_groups``
        would not find, is looked for near the text word by comparison."""
        groups = self.group_of[sp_index]
        return frozenset(g if i > pos else ~g for i, g in enumerate(groups) if i != pos)

    def _build_anchored(self) -> None:
        """Per group, its anchor postings laid out for the matcher: those verified
        unconditionally, and the others filed under each group one of which must be near
        the word. A text word then costs a look-up per group near it, not a set test per
        posting: at 50,000 real names, "Assad" in Syrian news has hundreds of postings
        (every Asaad, Alasad, Assaad), and the per-posting test ran 120,000 times per warm
        pass over the real-text benchmark's 116 articles. Ordinals keep verification in
        posting order, so the matches do not depend on which way a posting was reached."""
        needs = self.needs
        self.anchored: list[Anchored] = []
        self.long_gates = {}
        self.gates = []
        for postings in self.postings:
            free: list[AnchorPosting] = []
            lone: list[Lone] = []
            gated: dict[int, list[AnchorPosting]] = {}
            for k, (sp_index, pos) in enumerate(postings):
                need = needs.get((sp_index, pos))
                if need is None:
                    free.append((k, sp_index, pos))
                    sp = self.spellings[sp_index]
                    if not sp.exact and sp.term.kind != "person":
                        lone.append(((k, sp_index, pos), self.other_words(sp_index, pos)))
                else:
                    file_gated(gated, need, (k, sp_index, pos))
            self.anchored.append((tuple(free), freeze_gated(gated), {}, len(postings),
                                  tuple(lone) if self.prefilter else ()))
            self.gates.append((frozenset([g for g in gated if g >= 0]) or _NONE,
                               frozenset([~g for g in gated if g < 0]) or _NONE))
            if not gated and not lone:
                continue
            signed = set(gated).union(*(need for _, need in lone))
            longs = [g for g in signed if (g if g >= 0 else ~g) in self.long_groups]
            if longs:
                self.long_gates[len(self.anchored) - 1] = (
                    frozenset([g for g in longs if g >= 0]),
                    frozenset([~g for g in longs if g < 0]))

    def _split_waiting(self) -> None:
        """Under each key, the anchor groups all of whose postings wait for a second word of
        the name (``anchored``: nothing free, nothing lone) are filed apart from the others
        (``WAITING``), with the union of their gates made once here (``waiting``).

        A text word then takes a key's waiting groups as one set and their gates as one
        part, where it took each group and merged its gates: at 50,000 real names, 6,632 of
        the 8,876 anchor groups new words found per cold pass over the real-text benchmark
        were waiting ones ("Saad" and every Ahmed Saad), and only 253 of the 4,126 tests of
        what is near such a word found a word that opens one. They are scored only then
        (``matcher._score_deferred``)."""
        anchored = self.anchored
        self.waiting = {}
        shared: dict[frozenset[int], frozenset[int]] = {}
        for table in (self._key_roles, self._skel_roles, self._del_roles):
            for roles in table.values():
                groups = roles[ANCHOR]
                if roles[WAITING]:
                    groups = set(groups) | roles[WAITING]  # laid out again (tests)
                wait = frozenset([g for g in groups
                                  if not anchored[g][0] and not anchored[g][4]])
                if not wait and not roles[WAITING]:
                    continue  # most keys: no waiting group, nothing rebuilt
                roles[ANCHOR] = (set(groups) - wait) or _NONE
                if not wait:
                    roles[WAITING] = _NONE
                    continue
                wait = roles[WAITING] = shared.setdefault(wait, wait)
                if wait not in self.waiting:
                    self.waiting[wait] = self._waiting_gates(wait)

    def _waiting_gates(self, wait: frozenset[int]) -> Waiting:
        after: set[int] = set()
        before: set[int] = set()
        long_after: frozenset[int] = _NONE
        long_before: frozenset[int] = _NONE
        for gid in wait:
            a, b = self.gates[gid]
            after.update(a)
            before.update(b)
            pair = self.long_gates.get(gid)
            if pair is not None:
                long_after, long_before = long_after | pair[0], long_before | pair[1]
        return frozenset(after) or _NONE, frozenset(before) or _NONE, long_after, long_before

    def without_prefilter(self) -> None:
        """Verify every anchor hit, whatever is near it (tests compare the two ways)."""
        self.needs = {}
        self.prefilter = False
        self._build_anchored()
        self._split_waiting()

    @staticmethod
    def _needs_two_words(sp: Spelling, pos: int) -> bool:
        """Is a match of this spelling's word ``pos`` alone always rejected? A person's,
        unless the analyst made the family name stand alone (``short``); an organisation's
        or place's, when another of its words is distinctive (``context.partial_org_ok``
        lets only generic words be missing)."""
        if sp.term.kind == "person":
            return not sp.term.short
        return any(not t.stop and (not t.generic or t.form.key in ORG_PREFIXES)
                   for i, t in enumerate(sp.tokens) if i != pos)

    def near_groups(self, form: Form, lower: bool = False) -> set[int]:
        """Every group this text word may compare equal to: a superset of the groups
        ``similarity.compare`` scores above zero (keys, plural s, canonical given name,
        skeleton, one edit). ``lower``: a lower-case Latin word, which the matcher lets
        match only by equal key unless it is a given name (``_cmp_group``)."""
        found: set[int] = set()
        all_keys = self.all_keys  # not a bound method: compiled, a bound .get is a slow call
        if lower and canonical_given_name(form.key) is None:
            for r in readings(form):
                hit = all_keys.get(r.key)
                if hit:
                    found.update(hit)
            return found
        for r in readings(form):
            keys = [r.key, r.key + "s"]
            if r.key.endswith("s"):
                keys.append("~s:" + r.key[:-1])
            canon = canonical_given_name(r.key)
            if canon is not None:
                keys.append("~canon:" + canon)
            for key in keys:
                hit = all_keys.get(key)
                if hit:
                    found.update(hit)
            if r.skel:
                for k in text_skels(r):
                    roles = self._skel_roles.get(k)
                    if roles is not None:
                        found.update(roles[NEAR])
            if r.script == "latin" and len(r.key) >= MIN_TYPO_LEN - 1:
                for d in self.edit_keys(r):
                    roles = self._del_roles.get(d)
                    if roles is not None:
                        found.update(roles[NEAR])
        return found

    def _post_family(self, sp: Spelling) -> None:
        """A person's family name, found only in an item that names them in full: indexed
        apart from the anchors, so its every occurrence costs a look-up, not a
        verification (``matcher._family_names``)."""
        gid = self.group_of[sp.index][-1]
        if gid not in self._family_groups:
            self._family_groups.add(gid)
            self._post_keys(self.groups[gid].form, gid, FAMILY)
        self.family_of[sp.index] = gid

    @staticmethod
    def _anchors(sp: Spelling, df: Counter[str]) -> list[int]:
        """The words of a spelling a text word is looked up by.

        Every occurrence of an anchor in a text costs a verification of the spelling, so an
        anchor is a word that is rare where it is looked up: rare in news text first (by
        wordfreq; "Assad" and "Hussein" are everywhere, "Najjar" is not), then rare among
        the watchlists' spellings. A second anchor, rare in text and among the spellings,
        keeps a spelling findable when its first anchor is misspelled. A person's middle names are
        not anchors (news often leaves them out); a short person's family name is (it may
        stand alone). Words repeated in a spelling are anchors once.
        """
        words = [i for i, t in enumerate(sp.tokens) if not t.stop] or list(range(len(sp.tokens)))
        if sp.term.kind == "person" and len(words) > 2:
            words = [i for i in words if i in (words[0], words[-1])]
        distinct = [i for i in words if not sp.tokens[i].generic] or words
        ranked = sorted(distinct, key=lambda i: (
            sp.tokens[i].form.common, zipf(sp.tokens[i].form.key), df[sp.tokens[i].form.key],
            -len(sp.tokens[i].form.key)))
        chosen = {ranked[0]}
        chosen.update(i for i in ranked[1:2] if zipf(sp.tokens[i].form.key) < RARE_IN_TEXT
                      and df[sp.tokens[i].form.key] <= SECOND_ANCHOR_DF)
        if sp.surname_ok and sp.term.short:
            chosen.add(len(sp.tokens) - 1)
        first_of: dict[str, int] = {}
        for i in sorted(chosen):
            first_of.setdefault(sp.tokens[i].form.key, i)
        return sorted(first_of.values())

    def _post(self, form: Form, gid: int) -> None:
        alone = self.groups[gid].typo_min == MIN_TYPO_LEN_ALONE
        if alone and form.script == "latin":
            self.alone_zipf[gid] = zipf(form.key)
        self._post_keys(form, gid, ALONE if alone else ANCHOR)

    def _post_keys(self, form: Form, gid: int, role: int) -> None:
        """File a group under each key of each reading of its word, in ``role`` (a word
        key is filed as ``ANCHOR`` for both kinds of anchor: an equal key is never fuzzy)."""
        for r in strong_readings(form):
            _file(self._key_roles, r.key, FAMILY if role == FAMILY else ANCHOR, gid)
            if len(r.skel) >= 2:
                for k in posted_skels(r):
                    _file(self._skel_roles, k, role, gid)
            if r.script == "latin" and len(r.key) >= MIN_TYPO_LEN:
                for d in deletions(r.key):
                    _file(self._del_roles, d, role, gid)

    def edit_keys(self, r: Form) -> Iterable[str]:
        """The deletion keys a text word's Latin reading looks up. A word that is itself a
        watchlist word is never typo-matched (``similarity.compare``), so of its deletions
        only those that find what compare may still accept are looked up: the word itself
        (a spelling one letter longer: Guards for the word Guard) and the word less a final
        s (Guard for Guards); all of them for a skeleton of one consonant (matched by
        skeleton, which the skeleton index leaves out) or a given-name variant. At 50,000
        real names, 1,238 of the 2,533 comparisons that deletion keys alone found per pass
        over the real-text benchmark were of such words ("Assad" against Aswad, Alassaf,
        Assal ...)."""
        key = r.key
        if key in self.known_keys and len(r.skel) >= 2 and canonical_given_name(key) is None:
            return (key, key[:-1]) if key[-1:] == "s" else (key,)
        return deletions(key)

    def is_anchor_key(self, key: str) -> bool:
        """Is some anchor word's key (or a reading's) exactly ``key``?"""
        roles = self._key_roles.get(key)
        return roles is not None and bool(roles[ANCHOR] or roles[WAITING])

    def probe(self, form: Form, fuzzy: bool = True, alone: bool = True,
              family: bool = True,
              waiting: list[frozenset[int]] | None = None) -> tuple[set[int], set[int]]:
        """(anchor groups, family-name groups) the text word may be, both to be verified by
        the caller, in one pass over the word's keys.

        Waiting anchor groups (``WAITING``) are among the anchors, or, given ``waiting``,
        appended to it a key's set at a time (``waiting`` maps each to its gates).

        Anchors: with ``fuzzy`` false (a lower-case or common English word, which may only
        match exactly) only the exact key is looked up; with ``alone`` false, the words of
        one-word spellings are looked up by exact key only (the text word is a known word:
        it is itself, not a variant of a one-word name). Family names (``family``: a word
        that may be one, capitalised or not Latin) are looked up by every key.
        """
        anchors: set[int] = set()
        fams: set[int] = set()
        key_roles, skel_roles, del_roles = self._key_roles, self._skel_roles, self._del_roles
        for r in readings(form):
            entry = key_roles.get(r.key)
            if entry is not None:
                anchors.update(entry[ANCHOR])
                if entry[WAITING]:
                    _take_waiting(anchors, entry[WAITING], waiting)
                if family:
                    fams.update(entry[FAMILY])
            if r.script == "spoof":
                continue
            fuzzy_r = fuzzy and not (r.script == "latin" and r.common)
            if not (fuzzy_r or family):
                continue
            keyed: list[tuple[dict[str, _Roles], Iterable[str]]] = []
            if len(r.skel) >= 2:
                keyed.append((skel_roles, text_skels(r)))
            if r.script == "latin" and len(r.key) >= MIN_TYPO_LEN - 1:
                keyed.append((del_roles, self.edit_keys(r)))
            for table, keys in keyed:
                for k in keys:
                    roles = table.get(k)
                    if roles is None:
                        continue
                    if fuzzy_r:
                        anchors.update(roles[ANCHOR])
                        if roles[WAITING]:
                            _take_waiting(anchors, roles[WAITING], waiting)
                        if alone:
                            anchors.update(roles[ALONE])
                    if family:
                        fams.update(roles[FAMILY])
        return anchors, fams
