"""Work the matcher skips at the size of a real watchlist changes no result.

At 50,000 names a new word of the news finds dozens of watchlist words by its keys, and
most of that work cannot lead to a match: a person's name waiting for its second word
(scored only when one is near), a family name alone in an item that does not name the
person (scored only when it does), typo keys of a word that is itself a watchlist word
(never typo-matched), Latin spellings beginning with a vowel for an Arabic word that
cannot (never vowel-matched), words across punctuation from a name (never aligned). Each
shortcut is tested here against the rule it relies on; ``test_matching_prefilter.py`` runs
whole items with and without the neighbour test.
"""

from __future__ import annotations

import itertools
import json

import pytest

from monitor.engine.index import WAITING, _initials, deletions
from monitor.engine.matcher import Found, FuzzyMatcher, _resolve, compile_watchlists
from monitor.engine.normalize import arabic_vowels_agree, readings, token_form
from monitor.engine.similarity import compare
from monitor.engine.tokens import tokenize
from monitor.engine.watchlist import load_watchlist
from monitor.models import Item, Term, Watchlist
from tests.test_matching_dev import DEV
from tests.test_matching_primitives import ARABIC_SLOTS, LATIN_SLOTS

TERMS = (
    Term("assad", "Bashar al-Assad", (), "person"),
    Term("sharaa", "Ahmad al-Sharaa", (), "person"),
    Term("faruq", "Faruq", (), "place"),
    Term("faroq-group", "Faroq Group", (), "org"),
)


def item(text: str, n: int = 1) -> Item:
    return Item(id=str(n), source="s", content=text)


def test_a_name_waiting_for_its_second_word_is_scored_only_when_one_is_near() -> None:
    """"Bashar" alone is not Bashar al-Assad: the name's group is kept unscored for the word,
    and scored at the first occurrence with "Assad" after it."""
    m = compile_watchlists([Watchlist("w", TERMS)])
    assert m.find(item("Bashar said the talks went well.")) == []
    entry = m._cand_cache["Bashar"]
    assert entry[4] and not entry[1]  # deferred, nothing scored
    assert "Bashar" not in m._cmp_cache
    found = m.find(item("President Bashar al-Assad said the talks went well.", 2))
    assert [x.matched_text for x in found] == ["Bashar al-Assad"]
    assert not m._cand_cache["Bashar"][4] and m._cand_cache["Bashar"][1]


def _bashar_group(m: FuzzyMatcher) -> int:
    sp = next(sp for sp in m.index.spellings if sp.term.id == "assad" and not sp.reversed)
    return m.index.group_of[sp.index][0]


def test_a_waiting_group_is_filed_apart_and_found_whole_with_its_gates() -> None:
    """"Bashar" waits for "Assad": under its keys it is filed as waiting, a text word takes
    the key's waiting set whole, and the set's gates open it at "Assad" after it; a caller
    that does not ask for waiting sets still finds it among the anchors."""
    m = compile_watchlists([Watchlist("w", TERMS)])
    index = m.index
    gid = _bashar_group(m)
    form = token_form("Bashar")
    assert gid in index.probe(form)[0]
    waiting: list[frozenset[int]] = []
    anchors, _ = index.probe(form, waiting=waiting)
    assert gid not in anchors
    sets = [w for w in waiting if gid in w]
    assert sets
    after, _, _, _ = index.waiting[sets[0]]
    assert any(index.groups[g].form.key == "assad" for g in after)  # opened by "Assad"
    assert index.is_anchor_key("bashar")  # a waiting anchor is still an anchor's key


def test_a_marked_transliteration_opens_no_waiting_name_without_the_letter() -> None:
    """"Darʿā" is a scholar's Daraa: its ayn is a letter "Dara" lacks. "Dara" waits for
    "Ahmad", and with "Ahmad" before it the waiting name is opened and scored, but not for
    the marked word, whose look-up leaves such names out."""
    m = compile_watchlists([Watchlist("w", (Term("d", "Ahmad Dara", (), "person"),))])
    assert [x.matched_text for x in m.find(item("Ahmad Dara said the talks went well."))] \
        == ["Ahmad Dara"]
    assert m.find(item("Ahmad Darʿā said the talks went well.", 2)) == []


def test_without_the_prefilter_nothing_waits() -> None:
    """Laid out again without the neighbour test, every posting is verified wherever its
    anchor is: no key keeps a waiting set, and "Bashar" is an anchor like any other."""
    m = compile_watchlists([Watchlist("w", TERMS)])
    m.index.without_prefilter()
    for table in (m.index._key_roles, m.index._skel_roles, m.index._del_roles):
        assert not any(roles[WAITING] for roles in table.values())
    waiting: list[frozenset[int]] = []
    anchors, _ = m.index.probe(token_form("Bashar"), waiting=waiting)
    assert _bashar_group(m) in anchors and not waiting


