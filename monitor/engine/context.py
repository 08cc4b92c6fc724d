"""Context guards: when a verified spelling match is really a mention of that entity.

A surname alone, an organisation without its generic words, a one-word Arabic match: each is
accepted only when the surrounding words do not point to someone or something else.
"""

from __future__ import annotations

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
from monitor.engine.normalize import readings
from monitor.engine.tokens import Token, TokenList


def guards_ok(sp: Spelling, got: dict[int, tuple[int, float]], toks: TokenList,
              first: int, last: int) -> bool:
    """Guards for every fuzzy match: a lone Arabic word needs enough consonants, and an
    organisation or place right after an unmatched Arabic organisation word ("Kataib
    Hezbollah") is part of another organisation's name."""
    if sp.exact:
        return True
    if len(got) == 1:
        i, (ti, _) = next(iter(got.items()))
        word = toks[ti]
        if word.form.script == "arabic" and not _arabic_alone_ok(word, sp.tokens[i]):
            return False
    if sp.term.kind in ("org", "place", "topic") and first > 0 and toks[first].joined:
        prev = toks[first - 1]
        if prev.cap and prev.form.key in ORG_PREFIXES:
            return False  # "Kataib Hezbollah" is another organisation
    return True


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
        if reading is None or len(reading.skel) < 3:
            return False
    elif form.key in COMMON_GIVEN_NAMES or canonical_given_name(form.key):
        return False
    prev = toks[p - 1] if p > 0 and tok.joined else None
    female_title = prev is not None and prev.form.key in FEMALE_TITLES
    if (sp.tokens[0].form.key in FEMALE_GIVEN_NAMES) != female_title:
        return False  # "Assad" alone is not Asma al-Assad; "Mrs Assad" is, and not Bashar
    title_case = _is_title_case(toks)
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


def _is_title_case(toks: TokenList) -> bool:
    """Headline style ("Syria's Assad Flees To Moscow"): most longer words capitalised."""
    longer = [r for r in toks.raws if len(r) > 3 and (r[0].isupper() or r[0].islower())]
    return len(longer) >= 4 and sum(r[0].isupper() for r in longer) >= 0.7 * len(longer)


def _arabic_alone_ok(word: Token, term_token: TermToken) -> bool:
    """One Arabic word alone: at least three consonants, and with only three it must carry
    have no dropped ʿayn/hamza inside (so مسؤول and المسئول, "official", are not Mosul);
    terms of two consonants (Daraa, Raqqa) never match one Arabic word alone (الإدارة,
    "the administration", is not Daraa)."""
    skel = term_token.form.skel
    if len(skel) < 3:
        return False
    same = [r for r in readings(word.form) if r.skel == skel]
    return len(skel) >= 4 or any(r.silent == 0 for r in same)


def partial_org_ok(sp: Spelling, got: dict[int, tuple[int, float]], missing: list[int]) -> bool:
    """An organisation or place named without some words: only generic ones may be missing
    ("Tahrir al-Sham" for Hayat Tahrir al-Sham; "Nusra" for Jabhat al-Nusra) — but not a
    militia-type head word (Kataib, Jaish, Liwa ...), which names a different group — at least
    one matched word must be uncommon, and a lone word must be distinctive (not a common
    English word, at least five letters)."""
    if any(not sp.tokens[i].generic or sp.tokens[i].form.key in ORG_PREFIXES for i in missing):
        return False  # "Hezbollah" alone is not Kataib Hezbollah
    if all(sp.tokens[i].form.common for i in got):
        return False  # "Syrian National" alone is not the Syrian National Army
    if len(got) == 1:
        tok = sp.tokens[next(iter(got))]
        return not tok.form.common and len(tok.form.key) >= 5 and not tok.generic
    return True
