"""Watchlist YAML: every problem reported as file:line:col, hostile YAML refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.engine.watchlist import load_watchlist, load_watchlists
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_watchlist(path)
    return [str(p) for p in err.value.problems]


def test_shipped_watchlist_is_valid() -> None:
    wl = load_watchlist(REPO / "rules" / "syria-iraq.yaml")
    assert wl.name == "syria-iraq"
    ids = {t.id for t in wl.terms}
    assert {"ahmad-al-sharaa", "asaad-al-shibani", "fuad-hussein", "rutba", "anbar",
            "shafaq-news"} <= ids


def test_defaults_name_from_stem_and_id_from_slug(tmp_path: Path) -> None:
    wl = load_watchlist(write(tmp_path, "iraq.yaml", "terms:\n  - name: Ar-Rutbah Ḥ\n"))
    assert wl.name == "iraq"
    assert wl.terms[0].id == "ar-rutbah-h"
    assert wl.severity == "medium" and wl.terms[0].match == "fuzzy"


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "watchlist: x\nterms: [unclosed\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}:3:1: YAML syntax:")


def test_unknown_field_and_range_errors_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", (
        "terms:\n  - name: Rutba\n    treshold: 90\n  - name: Anbar\n    threshold: 250\n"
        "severity: urgent\n"
    ))
    found = problems(path)
    assert f"{path}:3:5: terms[0].treshold: unknown field; did you mean 'threshold'?" in found
    assert any(p.startswith(f"{path}:5:5: terms[1].threshold: Input should be less than or "
                            "equal to 100") for p in found)
    assert any(p.startswith(f"{path}:6:1: severity:") for p in found)


def test_rule_naming_unknown_term_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", (
        "terms:\n  - name: Rutba\nrules:\n  - name: r1\n    all: [Rutba, Mosul]\n"
    ))
    (line,) = problems(path)
    assert line.startswith(f"{path}:5:18: rules[0].all[1]: 'Mosul' is not a term")


@pytest.mark.parametrize("text", [
    "terms:\n  - &a {name: x}\n  - *a\n",
    "terms:\n  - name: !!python/object/apply:os.system ['touch /tmp/monitor-canary']\n",
    "terms: !!python/name:os.system\n",
])
def test_anchors_and_python_tags_are_refused(tmp_path: Path, text: str) -> None:
    canary = Path("/tmp/monitor-canary")
    canary.unlink(missing_ok=True)
    (line,) = problems(write(tmp_path, "evil.yaml", text))
    assert "not allowed" in line
    assert not canary.exists()


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "terms:\n" + "  - name: x\n" * 200_000)
    (line,) = problems(path)
    assert "the limit is 1048576" in line


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", "terms:\n  - name: Rutba\n")
    write(tmp_path, "bad.yaml", "terms: 42\n")
    good, bad = load_watchlists([tmp_path])
    assert [w.name for w in good] == ["good"]
    assert len(bad) == 1 and "bad.yaml:1:1: terms:" in str(bad[0])


def test_acronym_is_exact_unless_the_analyst_says_fuzzy(tmp_path: Path) -> None:
    from monitor.engine.matcher import compile_watchlists
    from monitor.testing import make_item

    default = load_watchlist(write(tmp_path, "a.yaml", "terms:\n  - name: ISIS\n"))
    fuzzy = load_watchlist(write(tmp_path, "b.yaml", "terms:\n  - name: ISIS\n"
                                 "    match: fuzzy\n"))
    item = make_item(1, title="Isis fighters seen near the border; crisis talks resume")
    assert compile_watchlists([default]).find(item) == []
    found = compile_watchlists([fuzzy]).find(item)
    assert [m.matched_text for m in found] == ["Isis"], "whole words only: never in 'crisis'"