def test_a_family_name_alone_is_compared_only_in_an_item_naming_the_person() -> None:
    m = compile_watchlists([Watchlist("w", TERMS)])
    assert m.find(item("Sharaa said the talks went well.")) == []
    assert m._fam_cache["Sharaa"]  # its family-name groups were looked up ...
    assert "Sharaa" not in m._cmp_cache  # ... and not compared
    found = m.find(item("Ahmad al-Sharaa arrived. Sharaa said the talks went well.", 2))
    assert [x.matched_text for x in found] == ["Ahmad al-Sharaa", "Sharaa"]


@pytest.mark.parametrize(("text", "word"), [
    ("Bashar; al-Assad was not there.", "Bashar"),  # punctuation between the two words
    ("Bashar. Assad was not there.", "Bashar"),
    ("Ahmad, Sharaa and others.", "Sharaa"),  # a comma before the family name
])
def test_no_gate_opens_across_punctuation(text: str, word: str) -> None:
    """``_align`` never grows a name across punctuation (only a reversed name's comma after
    its family name), so the neighbour test does not look there."""
    m = compile_watchlists([Watchlist("w", TERMS)])
    toks = tokenize(text, 10_000)
    p = toks.raws.index(word)
    m.find(item(text))
    entry = m._cand_cache[word]
    assert entry[4]  # the word's name waits for its second word
    assert m._near(toks, p, *entry[2:4], *entry[5:7]) == set()
    assert m.find(item(text, 2)) == []
    joined = text.replace(";", "").replace(".", "", 1).replace(",", "", 1)
    assert m.find(item(joined, 3))  # without the punctuation: a mention


def test_a_patronymic_between_the_words_is_looked_past() -> None:
    m = compile_watchlists([Watchlist("w", TERMS)])
    text = "Ahmed Hussein al-Sharaa met envoys."
    toks = tokenize(text, 10_000)
    p = toks.raws.index("Sharaa")
    entry = m._candidates(toks[p])
    assert entry[4] and m._near(toks, p, *entry[2:4], *entry[5:7])
    assert [x.matched_text for x in m.find(item(text, 2))] == ["Ahmed Hussein al-Sharaa"]


def test_a_partial_mention_yields_to_a_full_one_on_the_same_words_in_either_order() -> None:
    """The place Faruq and the partial "Faroq Group" on one word: the full mention is kept,
    whichever was verified first (it depended on the order of a set)."""
    m = compile_watchlists([Watchlist("w", TERMS)])
    by_term = {sp.term.id: sp for sp in m.index.spellings}
    full = Found(by_term["faruq"], "content", 3, 3, 20, 25, 100.0, False, False, "Fārūq")
    part = Found(by_term["faroq-group"], "content", 3, 3, 20, 25, 90.0, True, False, "Fārūq")
    assert _resolve([full, part]) == [full]
    assert _resolve([part, full]) == [full]


def test_a_watchlist_word_is_looked_up_by_its_plural_keys_only() -> None:
    """A word that is itself a watchlist word is never typo-matched, so of its deletions
    only the ones a plural needs are looked up; any other word keeps them all."""
    m = compile_watchlists([Watchlist("w", (Term("g", "Republican Guard", (), "org"),
                                            Term("h", "Guards Hotel", (), "org")))])
    index = m.index
    assert index.edit_keys(token_form("Guard")) == ("guard",)
    assert index.edit_keys(token_form("Guards")) == ("guards", "guard")
    assert set(index.edit_keys(token_form("Gaurd"))) == set(deletions("gaurd"))


@pytest.mark.skipif(not DEV.exists(), reason=f"matching-dev data not found at {DEV}")
def test_watchlist_words_lose_no_candidate_by_skipping_typo_keys() -> None:
    """On the dev set: every watchlist word a text word's full deletion keys find and
    ``compare`` accepts is still among its candidates or its near groups."""
    wl = load_watchlist(DEV / "watchlist.yaml")
    m = compile_watchlists([wl])
    index = m.index
    words = {w for line in (DEV / "items.jsonl").read_text(encoding="utf-8").splitlines()
             if line for w in tokenize(Item.from_dict(json.loads(line)).field_text("content")
                                       or "", 100_000).raws}
    checked = 0
    for raw in sorted(words):
        form = token_form(raw)
        if form.script != "latin" or form.key not in index.known_keys:
            continue
        anchors, families = index.probe(form)
        near = index.near_groups(form)
        for r in readings(form):
            for d in deletions(r.key):
                for gid in set().union(*(index._del_roles.get(d) or [set()])):
                    if compare(form, index.groups[gid], index.known_keys) > 0:
                        checked += 1
                        assert gid in anchors | families | near, (raw, index.groups[gid].raw)
    assert checked  # the test is live


