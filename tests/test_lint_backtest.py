"""Analyst tooling: `monitor check` lints and `monitor backtest`."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.engine.countries import COUNTRY_NAMES, is_country_or_proper_place
from monitor.engine.english import COMMON_WORDS
from monitor.engine.watchlist import load_watchlists
from monitor.lint import lint
from monitor.store.sqlite import SqliteStore
from monitor.testing import make_item
from tests.harness.daemon import base_config, run_monitor, write_config


def watchlist(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lint_flags_overlaps_short_and_common_terms(tmp_path: Path) -> None:
    a = watchlist(tmp_path, "a", "terms:\n  - name: Fuad Hussein\n    kind: person\n")
    b = watchlist(tmp_path, "b", "terms:\n  - name: Fouad Hussein\n    kind: person\n"
                  "  - name: Rif\n  - name: government\n  - name: SDF\n")
    wls, problems = load_watchlists([tmp_path])
    assert problems == []
    found = [str(p) for p in lint(wls)]
    assert any(s.startswith(f"{a}:2:5: warning: term 'fuad-hussein' duplicates term "
                            "'fouad-hussein' of watchlist 'b'") for s in found), found
    assert f"{b}:4:5: warning: 'Rif' is too short to match fuzzily; use 'match: exact' or a " \
        "longer spelling" in found
    assert any(s.startswith(f"{b}:5:5: warning: 'government' is an everyday English or "
                            "French word, so it is matched only as written")
               for s in found)
    assert not any("'SDF'" in s for s in found), "acronyms are matched exactly: no warning"


def lint_folder(folder: Path) -> list[str]:
    wls, problems = load_watchlists([folder])
    assert problems == []
    return [str(p) for p in lint(wls)]


def test_short_all_capitals_words_warn_unless_confirmed_with_match_exact(tmp_path: Path) -> None:
    path = watchlist(tmp_path, "caps", "terms:\n"
                     "  - name: IS\n"                      # 2: a word in capitals
                     "  - name: Islamic State\n"           # 3
                     "    aliases: [WHO]\n"                # 4: an alias
                     "  - name: US\n"                      # 5
                     "    match: exact\n"                  # confirmed: no warning
                     "  - name: SDF\n"                     # 7: not a word
                     "  - name: HTS\n"
                     "  - name: IRAN\n")                   # 9: four letters
    found = lint_folder(tmp_path)
    caps = [s for s in found if "short all-capitals term" in s]
    assert len(caps) == 2, found
    assert caps[0].startswith(f"{path}:2:5: warning: 'IS' is a short all-capitals term, and "
                              "all-capitals headlines spell the word 'is' the same way")
    assert "use a fuller name (as 'Islamic State' for IS), or set 'match: exact'" in caps[0]
    assert caps[1].startswith(f"{path}:4:15: warning: 'WHO' is a short all-capitals term")
    assert "give it a term of its own with 'match: exact'" in caps[1]
    assert not any("'US'" in s or "'SDF'" in s or "'HTS'" in s or "'IRAN'" in s
                   for s in found), found


def test_an_explicitly_fuzzy_acronym_is_warned_as_short_and_common(tmp_path: Path) -> None:
    path = watchlist(tmp_path, "w", "terms:\n  - name: IS\n    match: fuzzy\n")
    found = lint_folder(tmp_path)
    assert f"{path}:2:5: warning: 'IS' is too short to match fuzzily; use 'match: exact' or " \
        "a longer spelling" in found
    assert any(s.startswith(f"{path}:2:5: warning: 'IS' is a common English word")
               for s in found), found
    assert not any("short all-capitals term" in s for s in found), "match is set: confirmed"


def test_a_person_named_by_one_word_warns_at_the_name(tmp_path: Path) -> None:
    path = watchlist(tmp_path, "people", "terms:\n"
                     "  - name: Assad\n"                   # 2
                     "    kind: person\n"
                     "  - name: President Assad\n"         # 4: a title is not a name
                     "    kind: person\n"
                     "  - name: Bashar al-Assad\n"         # 6: full name
                     "    aliases: [Bashar]\n"
                     "    kind: person\n"
                     "  - name: Sharaa\n"                  # 9: not a person
                     "    kind: topic\n")
    found = lint_folder(tmp_path)
    single = [s for s in found if "named by a single word" in s]
    assert [s.split(": warning: ")[0] for s in single] == [f"{path}:2:5", f"{path}:4:5"]
    assert single[0].endswith("warning: person 'Assad' is named by a single word, which matches "
                              "every person of that family or name; use the full name (the "
                              "matcher still finds 'Assad' alone where the context points to "
                              "that person)")


def test_country_names_are_not_common_english_words(tmp_path: Path) -> None:
    places = ["Iran", "Syria", "Iraq", "Turkey", "Jordan", "Chad", "Georgia", "Guinea", "China",
              "Europe"]
    path = watchlist(tmp_path, "places", "terms:\n" + "".join(
        f"  - name: {p}\n    kind: place\n" for p in places)
        + "  - name: Jersey\n    kind: place\n  - name: government\n")
    found = lint_folder(tmp_path)
    assert all(p.casefold() in COMMON_WORDS for p in places), "else the test proves nothing"
    assert not any(f"'{p}'" in s for p in places for s in found), found
    n = 2 + 2 * len(places)
    assert any(s.startswith(f"{path}:{n}:5: warning: 'Jersey' is an everyday English or")
               for s in found), "a dependency, not a country: the garment still warns"
    assert any(s.startswith(f"{path}:{n + 2}:5: warning: 'government' is an everyday")
               for s in found), found


def test_the_country_list_is_the_worlds_countries() -> None:
    assert len(COUNTRY_NAMES) == len(set(COUNTRY_NAMES)) == 197  # UN 193 + 2 observers + 2
    for name in ("Syria", "Iraq", "Iran", "Turkey", "Jordan", "Lebanon", "Kosovo", "Taiwan",
                 "Palestine", "Vatican City", "United Kingdom", "Côte d'Ivoire"):
        assert name in COUNTRY_NAMES
    assert is_country_or_proper_place(" syria ") and is_country_or_proper_place("TÜRKIYE")
    assert not any(is_country_or_proper_place(p) for p in ("Jersey", "Reading", "Nice", "Rutba"))


def test_check_warnings_do_not_fail_the_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    watchlist(rules, "w", "terms:\n  - name: government\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}], rules=str(rules)))
    result = run_monitor("check", "--config", str(config))
    assert result.code == 0, result.stdout
    assert "everyday English or French word" in result.stdout
    assert "ok: 1 watchlist(s), 1 term(s), 1 warning(s)" in result.stdout


def test_backtest_shows_what_a_candidate_gains_and_loses(tmp_path: Path) -> None:
    live = tmp_path / "rules"
    watchlist(live, "iraq", "watchlist: iraq\nterms:\n  - name: Rutba\n    kind: place\n"
              "  - name: Anbar\n    kind: place\n")
    candidate = tmp_path / "candidate"
    watchlist(candidate, "iraq", "watchlist: iraq\nterms:\n  - name: Rutba\n    kind: place\n"
              "  - name: Mosul\n    kind: place\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}], rules=str(live)))
    store = SqliteStore(tmp_path / "data" / "monitor.db")
    store.mark_seen([
        make_item(1, title="Convoy reaches Ar-Rutbah"),
        make_item(2, title="Floods in Mosul"),
        make_item(3, title="Tribal leaders meet in Anbar"),
        make_item(4, title="Markets rally"),
    ])
    store.close()
    result = run_monitor("backtest", "--config", str(config), "--rules", str(candidate),
                         "--since", "1d")
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "iraq: 4 item(s) seen in the last 1d; candidate alerts 2, current alerts 2 " \
        "(+1 gained, -1 lost)" in out
    assert "term mosul: candidate 1, current 0  (+1)" in out
    assert "term anbar: candidate 0, current 1  (-1)" in out
    assert "gained: item-2  Floods in Mosul" in out
    assert "lost: item-3  Tribal leaders meet in Anbar" in out


@pytest.mark.parametrize(("since", "code"), [("3d", 0), ("2w", 0), ("fortnight", 2)])
def test_backtest_since_accepts_days_and_weeks(tmp_path: Path, since: str, code: int) -> None:
    rules = tmp_path / "rules"
    watchlist(rules, "iraq", "terms:\n  - name: Rutba\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}], rules=str(rules)))
    result = run_monitor("backtest", "--config", str(config), "--rules", str(rules),
                         "--since", since)
    assert result.code == code, result.stderr
    if code:
        assert "--since: expected a duration" in result.stderr


def test_check_summarises_a_kind_with_many_warnings_unless_asked_for_all(
    tmp_path: Path,
) -> None:
    words = sorted(w for w in COMMON_WORDS if w.isalpha() and len(w) >= 6
                   and not is_country_or_proper_place(w))[:25]
    path = watchlist(tmp_path, "words", "terms:\n" + "".join(f"  - name: {w}\n" for w in words)
                     + "  - name: Assad\n    kind: person\n")
    result = run_monitor("check", "--rules", str(path))
    assert result.code == 0, result.stdout + result.stderr
    common = [s for s in result.stdout.splitlines() if "is an everyday English" in s]
    assert [s.split(": warning: ")[0] for s in common] == [f"{path}:{n}:5" for n in range(2, 7)]
    assert "… and 20 more 'everyday word' warnings; --all-warnings prints every one" \
        in result.stdout
    assert f"{path}:27:5: warning: person 'Assad' is named by a single word" in result.stdout, \
        "a kind with few warnings is printed whole"
    assert "ok: 1 watchlist(s), 26 term(s), 26 warning(s)" in result.stdout

    every = run_monitor("check", "--rules", str(path), "--all-warnings")
    assert every.code == 0
    assert sum("is an everyday English" in s for s in every.stdout.splitlines()) == 25
    assert "more 'everyday word' warnings" not in every.stdout


def test_warnings_are_placed_alike_in_block_and_flow_layouts(tmp_path: Path) -> None:
    block = watchlist(tmp_path, "block", "watchlist: block\nterms:\n"
                      "  - name: Fuad Hussein\n"
                      "    aliases:\n"
                      "      - Abu Ali\n"
                      "      - 'government'   # an alias that is a word\n"
                      "    kind: person\n")
    flow = watchlist(tmp_path, "flow", "watchlist: flow\n"
                     "terms: [Rutba, {name: Hadi al-Amiri, aliases: [Abu Hassan, market]}]\n")
    found = lint_folder(tmp_path)
    assert any(s.startswith(f"{block}:6:9: warning: 'government' is an everyday English")
               for s in found), found
    assert any(s.startswith(f"{flow}:2:60: warning: 'market' is an everyday English")
               for s in found), found
