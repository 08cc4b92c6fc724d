"""The matcher's word-level primitives, rewritten for speed, still say what their rules say.

Each is checked against its rule written out plainly here (or against the library it
replaced) on every input of a small alphabet, so a faster version cannot drift from the
slower one it replaced.
"""

from __future__ import annotations

import itertools

import wordfreq
from rapidfuzz.distance import OSA

from monitor.engine.normalize import arabic_vowels_agree, vowels_compatible
from monitor.engine.similarity import _one_edit
from monitor.engine.wordlists import zipf

LATIN_SLOTS = ["", "A", "E", "I", "U", "AE", "AI", "AU", "EI", "EU", "IU", "EE", "UU", "AIU"]
ARABIC_SLOTS = ["", "A", "I", "U", "^", "*", "^A", "^I", "^U", "AI", "*A", "UI"]
_AGREES = {"A": {"A", "E"}, "U": {"U"}, "I": {"I", "E"}}


def latin_rule(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Vowel groups agree slot by slot: equal, or both written and sharing a class, or an
    e against an a or an i."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        sx, sy = set(x), set(y)
        if not x or not y or not (sx & sy or ("E" in sx and sy & {"A", "I"})
                                  or ("E" in sy and sx & {"A", "I"})):
            return False
    return True


def arabic_rule(ar: tuple[str, ...], la: tuple[str, ...]) -> bool:
    """Each long vowel Arabic writes has its vowel in the same Latin gap; an initial alef or
    ʿayn is a Latin initial vowel and the reverse; three Latin vowel letters need two
    Arabic letters; gaps with ʿayn or hamza take anything."""
    if len(ar) != len(la):
        return True
    if la[0] and not ar[0]:
        return False
    if "*" in ar[0] and not la[0]:
        return False
    for a, x in zip(ar, la, strict=True):
        if "^" in a:
            if not x or any(not _AGREES[c] & set(x) for c in a if c in _AGREES):
                return False
            continue
        if "*" in a:
            continue
        if any(not _AGREES[c] & set(x) for c in a) or (len(x) >= 3 and len(a) < 2):
            return False
    return True


def test_latin_vowel_agreement_follows_its_rule_on_every_pair_of_up_to_two_slots() -> None:
    for k in (1, 2):
        for a in itertools.product(LATIN_SLOTS, repeat=k):
            for b in itertools.product(LATIN_SLOTS, repeat=k):
                assert vowels_compatible(a, b) == latin_rule(a, b), (a, b)


def test_arabic_vowel_agreement_follows_its_rule_on_every_pair_of_up_to_two_slots() -> None:
    for k in (1, 2):
        for ar in itertools.product(ARABIC_SLOTS, repeat=k):
            for la in itertools.product(LATIN_SLOTS, repeat=k):
                assert arabic_vowels_agree(ar, la) == arabic_rule(ar, la), (ar, la)


def test_the_one_edit_typo_test_is_osa_distance_up_to_one() -> None:
    words = ["".join(w) for n in range(7) for w in itertools.product("abc", repeat=n)]
    for a in words:
        for b in words:
            if abs(len(a) - len(b)) <= 1:
                expected = OSA.distance(a, b)
                assert _one_edit(a, b) == (expected if expected <= 1 else 2), (a, b)


def test_zipf_values_are_wordfreqs_for_english_and_french_words() -> None:
    sample = [w for w in wordfreq.top_n_list("en", 3000)[::7] + wordfreq.top_n_list("fr", 3000)[::7]
              + ["assad", "damascus", "idlib", "sharaa", "rutba", "jolani", "xqzv"]
              if w.isascii() and w.isalpha() and w.islower()]
    for word in sample:
        assert zipf(word) == max(wordfreq.zipf_frequency(word, "en"),
                                 wordfreq.zipf_frequency(word, "fr")), word
    assert zipf("Assad") == zipf("cop28") == 0.0  # not a normalised word of the lists
