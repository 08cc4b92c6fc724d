"""`monitor match`: the offline matcher, with DESIGN.md's jsonl contract."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.daemon import REPO, run_monitor
from tests.harness.feeds import UNRELATED, rss, seed_story
from tests.harness.feedstub import FeedStub

JSONL_KEYS = ["item_id", "watchlist", "rule", "term", "matched_text", "score", "field",
              "start", "end"]


def test_jsonl_output_matches_the_contract_with_offsets_into_the_original(
    tmp_path: Path,
) -> None:
    items = [
        {"id": "x1", "title": "Ahmed al-Shara'a meets Iraqi envoy",
         "summary": "<p>Talks in <b>Ar-Rutbah</b> on Friday</p>", "published": "2025-02",
         "unknown_field": 1},
        {"id": "x2", "content": "Nothing relevant here.", "published": None},
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    result = run_monitor("match", "--rules", str(REPO / "rules"), "--input", str(path),
                         "--format", "jsonl")
    assert result.code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows, "the matcher found nothing"
    by_term = {r["term"]: r for r in rows}
    assert {"ahmad-al-sharaa", "rutba"} <= set(by_term)
    for row in rows:
        assert list(row) == JSONL_KEYS
        original = next(i for i in items if i["id"] == row["item_id"])[row["field"]]
        assert original[row["start"]:row["end"]] == row["matched_text"]
        assert row["watchlist"] == "syria-iraq" and row["rule"] is None
        assert 0 < row["score"] <= 100
    assert by_term["ahmad-al-sharaa"]["matched_text"] == "Ahmed al-Shara'a"
    assert by_term["rutba"]["matched_text"] == "Ar-Rutbah"
    assert all(r["item_id"] == "x1" for r in rows)


def test_match_reads_stdin_and_prints_highlighted_text(tmp_path: Path) -> None:
    item = {"id": "s1", "title": "Fouad Hussein visits Anbar"}
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "match", "--rules", str(REPO / "rules"),
         "--format", "text", "--color", "never"],
        input=json.dumps(item), capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[[Fouad Hussein]]" in proc.stdout and "[[Anbar]]" in proc.stdout


def test_match_on_a_feed_url(feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/f.xml", rss([seed_story(), *UNRELATED]))
    result = run_monitor("match", "--rules", str(REPO / "rules"), "--feed", url,
                         "--format", "jsonl")
    assert result.code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["term"] for r in rows} >= {"ahmad-al-sharaa", "rutba", "fuad-hussein"}
    assert len({r["item_id"] for r in rows}) == 1


def test_usage_error_exits_2() -> None:
    result = run_monitor("match", "--format", "xml")
    assert result.code == 2
