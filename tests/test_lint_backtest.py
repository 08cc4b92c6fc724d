"""Analyst tooling: `monitor check` lints and `monitor backtest`."""

from __future__ import annotations

from pathlib import Path

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
                  "  - name: Al\n  - name: government\n  - name: SDF\n")
    wls, problems = load_watchlists([tmp_path])
    assert problems == []
    found = [str(p) for p in lint(wls)]
    assert any(s.startswith(f"{a}:2:5: warning: term 'fuad-hussein' duplicates term "
                            "'fouad-hussein' of watchlist 'b'") for s in found), found
    assert f"{b}:4:5: warning: 'Al' is too short to match fuzzily; use 'match: exact' or a " \
        "longer spelling" in found
    assert any(s.startswith(f"{b}:5:5: warning: 'government' is a common English word")
               for s in found)
    assert not any("'SDF'" in s for s in found), "acronyms are matched exactly: no warning"


def test_check_warnings_do_not_fail_the_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    watchlist(rules, "w", "terms:\n  - name: government\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}], rules=str(rules)))
    result = run_monitor("check", "--config", str(config))
    assert result.code == 0, result.stdout
    assert "common English word" in result.stdout
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
