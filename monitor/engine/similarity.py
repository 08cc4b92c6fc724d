"""Word-level similarity: is this text word the same name word as this spelling word?

Decided in the normalised spaces of ``normalize.py`` (key, consonant skeleton, vowel groups)
with rapidfuzz for the edit distances. Returns a 0-100 score; 0 means "different word".
"""

from __future__ import annotations

import re

from rapidfuzz.distance import OSA, Indel

from monitor.engine.index import MIN_TYPO_LEN, TermToken
from monitor.engine.names import COMMON_GIVEN_NAMES, canonical_given_name
from monitor.engine.normalize import (
    Form,
    arabic_vowels_agree,
    readings,
    strong_readings,
    vowels_compatible,
)

_LETTER_CLASSES = str.maketrans({"q": "k", "c": "k", "j": "g", "o": "u"})  # Raqqa = Rakka
_LONG_VOWELS = re.compile(r"ee|ii|uu|aa")
_LONG_VOWEL_MAP = {"ee": "i", "ii": "i", "uu": "u", "aa": "a"}


def _plain(key: str) -> str:
    """Key with letter classes merged, German digraphs read as English (Nadschi = Naji)
    and long-vowel digraphs shortened (Qeed = Qid)."""
    if "sch" in key:
        key = key.replace("dsch", "j").replace("tsch", "ch").replace("sch", "sh")
    key = key.translate(_LETTER_CLASSES)
    if "aa" in key or "ee" in key or "ii" in key or "uu" in key:  # most keys: none
        return _LONG_VOWELS.sub(lambda m: _LONG_VOWEL_MAP[m.group()], key)
    return key

_INITIAL = re.compile(r"^(?:dsch|tsch|sch|sh|ch|dj|[aeiouy])")
_INITIAL_CLASS = {"dsch": "j", "dj": "j", "tsch": "ch", "sch": "sh", "ch": "sh"}


def _initial(key: str) -> str:
    """A word's first sound for the few-consonant rule: Chami = Shami, Djamal = Jamal,
    and any vowel (checked by the vowel groups: Eman = Iman, Oumer = Umer); Kim is still
    not Qaim."""
    m = _INITIAL.match(key)
    if m is None:
        return key[:1]
    head = m.group()
    return "V" if head in "aeiouy" else _INITIAL_CLASS.get(head, head)


def _same_vowel_count(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Vowel groups of equal size, a repeated letter counted once (Kout = Kut, Deraa =
    Daraa): a one-word name of two consonants is mostly its vowels, and an added one
    makes another word (Saul is not Sal, Hatay not Hatta)."""
    if a is None or b is None:
        return True
    return all(len(set(a[i])) == len(set(b[i])) for i in range(min(len(a), len(b))))


def _typo_budget(n: int) -> int:
    return 0 if n < MIN_TYPO_LEN else (1 if n < 10 else 2)


def _one_edit(a: str, b: str) -> int:
    """``OSA.distance(a, b)`` where it is at most 1 (one substitution, insertion, deletion
    or swap of neighbours), else 2: the typo test of most name words (five to nine
    letters), without a call into rapidfuzz for pairs that are mostly not typos."""
    if len(a) < len(b):
        a, b = b, a
    n = len(b)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    if len(a) == n:
        if i == n:
            return 0
        if a[i + 1:] == b[i + 1:]:
            return 1  # a substitution
        if i + 1 < n and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]:
            return 1  # two neighbours swapped
        return 2
    if len(a) == n + 1 and a[i + 1:] == b[i:]:
        return 1  # one letter more
    return 2


def compare(t: Form, u: TermToken, known: set[str], weak: bool = True) -> float:
    """Similarity 0-100 of a text word and a spelling word; 0 means "not the same word".

    Equal keys score 100, known given-name variants 95, equal consonant skeletons with the
    same ending and compatible vowels 85-100 (transliteration, Arabic script), and a small
    edit (1 for 5-9 letters, 2 from 10) with the same first letter 80-90 (typos). Common
    English words and words that are themselves watchlist words are never typo-matched.
    With ``weak`` false, guessed readings of the text word (an apostrophe-less possessive:
    "Hamas" read as "Hama's") are not tried.
    """
    if not t.alts and not u.form.alts:
        return _compare_one(t, u.form, u, known)  # most words: one reading each
    best = 0.0
    for tr in (readings(t) if weak else strong_readings(t)):
        for ur in strong_readings(u.form):
            best = max(best, _compare_one(tr, ur, u, known))
            if best >= 100:
                return best
    return best


def _compare_one(t: Form, u: Form, tok: TermToken, known: set[str]) -> float:
    tk, uk = t.key, u.key
    if tk == uk:
        return 100.0
    if t.weak or t.script == "spoof" or u.script == "spoof" or len(uk) <= 2:
        return 0.0  # a guessed reading ("Reuters" as "Reuter's") must match exactly
    if tok.canon is not None and canonical_given_name(tk) == tok.canon:
        return 95.0
    multiword = tok.typo_min == MIN_TYPO_LEN
    if multiword and len(uk) >= 4 and (
            (len(tk) == len(uk) + 1 and tk[-1] == "s" and tk.startswith(uk))
            or (len(uk) == len(tk) + 1 and uk[-1] == "s" and uk.startswith(tk))):
        return 90.0  # Guards / Guard inside a longer name
    if t.script == "latin" and t.common:
        return 0.0
    # one consonant across scripts only for a given name (Ali: علي), not any short word
    # (Al Ain City is not عن قطع, "about cutting")
    one_ok = multiword and (t.script == u.script or tok.canon is not None
                            or u.key in COMMON_GIVEN_NAMES)
    if (len(u.skel) >= (1 if one_ok else 2) and t.skel == u.skel
            and t.final_vowel == u.final_vowel):
        if t.script == "arabic" and u.script == "arabic":
            return 90.0
        if t.script == "arabic" or u.script == "arabic":
            ar, la = (t, u) if t.script == "arabic" else (u, t)
            return 90.0 if arabic_vowels_agree(ar.vowels, la.vowels) else 0.0
        if vowels_compatible(t.vowels, u.vowels):  # half the candidates fail here
            sim = Indel.normalized_similarity(_plain(tk), _plain(uk))
            short = len(u.skel) <= 2  # few consonants: Doha is not Dukhaa, Kim is not Qaim
            if not (short and (_initial(tk) != _initial(uk) or sim < 0.6
                               or (not multiword
                                   and not _same_vowel_count(t.vowels, u.vowels)))):
                return 80.0 + 20.0 * sim
    if (t.script == "latin" and u.script == "latin" and t.key not in known
            and not t.key.startswith(u.key) and not u.key.startswith(t.key)):  # Anbari
        budget = _typo_budget(len(u.key)) if len(u.key) >= tok.typo_min else 0
        if budget and t.key[0] == u.key[0] and abs(len(t.key) - len(u.key)) <= budget:
            d = _one_edit(tk, uk) if budget == 1 else OSA.distance(tk, uk, score_cutoff=budget)
            if d <= budget:
                return 100.0 * (1 - d / max(len(u.key), len(t.key)))
    return 0.0
