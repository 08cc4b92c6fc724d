"""Rules on matched spans: all / any / none / within / fields / sources."""

from __future__ import annotations

from monitor.engine.matcher import compile_watchlists
from monitor.models import Item, Rule, Term, Watchlist

TERMS = (
    Term("syrian-officers", "Syrian officers", (), "topic"),
    Term("rutba", "Rutba", (), "place"),
    Term("anbar", "Anbar", (), "place"),
    Term("football", "football", (), "topic"),
)


def hits(rules: tuple[Rule, ...], item: Item) -> list[tuple[str | None, set[str]]]:
    m = compile_watchlists([Watchlist("w", TERMS, rules)])
    return [(h.rule, {x.term for x in h.matches}) for h in m.match(item)]


def item(content: str = "", title: str = "", source: str = "shafaq") -> Item:
    return Item(id="i", source=source, title=title, content=content)


CROSSING = Rule("crossing", all=("Syrian officers",), any=("Rutba", "anbar"))


def test_all_and_any_fire_with_rule_name_on_matches() -> None:
    got = hits((CROSSING,), item("Syrian officers stay in Rutba."))
    assert got == [("crossing", {"syrian-officers", "rutba"})]
    m = compile_watchlists([Watchlist("w", TERMS, (CROSSING,))])
    assert all(x.rule == "crossing" for h in m.match(item("Syrian officers in Rutba"))
               for x in h.matches)


def test_missing_all_or_any_term_does_not_fire() -> None:
    assert hits((CROSSING,), item("Syrian officers stay home.")) == []
    assert hits((CROSSING,), item("Life in Rutba is calm.")) == []


def test_none_vetoes() -> None:
    rule = Rule("r", any=("Rutba",), none=("football",))
    assert hits((rule,), item("Rutba football club won")) == []
    assert hits((rule,), item("Rutba border crossing")) == [("r", {"rutba"})]


def test_within_counts_words_between_terms() -> None:
    rule = Rule("r", all=("Syrian officers", "Rutba"), within=3)
    assert hits((rule,), item("Syrian officers are now held in Rutba")) == []
    assert hits((rule,), item("Syrian officers held in Rutba")) == [
        ("r", {"syrian-officers", "rutba"})]


def test_within_needs_same_field() -> None:
    rule = Rule("r", all=("Syrian officers", "Rutba"), within=10)
    assert hits((rule,), item(title="Syrian officers", content="Rutba")) == []


def test_fields_restrict_where_matches_count() -> None:
    rule = Rule("r", any=("Rutba",), fields=("title",))
    assert hits((rule,), item(content="Rutba")) == []
    assert hits((rule,), item(title="Rutba")) == [("r", {"rutba"})]


def test_sources_restrict_items() -> None:
    rule = Rule("r", any=("Rutba",), sources=("Shafaq", "aljazeera"))
    assert hits((rule,), item("Rutba", source="bbc")) == []
    assert hits((rule,), item("Rutba", source="shafaq")) == [("r", {"rutba"})]


def test_first_firing_rule_wins_and_no_rules_means_any_match() -> None:
    rules = (Rule("a", all=("football",)), Rule("b", any=("Anbar", "Rutba")))
    assert hits(rules, item("Rutba and Anbar")) == [("b", {"rutba", "anbar"})]
    assert hits((), item("Rutba")) == [(None, {"rutba"})]
