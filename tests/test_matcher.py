"""FuzzyMatcher behaviour: issue 2's examples, the seed article, guards, bounds (M01, M02)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.engine.base import Matcher
from monitor.engine.matcher import FuzzyMatcher, compile_watchlists
from monitor.models import Item, Match, Term, Watchlist

SEED = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed-article.txt"

SYRIA = Watchlist(
    "syria-iraq",
    (
        Term("ahmad-al-sharaa", "Ahmad al-Sharaa", ("Abu Mohammad al-Jolani",), "person",
             short=True),
        Term("asaad-al-shibani", "Asaad al-Shibani", (), "person", short=True),
        Term("fuad-hussein", "Fuad Hussein", (), "person"),
        Term("bashar-al-assad", "Bashar al-Assad", (), "person", short=True),
        Term("maher-al-assad", "Maher al-Assad", (), "person", short=True),
        Term("rutba", "Rutba", (), "place"),
        Term("anbar", "Anbar", (), "place"),
        Term("shafaq-news", "Shafaq News", (), "org"),
        Term("hts", "Hayat Tahrir al-Sham", ("HTS",), "org"),
        Term("hezbollah", "Hezbollah", (), "org"),
    ),
)


@pytest.fixture(scope="module")
def matcher() -> FuzzyMatcher:
    return compile_watchlists([SYRIA])


def found(m: Matcher, text: str, field: str = "content") -> list[Match]:
    return m.find(Item(id="t", source="test", **{field: text}))


def terms(m: Matcher, text: str) -> set[str]:
    return {x.term for x in found(m, text)}


def test_compile_watchlists_returns_a_matcher(matcher: FuzzyMatcher) -> None:
    assert isinstance(matcher, Matcher)
    assert matcher.watchlists == (SYRIA,)


@pytest.mark.parametrize(
    ("text", "term", "surface"),
    [
        ("talks with Ahmed al-Sharaa today", "ahmad-al-sharaa", "Ahmed al-Sharaa"),
        ("talks with Ahmad Al-Sharaa today", "ahmad-al-sharaa", "Ahmad Al-Sharaa"),
        ("AHMAD AL SHARAA spoke", "ahmad-al-sharaa", "AHMAD AL SHARAA"),
        ("Ahmed al-Shara'a spoke", "ahmad-al-sharaa", "Ahmed al-Shara'a"),
        ("Ahmad Alsharaa spoke", "ahmad-al-sharaa", "Ahmad Alsharaa"),
        ("قال أحمد الشرع إن", "ahmad-al-sharaa", "أحمد الشرع"),
        ("Abu Mohamad al-Golani led", "ahmad-al-sharaa", "Abu Mohamad al-Golani"),
        ("officers in Ar-Rutbah", "rutba", "Ar-Rutbah"),
        ("officers in Rutbah", "rutba", "Rutbah"),
        ("في مدينة الرطبة", "rutba", "الرطبة"),
        ("Minister Fouad Hussein said", "fuad-hussein", "Fouad Hussein"),
        ("Asaad Al-Shibani visited", "asaad-al-shibani", "Asaad Al-Shibani"),
        ("Assâad Al-Chibani visited", "asaad-al-shibani", "Assâad Al-Chibani"),
        ("in Al-Anbar province", "anbar", "Al-Anbar"),
        ("said Shafaq News Agency", "shafaq-news", "Shafaq News"),
        ("the fall of Bashar Al-Assad's regime", "bashar-al-assad", "Bashar Al-Assad's"),
        ("the fall of Bashar Assad", "bashar-al-assad", "Bashar Assad"),
        ("fighters of Hay'at Tahrir al-Sham", "hts", "Hay'at Tahrir al-Sham"),
        ("fighters of Tahrir al-Sham", "hts", "Tahrir al-Sham"),
        ("هيئة تحرير الشام", "hts", "هيئة تحرير الشام"),
        ("HTS fighters", "hts", "HTS"),
        ("Hizbollah fighters", "hezbollah", "Hizbollah"),
    ],
)
def test_variants_are_found_with_original_surface(
    matcher: FuzzyMatcher, text: str, term: str, surface: str
) -> None:
    hits = [x for x in found(matcher, text) if x.term == term]
    assert hits, f"{term} not found in {text!r}"
    m = hits[0]
    assert m.matched_text == surface == text[m.start:m.end]


def test_seed_article_finds_the_story(matcher: FuzzyMatcher) -> None:
    if not SEED.exists():
        pytest.skip(f"{SEED} is absent (it lives in the shared data folder)")
    text = SEED.read_text(encoding="utf-8")
    got = {m.term for m in found(matcher, text)}
    assert {"ahmad-al-sharaa", "fuad-hussein", "asaad-al-shibani", "rutba", "anbar",
            "shafaq-news", "bashar-al-assad"} <= got
    assert "maher-al-assad" not in got and "hts" not in got


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Maher al-Assad commands the Fourth Division", "bashar-al-assad"),
        ("Farouk al-Sharaa, the former vice-president. Sharaa said", "ahmad-al-sharaa"),
        ("the legacy of Saddam Hussein", "fuad-hussein"),
        ("Hussein said on Friday", "fuad-hussein"),
        ("human rights groups", "hts"),
        ("thousands of protesters in Tahrir Square", "hts"),
        ("Anbari tribes", "anbar"),
        ("under Islamic sharia law", "ahmad-al-sharaa"),
        ("تحدث عن الشرعية", "ahmad-al-sharaa"),
        ("the ambassador said", "bashar-al-assad"),
        ("Asad Rehman, the campaigner", "bashar-al-assad"),
        ("Assad al-Shibani met", "bashar-al-assad"),
        ("the Golan Heights", "ahmad-al-sharaa"),
        ("Kataib Hezbollah fighters", "hezbollah"),
        ("hts in lower case", "hts"),
    ],
)
def test_precision_guards(matcher: FuzzyMatcher, text: str, term: str) -> None:
    assert term not in terms(matcher, text)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Shaibani said on Monday", "asaad-al-shibani"),
        ("President Assad fled", "bashar-al-assad"),
        ("the interim leader al-Sharaa said", "ahmad-al-sharaa"),
        ("Syria's Sharaa met Erdogan", "ahmad-al-sharaa"),
        ("FM Shaibani arrived", "asaad-al-shibani"),
        ("HTS chief Jolani spoke", "ahmad-al-sharaa"),
        ("Syria’s Al-Sharaa Meets Iraqi Envoy In Damascus", "ahmad-al-sharaa"),
        ("Bashar Assads father", "bashar-al-assad"),
    ],
)
def test_distinctive_surname_alone_counts(matcher: FuzzyMatcher, text: str, term: str) -> None:
    assert term in terms(matcher, text)


def test_shared_surname_goes_to_the_first_listed_person(matcher: FuzzyMatcher) -> None:
    got = terms(matcher, "Assad fled to Moscow")
    assert "bashar-al-assad" in got and "maher-al-assad" not in got
    assert "maher-al-assad" in terms(matcher, "Maher al-Assad fled")


def test_offsets_point_into_html_summary(matcher: FuzzyMatcher) -> None:
    summary = "<p>Forces of <b>Ahmed al-Shara&#8217;a</b> entered &amp; held Rutba.</p>"
    ms = found(matcher, summary, "summary")
    by_term = {m.term: m for m in ms}
    sharaa = by_term["ahmad-al-sharaa"]
    assert summary[sharaa.start:sharaa.end] == "Ahmed al-Shara&#8217;a" == sharaa.matched_text
    assert summary[by_term["rutba"].start:by_term["rutba"].end] == "Rutba"
    assert sharaa.field == "summary" and sharaa.watchlist == "syria-iraq"
    assert sharaa.term_name == "Ahmad al-Sharaa" and sharaa.rule is None
    assert 0 < sharaa.score <= 100


def test_match_without_rules_returns_one_hit_per_watchlist(matcher: FuzzyMatcher) -> None:
    hits = matcher.match(Item(id="1", source="s", title="Rutba and Ahmad al-Sharaa"))
    assert len(hits) == 1 and hits[0].rule is None and hits[0].watchlist is SYRIA
    assert {m.term for m in hits[0].matches} == {"rutba", "ahmad-al-sharaa"}
    assert matcher.match(Item(id="2", source="s", title="weather in Paris")) == []


def test_two_watchlists_report_their_own_names() -> None:
    other = Watchlist("places", (Term("rutba", "Rutba", (), "place"),))
    m = compile_watchlists([SYRIA, other])
    got = {(x.watchlist, x.term) for x in found(m, "in Rutba")}
    assert got == {("syria-iraq", "rutba"), ("places", "rutba")}


def test_exact_and_threshold_settings() -> None:
    wl = Watchlist("w", (
        Term("acme", "Acme Corp", (), "org", match="exact"),
        Term("strict", "Shaibani Group", (), "org", threshold=99),
    ))
    m = compile_watchlists([wl])
    assert terms(m, "Acme Corp said") == {"acme"}
    assert terms(m, "ACME CORP said") == set()
    assert terms(m, "Shaibani Group said") == {"strict"}
    assert terms(m, "Chaybani Group said") == set()  # a variant, but below 99


def test_m02_unicode_tricks_on_acme_corp() -> None:
    """M02: zero-width space, fullwidth, soft hyphen, upper case and accents match; a
    Cyrillic homoglyph does not (mixed-script words are treated as spoofs)."""
    m = compile_watchlists([Watchlist("w", (Term("acme", "Acme Corp", (), "org"),))])
    for text in ["Ac\u200bme Corp", "Ａｃｍｅ Ｃｏｒｐ", "Ac\u00adme Corp", "ACME CORP",
                 "Acmé Cörp", "Acme\u00a0Corp"]:
        assert terms(m, f"news about {text} today") == {"acme"}, text
    assert terms(m, "news about \u0410cme Corp today") == set()


def test_m01_pathological_input_stays_bounded(matcher: FuzzyMatcher) -> None:
    """M01: each field is capped (FIELD_CAP) and overlong words are never fuzzily compared."""
    for content in ["hello" * 10_000, "x" * 1_000_000, "Rutba " * 50_000,
                    "Ahmad " * 20_000 + "al-Sharaa"]:
        start = time.perf_counter()
        matcher.find(Item(id="big", source="s", title=content, summary=content,
                          content=content))
        assert time.perf_counter() - start < 5.0


def test_empty_and_missing_fields(matcher: FuzzyMatcher) -> None:
    assert matcher.find(Item(id="e", source="s")) == []
    assert matcher.match(Item(id="e", source="s", content="   ")) == []


def test_render_text_highlights_original_spans(matcher: FuzzyMatcher) -> None:
    from monitor.engine.explain import render_text

    item = Item(id="x1", source="shafaq", url="https://example.org/a",
                title="Ahmed al-Sharaa visits Rutba")
    matches = matcher.find(item)
    plain = render_text(item, matches, color=False)
    assert "x1" in plain and "[[Ahmed al-Sharaa]] visits [[Rutba]]" in plain
    assert "ahmad-al-sharaa" in plain and "title[0:15]" in plain
    colored = render_text(item, matches, color=True)
    assert "\x1b[" in colored and "[[" not in colored
    assert render_text(item, [], color=False).startswith("== x1")
