"""The neighbour test before verification (``TermIndex.needs``) changes speed, never results.

A name that is only a mention with two of its words found (a person's, an organisation's
with a distinctive second word, or one whose word the text word alone cannot name: "Assad"
is not the Assad Group) is verified around an anchor hit only when one of its other words
may be near, on the side where the spelling has it; the test uses a superset of what the
verifier could accept. These tests run the same items through a matcher with and without it
and require identical matches, on the real dev set and on the constructions that reach
furthest from the anchor.
"""

from __future__ import annotations

import json

import pytest

from monitor.engine.matcher import FuzzyMatcher, compile_watchlists
from monitor.engine.watchlist import load_watchlist
from monitor.models import Item, Term, Watchlist
from tests.test_matching_dev import DEV, headline_figures


def both(watchlists: list[Watchlist]) -> tuple[FuzzyMatcher, FuzzyMatcher]:
    fast = compile_watchlists(watchlists)
    slow = compile_watchlists(watchlists)
    slow.index.without_prefilter()
    return fast, slow


def matches(matcher: FuzzyMatcher, item: Item) -> list[tuple[str, str, int, int]]:
    return sorted((m.term, m.field, m.start, m.end) for m in matcher.find(item))


TERMS = (
    Term("sharaa", "Ahmad al-Sharaa", ("Abu Mohammad al-Jolani",), "person"),
    Term("sudani", "Mohammed Shia al-Sudani", (), "person"),
    Term("deir", "Deir ez-Zor Military Council", (), "org"),
    Term("hts", "Hayat Tahrir al-Sham", (), "org"),
    Term("kataib", "Kataib Hezbollah", (), "org"),
    Term("shibani", "Asaad Hassan al-Shibani", (), "person"),
    Term("basheer", "Asad Basheer", (), "person"),
    Term("assad-group", "Assad Group", (), "org"),
)
SENTENCES = [
    "Ahmed Hussein al-Sharaa met envoys in Damascus.",          # a patronymic in between
    "al-Sharaa, Ahmad (born 1982) leads the government.",       # a list's reversed order
    "Mohammed al-Sudani said the border was secure.",           # a middle name left out
    "The Deir Ez Zor Military Council denied the report.",      # a loose article word
    "Fighters of Tahrir al-Sham and of Kataib Hezbollah clashed.",
    "Mohammad al-Jolani spoke; Jolani's men left.",              # nom de guerre without Abu
    "Asaad al-Shaibani, Syria's foreign minister, arrived.",
    "Hezbollah and the Sham Legion issued statements.",          # lone words: no name
    "President Bashar al-Assad fled; Asad Basheer stayed.",      # order counts
    "Basheer, Asad was listed.",                                 # ... but lists reverse it
    "Assad loyalists and the Assad Group's trucks.",             # a word alone is no org
    "Ahmad; al-Sharaa, Ahmad. Hussein al-Sharaa met Asad, Basheer.",  # punctuation between
    "Ahmed Hussein Ez al-Sharaa and Deir Ez - Zor Military Council.",  # articles, hyphens
]


@pytest.mark.parametrize("text", SENTENCES)
def test_prefilter_keeps_every_match_of_hard_constructions(text: str) -> None:
    fast, slow = both([Watchlist("w", TERMS)])
    item = Item(id="1", source="s", content=text)
    assert matches(fast, item) == matches(slow, item)


@pytest.mark.skipif(not DEV.exists(), reason=f"matching-dev data not found at {DEV}")
def test_prefilter_keeps_every_match_on_the_dev_set() -> None:
    wl = load_watchlist(DEV / "watchlist.yaml")
    items = [Item.from_dict(json.loads(line))
             for line in (DEV / "items.jsonl").read_text(encoding="utf-8").splitlines() if line]
    for watchlist in (wl, headline_figures(wl)):
        fast, slow = both([watchlist])
        assert fast.index.needs  # the test is live
        for item in items:
            assert matches(fast, item) == matches(slow, item), item.id


def test_words_that_cannot_name_a_spelling_cost_no_verification() -> None:
    """Syrian news names the president a dozen times an article. "Assad" alone is not the
    Assad Group, and "Bashar al-Assad" is not Asad Basheer (a name grows outward from its
    anchor word, so the other word must stand on its side): with the prefilter, none of
    it is verified against either, and the matches are the same."""
    fast, slow = both([Watchlist("w", TERMS)])
    item = Item(id="1", source="s",
                content="President Bashar al-Assad met Assad loyalists in Damascus. " * 20)
    assert fast.verifications(item) == 0 < slow.verifications(item)
    assert matches(fast, item) == matches(slow, item) == []