def test_an_initial_vowel_splits_the_keys_only_where_the_vowel_rule_does() -> None:
    """Arabic text looks up Latin spellings by whether they begin with a vowel; every pair
    ``arabic_vowels_agree`` accepts shares a key, on every input of a small alphabet."""
    shared = 0
    for ar in itertools.product(ARABIC_SLOTS, repeat=2):
        for la in itertools.product(LATIN_SLOTS, repeat=2):
            keys = set(_initials("bd", ar)) & set(_initials("bd", la))
            if arabic_vowels_agree(ar, la):
                assert keys, (ar, la)
            shared += bool(keys)
    assert 0 < shared < len(ARABIC_SLOTS) ** 2 * len(LATIN_SLOTS) ** 2  # it does split


def test_a_name_word_allowing_two_typos_is_compared_near_the_anchor() -> None:
    """A word of ten letters or more matches with two typos, which the one-deletion keys of
    the neighbour test cannot find: it is compared with the words near the anchor, so the
    name is still found respelled, and "Iraqi" alone costs no verification."""
    watchlists = [Watchlist("w", (Term("a", "Abdurahman Aliraqi", (), "person"),))]
    fast = compile_watchlists(watchlists)
    slow = compile_watchlists(watchlists)
    slow.index.without_prefilter()
    alone = item("Iraqi forces and the Iraqi army met Iraqi officials.")
    assert fast.verifications(alone) == 0 < slow.verifications(alone)
    named = item("Abdulrahmen al-Iraqi, the Iraqi envoy, said.", 2)
    assert [x.matched_text for x in fast.find(named)] == ["Abdulrahmen al-Iraqi"]
    assert [x.matched_text for x in slow.find(named)] == ["Abdulrahmen al-Iraqi"]


def test_a_shared_family_name_alone_names_only_the_person_named_in_full() -> None:
    """Family names alone are weighed against the spellings of the people the item names
    in full, not against every bearer of the name: "Shibani said" after "Asaad al-Shibani"
    is Asaad al-Shibani, never another Shibani (each on an analyst's own list, where each
    owns the bare name), whichever list comes first."""
    lists = [Watchlist(f"w{i}", (Term(f"s{i}", f"{given} al-Shibani", (), "person"),))
             for i, given in enumerate(("Omar", "Asaad", "Khaled", "Yasser"))]
    text = "Asaad al-Shibani spoke first. Later, Shibani said the talks went well."
    for order in (lists, lists[::-1]):
        m = compile_watchlists(order)
        found = m.find(item(text))
        assert sorted((x.term, x.matched_text) for x in found) == [
            ("s1", "Asaad al-Shibani"), ("s1", "Shibani")]
        assert m.find(item("Shibani said the talks went well.", 2)) == []
        both = item("Omar al-Shibani and Asaad al-Shibani met; Shibani said no.", 3)
        assert sorted((x.term, x.matched_text) for x in m.find(both)) == [
            ("s0", "Omar al-Shibani"), ("s1", "Asaad al-Shibani")]  # "Shibani": which?


@pytest.mark.parametrize("text", [
    "Syria's Assad Flees To Moscow As Rebels Take Damascus",
    "Syria's Assad flees to Moscow as rebels take Damascus",
    "Сирийский Президент Бежал Из Страны После Наступления",
    "Президент Сирии бежал из страны после наступления повстанцев",
    "Élections Générales À Damas Après La Chute Du Régime",
    "ÉLECTIONS à Damas: 2024 and 1,000 résultats, Über alles ÄÖÜ",
    "وصل الرئيس السوري أحمد الشرع إلى دمشق",
    "a b c d",
])
def test_headline_style_is_counted_as_defined(text: str) -> None:
    """``title_case`` counts capitals by code point for ASCII and by ``str.isupper`` beyond
    it: the same answer as the definition (most words longer than three letters that have
    a case are capitalised), for Latin, Cyrillic, accented and caseless text."""
    raws = tokenize(text, 1_000).raws
    longer = [r for r in raws if len(r) > 3 and (r[0].isupper() or r[0].islower())]
    expected = len(longer) >= 4 and sum(r[0].isupper() for r in longer) >= 0.7 * len(longer)
    assert tokenize(text, 1_000).title_case() is expected
