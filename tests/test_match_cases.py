"""Data-driven matcher cases in tests/data/match_cases/*.yaml, readable by analysts.

Each file holds one watchlist (DESIGN.md format) and a list of cases; a case gives an item's
fields, the exact set of term ids expected (``expect``) and optionally matched surfaces.
Add a case by appending to a file; no Python needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.engine.matcher import compile_watchlists
from monitor.models import MATCH_FIELDS, Item, Rule, Term, Watchlist

CASES_DIR = Path(__file__).parent / "data" / "match_cases"


def _watchlist(spec: dict[str, Any]) -> Watchlist:
    terms = tuple(
        Term(t["id"], t["name"], tuple(t.get("aliases", ())), t.get("kind", "topic"),
             match=t.get("match", "fuzzy"), match_set="match" in t,
             threshold=t.get("threshold"), short=t.get("short", False))
        for t in spec["terms"]
    )
    rules = tuple(
        Rule(r["name"], tuple(r.get("all", ())), tuple(r.get("any", ())),
             tuple(r.get("none", ())), r.get("within"),
             tuple(r.get("fields", MATCH_FIELDS)), tuple(r.get("sources", ())))
        for r in spec.get("rules", ())
    )
    return Watchlist(spec["watchlist"], terms, rules)


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        wl = _watchlist(data["watchlist"])
        for i, case in enumerate(data["cases"]):
            params.append(pytest.param(wl, case, id=f"{path.stem}-{i}-{case.get('note', '')}"))
    return params


_MATCHERS: dict[str, Any] = {}


@pytest.mark.parametrize(("wl", "case"), _load())
def test_match_case(wl: Watchlist, case: dict[str, Any]) -> None:
    matcher = _MATCHERS.setdefault(wl.name, compile_watchlists([wl]))
    fields = {f: case[f] for f in MATCH_FIELDS if f in case}
    item = Item(id="case", source=case.get("source", "test"), **fields)
    matches = matcher.find(item)
    assert {m.term for m in matches} == set(case["expect"]), case.get("note")
    surfaces = {m.matched_text for m in matches}
    for surface in case.get("surfaces", ()):
        assert surface in surfaces
    for m in matches:
        assert item.field_text(m.field)[m.start:m.end] == m.matched_text
