"""Frequent words of the languages monitor reads, for the precision guards.

A name that is also an everyday word is the main source of false alerts at the size of a
real watchlist: the Turkish town "Of" in "of", the surname Wazir in وزير ("minister"), an
organisation word Gabha in جبهة ("front"). Which words are everyday words comes from
wordfreq (Robyn Speer et al., Apache-2.0 code, data CC BY-SA 4.0), whose lists merge
Wikipedia, subtitles, news, books and web text per language; it is no longer updated (2024)
but its lists are stable and well known, which is what a guard needs. English keeps the
project's own list (``english.py``); French and Russian (transliterated as the normaliser
reads Cyrillic) and Arabic come from wordfreq's top words.

Lists are loaded once, on first use (about 0.3 s), when the first matcher is compiled.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import cache, lru_cache

import wordfreq
from anyascii import anyascii

from monitor.engine.english import COMMON_WORDS

TOP_N = 5000  # Arabic: function words and everyday vocabulary, before most names crowd in
# French: a shorter list, as wordfreq's French lists famous names early (Syrie at 2,299,
# Gaza at 7,326); the top 2,000 are everyday words ("sur", "sud", "nord", "nice").
TOP_N_FRENCH = 2000
_AR_NORMAL = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ا", "ی": "ي",
                            "ک": "ك", "ـ": None})
_AR_PREFIXES = ("و", "ف", "ب", "ل", "ك")  # conjunctions and prepositions written on the word


def arabic_plain(word: str) -> str:
    """An Arabic word without diacritics, with alef/ya/kaf forms unified (lookup form)."""
    text = unicodedata.normalize("NFKC", word)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.translate(_AR_NORMAL)


@cache
def arabic_common() -> frozenset[str]:
    """The most frequent Arabic and Persian words, in ``arabic_plain`` form. Persian news
    is written in the same script and reaches the same feeds (گرفت, "took", is not
    Jiroft; عراق, as Persian writes Iraq, is not Arak)."""
    return _common_of("ar") | _common_of("fa")


@cache
def _common_of(lang: str) -> frozenset[str]:
    return frozenset(arabic_plain(w) for w in wordfreq.top_n_list(lang, TOP_N))


def _zipf_of(lang: str) -> dict[str, float]:
    """Every word of wordfreq's list for ``lang`` with its Zipf value, as
    ``wordfreq.zipf_frequency`` rounds it: computed once per frequency bucket (a bucket is
    one frequency), not per word. A word in two buckets takes the later one, as
    ``wordfreq.get_frequency_dict`` does."""
    out: dict[str, float] = {}
    for index, bucket in enumerate(wordfreq.get_frequency_list(lang)):
        freq = wordfreq.cB_to_freq(-index)
        freq = round(freq, math.floor(-math.log(freq, 10)) + 3)
        z = round(math.log(freq, 10) + 9, 2)
        for word in bucket:
            out[word] = z
    return out


# English and French together, each word with the higher of its two values (``zipf``): one
# table, filled once per process (``_latin_zipf``), read without a cache in between.
_LATIN_ZIPF: dict[str, float] = {}


def _latin_zipf() -> dict[str, float]:
    if not _LATIN_ZIPF:
        merged = _zipf_of("en")
        wordfreq.get_frequency_list.cache_clear()  # one full list at a time (peak RSS)
        for word, z in _zipf_of("fr").items():
            if z > merged.get(word, 0.0):
                merged[word] = z
        _LATIN_ZIPF.update(merged)
    return _LATIN_ZIPF


ARABIC_ZIPF_FLOOR = 3.0  # below this ``arabic_zipf`` says 0: no guard asks finer


@cache
def _arabic_frequent() -> dict[str, float]:
    """Arabic and Persian words written at least once per million words, with their Zipf
    value: the only ones the frequency guards ask about (``EVERYDAY_GAP`` needs 3.0 or
    more), kept instead of both full lists (about 70 MB less resident)."""
    out: dict[str, float] = {}
    for lang in ("ar", "fa"):
        for word, z in _frequent_of(lang).items():
            out[word] = max(out.get(word, 0.0), z)
    return out


@cache
def _frequent_of(lang: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for i, bucket in enumerate(wordfreq.get_frequency_list(lang)):
        z = round(9 - i / 100, 2)  # wordfreq's buckets are centibels
        if z < ARABIC_ZIPF_FLOOR:
            break
        for word in bucket:
            out[word] = max(out.get(word, 0.0), z)
    return out


def preload() -> None:
    """Load every list now (about a second, once per process): a matcher is compiled at
    start and on each watchlist reload, and the first Arabic item must not pay for the
    Arabic and Persian lists while the others wait behind it. One language at a time,
    letting wordfreq drop each full list once what the guards need is kept here in
    compact form, so the process never holds more than one full list (peak RSS)."""
    if _arabic_frequent.cache_info().currsize:
        return
    _latin_zipf()
    wordfreq.get_frequency_list.cache_clear()
    for lang in ("fr", "ar", "fa"):
        if lang == "fr":
            latin_common()
        else:
            _common_of(lang)
            _frequent_of(lang)
        if lang == "ar":
            arabic_function()
        wordfreq.get_frequency_list.cache_clear()
    arabic_common()
    _arabic_frequent()


_MARKS = re.compile(r"[\u064b-\u065f\u0670\u0640]")  # harakat, superscript alef, tatweel


@lru_cache(maxsize=100_000)
def arabic_zipf(word: str) -> float:
    """How often Arabic or Persian text writes this word as written (Zipf scale; 0 below
    ``ARABIC_ZIPF_FLOOR``), diacritics and tatweel aside as wordfreq reads them."""
    return _arabic_frequent().get(_MARKS.sub("", unicodedata.normalize("NFKC", word)), 0.0)


EVERYDAY_GAP = 3.0
"""An Arabic word written this much more often (on the Zipf scale: a thousand times) than
a Latin name is written in English or French is a word in its own right, not that name:
السبيل ("the way", 4.2) is not the village Sebil (0.0). Real place names stay well inside
it: Raqqa 2.9 / الرقة 4.3, Rutba 1.0 / الرطبة 3.5, Jarablus 1.3 / جرابلس 3.0."""


FUNCTION_N = 30  # Arabic's most frequent words: prepositions, conjunctions, pronouns


@cache
def arabic_function() -> frozenset[str]:
    """Arabic's function words (في، من، على، عن ...), which are never a name's word."""
    words = {arabic_plain(w) for w in wordfreq.top_n_list("ar", FUNCTION_N)}
    return frozenset(words - {arabic_plain("الله")})  # Allah is part of names (Nasrallah)


def is_arabic_common(word: str) -> bool:
    """Is this Arabic text word (possibly with و/ب/ل/ف/ك written on it) an everyday word?"""
    plain = arabic_plain(word)
    common = arabic_common()
    if plain in common:
        return True
    return len(plain) > 3 and plain[0] in _AR_PREFIXES and plain[1:] in common


def _latin_key(word: str) -> str:
    text = unicodedata.normalize("NFKD", anyascii(word) if not word.isascii() else word)
    return "".join(c for c in text.casefold() if c.isalnum())


@cache
def latin_common() -> frozenset[str]:
    """Normalised keys of everyday words in English and French: a one-word name that is one
    of these is matched only as written. Russian needs no list: Russian capitalises names as
    English does, and the matcher never takes a lower-case Cyrillic word for a name (газа,
    "of gas", is not Gaza)."""
    keys = set(COMMON_WORDS)
    keys.update(k for k in (_latin_key(w) for w in wordfreq.top_n_list("fr", TOP_N_FRENCH))
                if k)
    return frozenset(keys)


def zipf(key: str) -> float:
    """How often English or French text writes this word (wordfreq's Zipf scale: 3 is once
    in a million words, 0 never): one dictionary look-up (``_latin_zipf``), cheaper than
    a cache. Keys are the normaliser's lower-case ASCII words; anything else (digits: "g7",
    "cop28") is no word of the lists and counts 0."""
    if not (key.isascii() and key.isalpha() and key.islower()):
        return 0.0
    return (_LATIN_ZIPF or _latin_zipf()).get(key, 0.0)


FAMOUS_ZIPF = 3.2  # about once in every 600,000 words of English or French text


def is_famous(key: str) -> bool:
    """Is this name (a normalised Latin key) one that English or French text writes about
    all the time (Mosul 3.3, Baghdad 3.6, Assad 3.6 on wordfreq's Zipf scale; an ordinary
    family name such as Haddad 2.6-3.0, Wazir 2.3)? Such a name's Arabic form is among the
    most frequent Arabic words too, and may match there."""
    return zipf(key) >= FAMOUS_ZIPF


KNOWN_ZIPF = 2.5  # about once in every 3 million words of English or French text


def is_known_word(key: str) -> bool:
    """Is this Latin key a word that text uses in its own right — an everyday word, or a
    name written often enough (Malawi, Hama, Amman) to be itself rather than a respelling
    of some other name? Such a word matches watchlist words by exact key, never fuzzily."""
    if key in latin_common():
        return True
    return zipf(key) >= KNOWN_ZIPF


WRITTEN_ZIPF = 2.0


def is_written_name(key: str) -> bool:
    """Is this one-word name written often enough (Daraa 2.3, Amman 3.1) that a frequent
    word may be a respelling of it (Dara, Daech for Daesh), rather than another word that
    merely looks like it (Bashar for the village Bawshar, 0.0)?"""
    return zipf(key) >= WRITTEN_ZIPF
