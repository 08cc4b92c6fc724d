"""Normalisation of words (Latin, Arabic, Cyrillic) into comparable forms, offsets untouched.

How offsets survive normalisation: we never build a normalised copy of the whole field.
``mask_markup`` first blanks HTML tags and rewrites each HTML entity as its character padded
with zero-width spaces, so the masked string has exactly the original length; tokens are then
found on the masked string (``tokens.py``) and each token is normalised on its own. A match
therefore spans original characters ``tokens[i].start .. tokens[j].end``, whatever
normalisation did inside.

A token's ``Form`` holds:

* ``key``   exact-comparison key: NFKD, diacritics removed, case-folded, apostrophes, ʿayn and
  hamza signs and zero-width characters deleted, possessive 's dropped. Arabic-script tokens get
  ``"~" + skeleton`` so they never collide with a Latin key.
* ``skel``  consonant skeleton shared by Latin transliterations and Arabic script:
  sh/ch/sch/ش -> x, kh/خ -> H (kept apart from h: Doha is not Dukha, خمس is not Homs),
  gh/غ -> g, j/dj/ج -> g (Egyptian "Golani" = "Jolani"),
  th/ث -> t, dh/ذ/ظ -> z, q/ق -> k, vowels dropped,
  doubles collapsed, a final h after a vowel dropped (Rutbah = Rutba), i/y before a vowel kept
  as the consonant y (Sharia = "xry" is not Sharaa = "xr").
* ``vowels`` the vowel groups between skeleton consonants (Latin only), so Bashar ≠ Bashir.
* ``alts``  other readings: joined article removed (Alsharaa, الشرع), Arabic ta marbuta read
  as -at (هيئة = Hayat), Arabic conjunction و removed.

Scripts: Latin with diacritics is folded; Cyrillic or Greek words are transliterated
(anyascii), since Russian and Greek outlets name the same people; a single word that MIXES
Latin with Cyrillic/Greek letters is a homoglyph spoof and gets a key that matches nothing.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from typing import Final, final

from anyascii import anyascii

from monitor.engine.english import COMMON_WORDS

IGNORABLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f"
_IGNORABLE_TABLE = {ord(c): None for c in IGNORABLE}
APOSTROPHES = "'’ʼʿʾ‘`´ʹʻ′"
_MARKS = "\u0300-\u036f\u064b-\u065f\u0670\u06d6-\u06ed"
# Underscores are masked to spaces first (mask_markup), so \w means letters and digits here;
# one character class keeps the scan in the regex engine's fast path.
_WORD = rf"[\w{_MARKS}{IGNORABLE}]"
TOKEN_RE = re.compile(rf"\w{_WORD}*(?:[{APOSTROPHES}]{_WORD}+)*")
_TAG_RE = re.compile(r"<(?:/?[A-Za-z][^<>]{0,2000}|!--.{0,5000}?--)>", re.S)
_ENTITY_RE = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")

MAX_TOKEN_CHARS = 64  # longer "words" (URLs, "hello"*10000) are compared exactly, never fuzzily


def mask_markup(text: str) -> str:
    """Blank HTML tags and decode HTML entities without changing the string's length.

    A tag becomes spaces (a block tag ends in "|", a word boundary); an entity becomes its
    character followed by zero-width spaces (which normalisation deletes), so
    ``Shara&#8217;a`` still reads as one word and offsets computed on the result are offsets
    into ``text``.
    """
    if "_" in text:
        text = text.replace("_", " ")  # @Asaad_Shaibani: two words
    if "<" in text:
        text = _TAG_RE.sub(_tag, text)
    if "&" in text:
        text = _ENTITY_RE.sub(_entity, text)
    return text


_BLOCK_TAG_RE = re.compile(r"</?(?:p|br|div|li|ul|ol|h[1-6]|td|tr|table|blockquote|hr)\b", re.I)


def _tag(m: re.Match[str]) -> str:
    """Inline tags become spaces; block tags end in "|" so no name is read across them."""
    raw = m.group()
    if _BLOCK_TAG_RE.match(raw):
        return " " * (len(raw) - 1) + "|"
    return " " * len(raw)


def _entity(m: re.Match[str]) -> str:
    raw = m.group()
    char = html.unescape(raw)
    if len(char) != 1 or char == raw:
        return raw if char == raw else " " * len(raw)
    if char in "<>":
        char = " "
    return char + "\u200b" * (len(raw) - 1)


# ---------------------------------------------------------------- Latin side

_VOWELS = frozenset("aeiou")
_DIGRAPHS = (("dsch", "g"), ("tsch", "x"), ("sch", "x"), ("sh", "x"), ("ch", "x"), ("kh", "H"),
             ("gh", "g"), ("th", "t"), ("dh", "z"), ("ph", "f"), ("dj", "g"), ("zh", "g"),
             ("ck", "k"))
_FRENCH_MUTE_E = re.compile(r"[aeiou](?:[bdfklmnrstz]|ss)e$")
_DIGRAPH_RE = re.compile("|".join(d for d, _ in _DIGRAPHS))
_DIGRAPH_MAP = dict(_DIGRAPHS)
_SINGLE = str.maketrans({"q": "k", "c": "k", "j": "g"})
_LATIN_PRE = str.maketrans({"ş": "sh", "Ş": "Sh", "ç": "ch", "Ç": "Ch", "ž": "zh", "Ž": "Zh",
                            "š": "sh", "Š": "Sh", "č": "ch", "Č": "Ch"})
_LATIN_EXTRA = str.maketrans({"ø": "o", "ł": "l", "ı": "i", "ß": "ss", "æ": "ae", "œ": "oe",
                              "đ": "d", "þ": "th", "ð": "d", "ħ": "h"})
_VOWEL_CLASS = {"a": "A", "e": "E", "i": "I", "y": "I", "o": "U", "u": "U"}


def latin_skeleton(base: str, keep_h: bool = False) -> tuple[str, tuple[str, ...], bool]:
    """(skeleton, vowel groups, ends-in-vowel) of a lower-case ASCII key."""
    if not keep_h and len(base) > 3 and base.endswith("h") and base[-2] in "ae":
        base = base[:-1]
    elif len(base) >= 5 and _FRENCH_MUTE_E.search(base):
        base = base[:-1]  # French writes a mute -e: Yassine = Yassin, Imane = Iman
    s = _DIGRAPH_RE.sub(lambda m: _DIGRAPH_MAP[m.group()], base).translate(_SINGLE)
    cons: list[str] = []
    slots: list[str] = []
    cur = ""
    n = len(s)
    for i, ch in enumerate(s):
        vowel_like = ch in _VOWELS or (ch in "yw" and i > 0)
        if ch == "y" and cons and cur.endswith("I") and s[i - 1] == "i" and i < n - 1 and \
                s[i + 1] in "aoue":
            cur = cur[:-1]  # Ziyad = Ziad: the i before a glide is the glide
        if ch in "iy" and 0 < i < n - 1 and (
                s[i + 1] in "aou" or (ch == "y" and s[i + 1] == "e")) and (
                s[i - 1] not in _VOWELS or (ch == "y" and s[i - 1] in "ie")):
            # Sharia, Syria, Sulaimaniyah, Mohammadiyeh, Maryem: a glide, written ي in
            # Arabic (so the -iyeh of a place is not the -i of a family: al-Muhammadi)
            vowel_like = False
            ch = "y"
        elif ch == "w" and 0 < i < n - 1 and s[i + 1] in _VOWELS:
            vowel_like = False  # Marwan, Raqqawi: a consonant, written و in Arabic
        if vowel_like:
            cur += _VOWEL_CLASS.get(ch, "U")
            continue
        if cons and cons[-1] == ch and not cur:
            continue
        slots.append(cur)
        cur = ""
        cons.append(ch)
    slots.append(cur)
    final_vowel = bool(s) and (s[-1] in _VOWELS or s[-1] == "y")
    return "".join(cons), tuple(slots), final_vowel


# Vowel classes as bits, and per class the "codes" two compatible vowels share: A and E
# share one, E and I another, U its own, so a against i (Bashar, Bashir) shares none.
_CLASS_BIT = {"A": 1, "E": 2, "I": 4, "U": 8}
_CLASS_CODES = {"A": 1, "E": 1 | 2, "I": 2, "U": 4}
_SLOT_CODES: dict[str, int] = {}  # vowel group -> codes of its classes (``_slot_mask``)
_SLOT_BITS: dict[str, int] = {}  # vowel group -> bits of its classes


def _slot_mask(slot: str, per_class: dict[str, int], memo: dict[str, int]) -> int:
    """The union of ``per_class`` over a vowel group's classes, memoised for groups of up
    to four letters (at most 340 of them: a feed's "aeiouaeiou…" is not remembered)."""
    mask = memo.get(slot)
    if mask is None:
        mask = 0
        for c in slot:
            mask |= per_class.get(c, 0)
        if len(slot) <= 4:
            memo[slot] = mask
    return mask


def vowels_compatible(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Vowel groups agree slot by slot: shared classes, or e against a/i.

    Transliteration varies e/a (Ahmed/Ahmad), e/i (Idleb/Idlib), o/u and diphthongs
    (Hussein/Husayn), but a against i is a different name (Bashar/Bashir). Two groups agree
    exactly when their classes share a code (``_CLASS_CODES``): a table look-up per group,
    asked for every comparison of two words with the same consonants.
    """
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    for i in range(len(a)):  # an index loop: compiled, zip(strict=True) is a Python call
        x, y = a[i], b[i]
        if x == y:
            continue
        if not x or not y:
            return False  # Abdi is not Abadi
        if not (_slot_mask(x, _CLASS_CODES, _SLOT_CODES)
                & _slot_mask(y, _CLASS_CODES, _SLOT_CODES)):
            return False
    return True


# ---------------------------------------------------------------- Arabic side

_AR_NORMAL = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ا", "ی": "ي",
                            "ک": "ك", "ې": "ي", "ە": "ه", "ۀ": "ه", "ـ": None})
_AR_CONS = {"ب": "b", "ت": "t", "ث": "t", "ج": "g", "ح": "h", "خ": "H", "د": "d", "ذ": "z",
            "ر": "r", "ز": "z", "س": "s", "ش": "x", "ص": "s", "ض": "d", "ط": "t", "ظ": "z",
            "غ": "g", "ف": "f", "ق": "k", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h",
            "پ": "p", "چ": "x", "ژ": "g", "گ": "g", "ڤ": "v"}
_AR_SILENT = frozenset("اعءؤئة")
_AR_GLIDE_NEXT = frozenset("اةى")
_AR_PREFIXES = (("وال", True), ("بال", True), ("فال", True), ("كال", True), ("لل", True),
                ("ال", True))
_ARABIC_RE = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")


_AR_LONG = {"ا": "A", "و": "U", "ي": "I"}
_AR_HAMZA_AYN = frozenset("عءؤئ")


def arabic_skeleton(word: str, waw: bool = False
                    ) -> tuple[str, bool, int, tuple[str, ...]]:
    """(skeleton, ends-in-vowel, medial ʿayn/hamza count, vowel slots) of an Arabic word
    (no article). A medial و is read as a vowel unless ``waw`` (then it is w before ا/ة/ي).

    The vowel slots parallel Latin's (``latin_skeleton``): for each gap around the skeleton's
    consonants, the long vowels Arabic writes there (``A`` for ا, ``U`` for و, ``I`` for ي)
    and ``*`` for an ʿayn or hamza, which Latin spells with any vowel or an apostrophe.
    Arabic leaves short vowels unwritten, so an empty slot says nothing; a written long vowel
    is evidence the Latin spelling must agree with (``arabic_vowels_agree``).
    """
    out: list[str] = []
    slots: list[str] = []
    cur = ""
    silent = 0
    n = len(word)
    for i, ch in enumerate(word):
        c = _AR_CONS.get(ch)
        if c is None:
            if ch == "و":
                c = "w" if i == 0 or (waw and i + 1 < n and word[i + 1] in "اةي") else None
            elif ch == "ي":
                glide = i == 0 or (i + 1 < n and (word[i + 1] in _AR_GLIDE_NEXT or
                                                   word[i + 1] == ch))
                c = "y" if glide else None
            elif ch in _AR_HAMZA_AYN and 0 < i < n - 1:
                silent += 1
        if c:  # no collapsing: Arabic writes a doubled consonant once (shadda)
            out.append(c)
            slots.append(cur)
            cur = ""
        elif ch == "ا" and i == 0:
            cur += "^"  # a word-initial alef: a hamza with any vowel (إدلب, أحمد)
        elif ch in _AR_LONG:
            cur += _AR_LONG[ch]
        elif ch in _AR_HAMZA_AYN:
            cur += "*"
    slots.append(cur)
    final_vowel = bool(word) and (word[-1] in _AR_SILENT or word[-1] in "وي")
    return "".join(out), final_vowel, silent, tuple(slots)


# What a long vowel written in Arabic needs in the Latin gap (as ``_CLASS_BIT`` bits):
# ا an a or e, و a u or o, ي an i or e
_AR_NEEDS = {"A": 1 | 2, "U": 8, "I": 4 | 2}


def arabic_vowels_agree(arabic: tuple[str, ...] | None, latin: tuple[str, ...] | None) -> bool:
    """Does a Latin spelling show the long vowels an Arabic word writes?

    Arabic writes long vowels (ا و ي) and leaves short ones out, so a long vowel in the
    Arabic word must have a matching vowel in the same gap of the Latin spelling (الحدود,
    "the borders", has و where Haddad has a; الإرهابي has ا where Alrahbi has none). A
    Latin gap of three or more vowel letters (Cherkaoui's "aoui", written اوي) needs more
    than one Arabic letter. Gaps with ʿayn or hamza accept anything. Unaligned slots
    (different consonant counts) are not judged here. A word-initial alef (a hamza seat)
    needs a Latin vowel before the first consonant (أحمد: Ahmad; أقبل, "I accept", is not
    Kabul), and a Latin vowel there needs an alef, ʿayn or long vowel before the Arabic word's
    first consonant (Omar: عمر; Eslam is not سلام).
    """
    if arabic is None or latin is None or len(arabic) != len(latin):
        return True
    if latin[0] and not arabic[0]:
        return False  # Latin begins with a vowel, Arabic with a consonant: Eslam is not سلام
    if arabic[0] and "*" in arabic[0] and not latin[0]:
        return False  # an initial ʿayn is a vowel in Latin (عادل: Adil): العادل is not Dail
    for i in range(len(arabic)):  # an index loop: see ``vowels_compatible``
        ar, la = arabic[i], latin[i]
        bits = _slot_mask(la, _CLASS_BIT, _SLOT_BITS)
        if "^" in ar:  # a word-initial alef stands for a vowel the Latin must begin with
            if not la:
                return False  # أقبل ("I accept") is not Kabul; إكس is not Kais
            # and a long vowel written after it says which: ایران (Iran) is not Oran
            for c in ar:
                need = _AR_NEEDS.get(c)
                if need is not None and not need & bits:
                    return False
            continue
        if "*" in ar:
            continue
        for c in ar:
            need = _AR_NEEDS.get(c)
            if need is not None and not need & bits:
                return False
        if len(la) >= 3 and len(ar) < 2:
            return False
    return True


# ---------------------------------------------------------------- forms

@final
class Form:
    """One normalised reading of a token.

    A plain class with read-only attributes rather than a frozen dataclass: a cold matcher
    makes thousands per article, and compiled (``native.py``) one costs 30 ns against 700
    for a frozen dataclass, whose ``__init__`` stays interpreted. Equal and hashed by value,
    as the dataclass was."""

    __slots__ = ("alts", "article", "common", "final_vowel", "key", "script", "silent", "skel",
                 "vowels", "weak")

    def __init__(self, key: str, skel: str, vowels: tuple[str, ...] | None, final_vowel: bool,
                 script: str, article: bool = False, silent: int = 0, common: bool = False,
                 alts: tuple[Form, ...] = (), weak: bool = False) -> None:
        self.key: Final = key
        self.skel: Final = skel
        self.vowels: Final = vowels  # None: unknown (Arabic script)
        self.final_vowel: Final = final_vowel
        self.script: Final = script  # "latin" | "arabic" | "spoof"
        self.article: Final = article  # a joined article was removed to get this reading
        self.silent: Final = silent  # Arabic: medial ʿayn/hamza letters the skeleton dropped
        self.common: Final = common  # a frequent English word
        self.alts: Final = alts
        self.weak: Final = weak  # a guess for text only (possessive without apostrophe)

    def _fields(self) -> tuple[object, ...]:
        return (self.key, self.skel, self.vowels, self.final_vowel, self.script, self.article,
                self.silent, self.common, self.alts, self.weak)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Form) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"Form(key={self.key!r}, skel={self.skel!r}, vowels={self.vowels!r}, "
                f"final_vowel={self.final_vowel}, script={self.script!r}, "
                f"article={self.article}, silent={self.silent}, common={self.common}, "
                f"alts={self.alts!r}, weak={self.weak})")


def _latin_form(key: str, article: bool = False, alts: tuple[Form, ...] = (),
                keep_h: bool = False) -> Form:
    skel, vowels, final_vowel = latin_skeleton(key, keep_h)
    return Form(key, skel, vowels, final_vowel, "latin", article, 0, key in COMMON_WORDS, alts)


_SUN_LETTERS = frozenset("tdrzsnl")


def _weak(form: Form) -> Form:
    return Form(form.key, form.skel, form.vowels, form.final_vowel, "latin", form.article,
                common=form.common, weak=True)


def latin_key(raw: str) -> str:
    text = unicodedata.normalize("NFKD", raw.translate(_IGNORABLE_TABLE).translate(_LATIN_PRE))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.translate(_LATIN_EXTRA)
    if len(text) > 2 and text[-2] in APOSTROPHES and text[-1] == "s":
        text = text[:-2]  # possessive: Assad's
    if text.isascii():
        return "".join(c for c in text if c.isalnum())
    return "".join(c for c in text if c.isalnum() and unicodedata.category(c) != "Lm")


def _has_script(raw: str, lo: int, hi: int) -> bool:
    return any(lo <= ord(c) <= hi for c in raw)


@lru_cache(maxsize=200_000)
def token_form(raw: str) -> Form:
    """The normalised form of one raw token (cached: news vocabulary repeats)."""
    if len(raw) > MAX_TOKEN_CHARS:
        return Form(raw.casefold(), "", None, False, "spoof")
    if _ARABIC_RE.search(raw):
        return _arabic_form(raw)
    if raw.isascii():
        key = latin_key(raw) if not raw.isalnum() else raw.lower()
    else:
        nfkc = unicodedata.normalize("NFKC", raw)
        cyr_or_greek = _has_script(nfkc, 0x0370, 0x052F)
        if cyr_or_greek and any("a" <= c.lower() <= "z" for c in nfkc):
            return Form("\x00" + raw, "", None, False, "spoof")  # Аcme with a Cyrillic А
        key = latin_key(anyascii(nfkc) if cyr_or_greek else nfkc)
    if not key:
        return Form("", "", None, False, "latin")
    alts: list[Form] = []
    if not raw.isascii() and "kh" in key and _has_script(raw, 0x0400, 0x04FF):
        alts.append(_latin_form(key.replace("kh", "h")))  # Russian х is ح as well as خ
    common = key in COMMON_WORDS
    if key[:2] in ("al", "el") and len(key) >= 6 and not common:
        alts.append(_latin_form(key[2:], article=True))
    if (len(key) >= 5 and key[0] in "ae" and key[1] == key[2] and key[1] in _SUN_LETTERS
            and not common and raw[0].isupper()):
        alts.append(_weak(_latin_form(key[2:], article=True)))  # Ezzor = ez-Zor
    if len(key) > 3 and key[-1] == "h" and key[-2] in "ae" and not common:
        alts.append(_latin_form(key, keep_h=True))  # Saleh = صالح, Rutbah = الرطبة
    if key.endswith("s") and len(key) >= 5 and not common and raw[0].isupper():
        alts.append(_weak(_latin_form(key[:-1])))  # "Assads father": apostrophe lost
    return _latin_form(key, alts=tuple(alts))


def _arabic_form(raw: str) -> Form:
    word = "".join(c for c in unicodedata.normalize("NFKC", raw)
                   if not unicodedata.combining(c)).translate(_AR_NORMAL)
    word = word.translate(_IGNORABLE_TABLE)
    readings: list[tuple[str, bool]] = [(word, False)]
    for prefix, article in _AR_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            readings.append((word[len(prefix):], article))
            break
    if word.startswith("و") and len(word) >= 4 and not word.startswith("وال"):
        readings.append((word[1:], False))
    forms: list[Form] = []
    for text, article in readings:
        if text.endswith("الله") or text.endswith("لله"):
            text = text[:-4] if text.endswith("الله") else text[:-3]
            tail = "l"  # Allah: Latin "allah" keeps one l (final h after a vowel dropped)
        else:
            tail = ""
        skel, final_vowel, silent, slots = arabic_skeleton(text)
        if tail:
            skel, slots = skel + tail, (*slots, "")
        final_vowel = final_vowel or bool(tail)
        forms.append(Form("~" + skel, skel, slots, final_vowel, "arabic", article, silent))
        if "و" not in text[1:]:
            wskel, wslots = skel, slots  # the reading below differs only by a medial و
        else:
            wskel, _, _, wslots = arabic_skeleton(text, waw=True)
            if tail:
                wskel, wslots = wskel + tail, (*wslots, "")
        if wskel != skel:  # مروان = Marwan: و before a long vowel is a consonant
            forms.append(Form("~" + wskel, wskel, wslots, final_vowel, "arabic", article,
                              silent))
        if text.endswith("ة"):  # construct state: هيئة تحرير = Hayat Tahrir
            forms.append(Form("~" + skel + "t", skel + "t", (*slots, ""), False, "arabic",
                              article, silent))
    head, rest = forms[0], tuple(forms[1:])
    return Form(head.key, head.skel, head.vowels, head.final_vowel, "arabic", False,
                head.silent, False, rest)


def readings(form: Form) -> tuple[Form, ...]:
    """The form and its alternative readings."""
    return (form, *form.alts) if form.alts else (form,)


def strong_readings(form: Form) -> tuple[Form, ...]:
    """Readings a watchlist spelling may be indexed and compared under (no guesses)."""
    if not form.alts:
        return (form,)
    return tuple(r for r in readings(form) if not r.weak)
