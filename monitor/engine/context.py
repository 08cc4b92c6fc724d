"""Context guards: when a verified spelling match is really a mention of that entity.

A surname alone, an organisation without its generic words, a one-word Arabic match: each is
accepted only when the surrounding words do not point to someone or something else.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.engine.countries import is_country_or_proper_place
from monitor.engine.english import COMMON_WORDS
from monitor.engine.index import Spelling, TermToken
from monitor.engine.names import (
    COMMON_GIVEN_NAMES,
    FAMILY_MODIFIERS,
    FEMALE_GIVEN_NAMES,
    FEMALE_TITLES,
    ORG_PREFIXES,
    TITLES,
    canonical_given_name,
)
from monitor.engine.normalize import Form, readings, strong_readings
from monitor.engine.tokens import Token, TokenList
from monitor.engine.wordlists import (
    EVERYDAY_GAP,
    arabic_zipf,
    is_arabic_common,
    is_famous,
    is_written_name,
    latin_common,
    zipf,
)


def guards_ok(sp: Spelling, got: dict[int, tuple[int, float]], toks: TokenList,
              first: int, last: int) -> bool:
    """Guards for every fuzzy match: a lone Arabic word needs enough consonants, and an
    organisation or place right after an unmatched Arabic organisation word ("Kataib
    Hezbollah") is part of another organisation's name."""
    if sp.exact:
        return True
    if len(got) == 1:
        i, (ti, _) = next(iter(got.items()))
        if not lone_arabic_ok(toks[ti], sp, i):
            return False
    return not after_org_prefix(sp, toks, first)


def lone_arabic_ok(word: Token, sp: Spelling, i: int) -> bool:
    """``guards_ok`` for a word matched alone, which depends on the word only."""
    return word.form.script != "arabic" or _arabic_alone_ok(word, sp.tokens[i], sp.term.kind)


def after_org_prefix(sp: Spelling, toks: TokenList, first: int) -> bool:
    """``guards_ok``'s context: an organisation or place right after an organisation word
    of the text that is not its own."""
    if sp.term.kind in ("org", "place", "topic") and first > 0 and toks[first].joined:
        prev = toks[first - 1]
        return prev.cap and prev.form.key in ORG_PREFIXES  # "Kataib Hezbollah" is another
    return False


def surname_alone_ok(sp: Spelling, toks: TokenList, p: int, conflicts: set[str], text: str,
                     given_skels: frozenset[str]) -> bool:
    """A surname standing alone names the person unless the context says otherwise.


    Rejected: the word itself is a common given name ("Asad Rehman"); another given name
    stands right before it ("Farouk al-Sharaa", "Maher al-Assad" — and then every bare
    surname of that item is taken to be that other person); a capitalised word right
    after it makes it part of another name ("Assad al-Shibani", "Sadr City"); a
    lower-case noun of rule after it names the family's regime ("the Assad regime").
    Latin script needs a capital; a surname that is also a common English word must not
    open a sentence; Arabic script, which has no capitals, needs the article and at least three
    consonants (الشيباني, not خطاب, "speech").
    """
    tok = toks[p]
    form = tok.form
    if form.script == "latin" and not (tok.cap or tok.upper):
        return False
    if sp.tokens[-1].form.common and _sentence_initial(text, tok.lead):
        return False  # "Bush said" mid-sentence is a name; "Bush fires" may not be
    if form.script == "arabic":  # no capitals: only an article-bearing nisba (الشيباني) counts
        reading = next((r for r in readings(form) if r.article), None)
        famous = is_famous(sp.tokens[-1].form.key) and not _is_nisba(sp.tokens[-1])
        if reading is None or len(reading.skel) < 3 or (
                is_arabic_common(tok.raw) and not famous):
            return False  # الإرهابي, "the terrorist", is not the surname Alrahbi
    elif form.key in COMMON_GIVEN_NAMES or canonical_given_name(form.key):
        return False
    elif _is_nisba(sp.tokens[-1]) and not _has_article(tok):
        return False  # al-Iraqi is a family; "Iraqi" is everybody from Iraq
    prev = toks[p - 1] if p > 0 and tok.joined else None
    female_title = prev is not None and prev.form.key in FEMALE_TITLES
    if (sp.tokens[0].form.key in FEMALE_GIVEN_NAMES) != female_title:
        return False  # "Assad" alone is not Asma al-Assad; "Mrs Assad" is, and not Bashar
    title_case = toks.title_case()
    if prev is not None and _is_other_name(prev, title_case, given_skels):
        conflicts.add(sp.term.id)
        return False
    if p + 1 < len(toks) and toks[p + 1].joined:
        nxt = toks[p + 1]
        if nxt.form.key in FAMILY_MODIFIERS and not nxt.cap:
            return False  # "the Assad regime": the family's rule, not the person
        if nxt.cap and not nxt.upper and not title_case and nxt.form.key not in TITLES:
            return False  # "Assad al-Shibani", "Golani Brigade", "Sadr City"
    return True


def _is_nisba(token: TermToken) -> bool:
    """A family name of origin (nisba) whose plain form is an everyday adjective: the
    article, an -i ending, and the word without the article an everyday word, or the base a
    country or a place the world writes about (al-Iraqi: "Iraqi"; al-Sudani: Sudan;
    al-Baghdadi: Baghdad). Without the article the same word is the
    adjective of a place or people, which names everybody from there. Nisbas of tribes and
    towns that are no everyday word (al-Shibani, al-Jolani) may stand alone as surnames do."""
    key = token.form.key
    if not token.article or not key.endswith(("i", "y")):
        return False
    plain = next((r.key for r in strong_readings(token.form) if r.article), key)
    base = plain[:-1]
    return (plain in latin_common() or is_country_or_proper_place(base.capitalize())
            or is_famous(base))


def _has_article(tok: Token) -> bool:
    return tok.article or (tok.raw[:2].lower() in ("al", "el")
                           and any(r.article for r in readings(tok.form)))


def _is_other_name(prev: Token, title_case: bool, given_skels: frozenset[str]) -> bool:
    """Is the word before a bare surname another person's given name?"""
    key = prev.form.key
    if key in TITLES or prev.form.script == "spoof":
        return False
    if prev.form.script == "arabic":
        return prev.form.skel in given_skels
    if not prev.cap:
        return False
    if key in COMMON_GIVEN_NAMES or canonical_given_name(key):
        return True
    if prev.upper:
        return False  # "FM Shaibani", "HTS leader": an acronym is not a given name
    return not title_case and not prev.form.common and key not in COMMON_WORDS




def _sentence_initial(text: str, pos: int) -> bool:
    """Nothing but quotes/spaces between ``pos`` and the previous sentence end or tag."""
    before = text[max(0, pos - 40):pos].rstrip(" \t\n\"'“‘«(")
    return not before or before[-1] in ".!?:;>\n|"


def _arabic_alone_ok(word: Token, term_token: TermToken, kind: str) -> bool:
    """One Arabic word alone is a name only with as much evidence as a Latin word gives
    (Arabic has no capitals to say "this is a name"). An analyst's own Arabic spelling
    needs nothing more. For a Latin name, by how often the world writes it
    (``wordlists``: written, famous) and how many consonants it has:

    * a rarely written name (a village, a family) only with the article (الرطبة for
      Rutba), four consonants, or two long vowels written where the Latin has them
      (ياسوج, Yasuj; زودان, Zudan): a short rare name meets thousands of Arabic words;
    * two consonants (Raqqa, Gaza, Daraa, Daesh) only for a written place or organisation;
    * never a word Arabic or Persian writes a thousand times more often than English and
      French write the name (``EVERYDAY_GAP``: السبيل, "the way", is not Sebil);
    * never an everyday Arabic word (وزير, "minister", is not Wazir), unless the name is
      famous (Mosul, Baghdad, Gaza), or written (Jeddah, Makkah, Tabriz) and the Arabic
      word not far more frequent than it (``NAME_GAP``): their Arabic forms are frequent
      for the same reason — and with two consonants only as the bare word (اللقاء, "the
      meeting", is not Lice; وزارة, "ministry", is not Zara);
    * with three consonants or fewer, an ʿayn or hamza the skeleton dropped must be written
      in the Latin (``_ayn_written``: مسؤول, "official", is not Mosul).
    """
    form = term_token.form
    if form.script == "arabic":
        return True
    skel, key = form.skel, form.key
    size = len(skel)
    same = [r for r in readings(word.form) if r.skel == skel]
    if size < 2 or (size == 2 and kind not in ("place", "org")) or not same:
        return False
    written = is_written_name(key)
    if not written and (size == 2 or (size < 4 and not any(
            r.article or _long_vowels(r) >= 2 for r in same))):
        return False
    gap = arabic_zipf(word.raw) - zipf(key)
    if gap >= EVERYDAY_GAP:
        return False
    if is_arabic_common(word.raw):
        if not (is_famous(key) or (written and gap < NAME_GAP)):
            return False
        same = [r for r in same if size > 2 or r is word.form]
        if not same:
            return False
    if size == 2:  # a vowel pair of the Latin is a letter in Arabic: حل is not Hail (حائل)
        same = [r for r in same if _pairs_written(r, form)]
    return size >= 4 or any(_ayn_written(r, form) for r in same)


def _pairs_written(arabic: Form, latin: Form) -> bool:
    """Every gap where the Latin spelling writes two vowel letters (Hail, Daraa, Daesh)
    holds a letter in the Arabic word (ا و ي, ʿayn or hamza): with two consonants that is
    most of what tells the name from the thousands of words that share them."""
    ar_slots, la_slots = arabic.vowels, latin.vowels
    if ar_slots is None or la_slots is None or len(ar_slots) != len(la_slots):
        return True
    return all(ar_slots[i] or len(la_slots[i]) < 2 for i in range(len(ar_slots)))


NAME_GAP = 2.5
"""How much more often (Zipf) Arabic may write an everyday word than English or French
write a written place's name for the word to be that place: جدة 4.8 / Jeddah 2.8, مكة 4.9 /
Makkah 2.5, تبريز 4.1 / Tabriz 2.2; وزير ("minister") 5.5 / Wazir 2.3 is too far."""


def _long_vowels(form: Form) -> int:
    """Long vowels (ا و ي) an Arabic reading writes between or after its consonants; they
    agree with the Latin spelling's vowels (``arabic_vowels_agree``) by the time this is
    asked, so each is evidence."""
    return sum(len(slot.replace("^", "").replace("*", "")) for slot in (form.vowels or ()))


def _ayn_written(arabic: Form, latin: Form) -> bool:
    """Every ʿayn or hamza inside the Arabic word stands where the Latin spelling writes a
    long vowel or a vowel pair for it (داعش: Da*e*sh), not where it writes one short vowel
    or nothing (مسؤول, "official": Mos*u*l). With three consonants or fewer that letter is
    most of the evidence."""
    ar_slots, la_slots = arabic.vowels, latin.vowels
    if ar_slots is None or not any("*" in slot for slot in ar_slots[1:]):
        return True  # (a final one counts too: جزء, "part", is not Gaza)
    if la_slots is None or len(ar_slots) != len(la_slots):
        return False
    after_first = range(1, len(ar_slots))  # an initial alef is not a dropped letter
    return all(len(la_slots[i]) >= 2 for i in after_first if "*" in ar_slots[i])


def partial_org_ok(sp: Spelling, got: dict[int, tuple[int, float]], missing: list[int],
                   toks: Sequence[Token]) -> bool:
    """An organisation or place named without some words: only generic ones may be missing
    ("Tahrir al-Sham" for Hayat Tahrir al-Sham; "Nusra" for Jabhat al-Nusra) — but not a
    militia-type head word (Kataib, Jaish, Liwa ...), which names a different group — at least
    one matched word must be uncommon, and a lone word must be distinctive: not a common
    English word, at least five letters, written as the analyst wrote it (no respelling),
    and not a person's name or a name the world writes about for its own sake ("Bashar" is
    not the Basheer Group, "Assad" is not the Assad Group)."""
    if any(not sp.tokens[i].generic or sp.tokens[i].form.key in ORG_PREFIXES for i in missing):
        return False  # "Hezbollah" alone is not Kataib Hezbollah
    if all(sp.tokens[i].form.common for i in got):
        return False  # "Syrian National" alone is not the Syrian National Army
    if len(got) == 1:
        i, (ti, score) = next(iter(got.items()))
        tok, word = sp.tokens[i], toks[ti].form.key
        if tok.form.common or len(tok.form.key) < 5 or tok.generic or score < 100:
            return False
        return not (word in COMMON_GIVEN_NAMES or canonical_given_name(word)
                    or is_famous(word))
    return True
