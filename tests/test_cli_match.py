"""`monitor match`: the offline matcher, with DESIGN.md's jsonl contract, plain-text input,
line-number ids, grep-style exit codes and plain text (never HTML) in its text output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness.daemon import REPO, run_monitor
from tests.harness.feeds import UNRELATED, rss, seed_story, shared_data
from tests.harness.feedstub import FeedStub

RULES = str(REPO / "rules")

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


def match_stdin(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m monitor match --rules rules/ ARGS`` with ``stdin`` on its standard input
    (``run_monitor`` has no stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "match", "--rules", RULES, *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60)


def jsonl_rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_match_reads_stdin_and_prints_highlighted_text(tmp_path: Path) -> None:
    item = {"id": "s1", "title": "Fouad Hussein visits Anbar"}
    proc = match_stdin(json.dumps(item), "--format", "text", "--color", "never")
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


# --- plain text ---------------------------------------------------------------------------


def test_plain_text_on_stdin_is_one_item_with_offsets_into_that_text() -> None:
    text = shared_data("seed-article.txt").read_text(encoding="utf-8")
    proc = match_stdin(text, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = jsonl_rows(proc.stdout)
    assert {"ahmad-al-sharaa", "rutba"} <= {r["term"] for r in rows}, rows
    for row in rows:
        assert row["item_id"] == "stdin" and row["field"] == "content"
        assert text[row["start"]:row["end"]] == row["matched_text"]
    assert "Rutba" in {r["matched_text"] for r in rows if r["term"] == "rutba"}
    assert "Ahmad Al-Sharaa" in {r["matched_text"] for r in rows if r["term"] == "ahmad-al-sharaa"}


def test_plain_text_keeps_crlf_so_offsets_index_the_bytes_as_given() -> None:
    text = "Convoy seen\r\nnear Ar-Rutbah\r\n"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "match", "--rules", RULES, "--format", "jsonl"],
        input=text.encode(), capture_output=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (row,) = jsonl_rows(proc.stdout.decode())
    assert text[row["start"]:row["end"]] == row["matched_text"] == "Ar-Rutbah"


def test_plain_text_file_is_one_item_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.txt"
    path.write_text("[Reuters] Fouad Hussein met tribal leaders in Anbar.\n", encoding="utf-8")
    result = run_monitor("match", "--rules", RULES, "--input", str(path), "--format", "jsonl")
    assert result.code == 0, result.stderr
    rows = jsonl_rows(result.stdout)
    assert {r["term"] for r in rows} == {"fuad-hussein", "anbar"}
    assert {r["item_id"] for r in rows} == {"dispatch.txt"}


def test_text_output_of_plain_text_names_the_item_stdin() -> None:
    proc = match_stdin("Floods reach Rutba\n", "--color", "never")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("== stdin\n")
    assert "content: Floods reach [[Rutba]]" in proc.stdout


# --- JSON input ---------------------------------------------------------------------------


def test_items_without_id_get_their_line_number_and_a_broken_line_is_reported(
    tmp_path: Path,
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"id": "named", "title": "Rutba news"}\n'
        '{"title": not json}\n'
        "\n"
        '{"title": "Tribal leaders meet in Anbar"}\n'
        '{"id": "", "title": "Floods in Rutba"}\n'
        '["not", "an", "object"]\n',
        encoding="utf-8")
    result = run_monitor("match", "--rules", RULES, "--input", str(path), "--format", "jsonl")
    assert result.code == 0, result.stderr
    assert {r["item_id"] for r in jsonl_rows(result.stdout)} == {"named", "4", "5"}
    assert f"{path}:2: not JSON: " in result.stderr
    assert f"{path}:6: skipped: an item must be a JSON object" in result.stderr


def test_items_of_a_json_array_get_the_line_they_start_on() -> None:
    items = '[\n  {"title": "Rutba news"},\n  {\n    "title": "Anbar news"\n  }\n]\n'
    proc = match_stdin(items, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    ids = {r["term"]: r["item_id"] for r in jsonl_rows(proc.stdout)}
    assert ids == {"rutba": "2", "anbar": "3"}


def test_a_pretty_printed_object_is_one_item() -> None:
    proc = match_stdin(json.dumps({"id": "p1", "title": "Rutba news"}, indent=2),
                       "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert [r["item_id"] for r in jsonl_rows(proc.stdout)] == ["p1"]


def test_a_broken_json_array_exits_2_with_its_line() -> None:
    proc = match_stdin('[\n  {"title": "Rutba"},\n  {"title": \n', "--format", "jsonl")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("stdin:4: not JSON: ")


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    result = run_monitor("match", "--rules", RULES, "--input", str(tmp_path / "missing.jsonl"))
    assert result.code == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr


# --- exit status --------------------------------------------------------------------------


def test_fail_on_match_exits_1_when_something_matched_and_0_otherwise() -> None:
    hit = json.dumps({"id": "h", "title": "Convoy reaches Rutba"})
    miss = json.dumps({"id": "m", "title": "Markets rally"})
    for fmt in ("jsonl", "text"):
        matched = match_stdin(hit, "--fail-on-match", "--format", fmt)
        assert matched.returncode == 1, matched.stderr
        assert "Rutba" in matched.stdout
        nothing = match_stdin(miss, "--fail-on-match", "--format", fmt)
        assert (nothing.returncode, nothing.stdout) == (0, ""), nothing.stderr
    assert match_stdin(hit, "--format", "jsonl").returncode == 0, "without the flag: 0"
    assert match_stdin("", "--fail-on-match").returncode == 0, "no input, no match"


# --- text output is plain text ------------------------------------------------------------


def test_html_in_a_title_never_appears_in_text_output() -> None:
    item = {
        "id": "h1",
        "title": '<h1 class="x">Ahmed <b>al-Sharaa</b> visits <a href="https://e.example/">'
                 "Rutba</a></h1> &amp;lt;b&amp;gt; &quot;quoted&quot; "
                 "<script>alert(1)</script>\x1b[2Jcleared",
        "summary": "<p>Talks in <b>Ar-Rutbah</b> on Friday &#8212; officials said</p>",
    }
    proc = match_stdin(json.dumps(item), "--format", "text", "--color", "never")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for markup in ("<h1", "<b>", "</b>", "<a ", "href", "<script", "alert(1)", "&amp;",
                   "&quot;", "&#8212;", "\x1b"):
        assert markup not in out, (markup, out)
    assert "title: [[Ahmed al-Sharaa]] visits [[Rutba]] &lt;b&gt; \"quoted\"" in out, out
    assert "summary: Talks in [[Ar-Rutbah]] on Friday \u2014 officials said" in out, out
    assert "'Ahmed al-Sharaa' title[" in out and "'Ar-Rutbah' summary[" in out


def test_html_in_a_long_field_is_plain_in_its_snippet() -> None:
    filler = "<p>" + "Markets were calm and <i>trading</i> was thin. " * 20 + "</p>"
    item = {"id": "long", "content": filler + "<p>Officers crossed at <b>Rutba</b>.</p>" + filler}
    proc = match_stdin(json.dumps(item), "--format", "text", "--color", "always")
    assert proc.returncode == 0, proc.stderr
    content = next(line for line in proc.stdout.splitlines() if "content:" in line)
    assert "<" not in content and ">" not in content
    assert "crossed at \x1b[1;33mRutba\x1b[0m." in content
    assert content.strip().startswith("content: …") and content.endswith("…")


def test_highlighted_spans_follow_the_words_through_html_removal() -> None:
    from monitor.engine.explain import plain_field

    raw = 'Talks in <b class="x">Ar-Rutbah</b>,\n\n<p>near  Al-Qaim &amp; \x1bAnbar</p>'
    spans = [(raw.index("Ar-"), raw.index("</b>")), (raw.index("Al-Q"), raw.index(" &amp;")),
             (raw.index("Anbar"), raw.index("</p>")),
             (raw.index('class'), raw.index("</b>"))]  # a start inside a tag moves past it
    text, moved = plain_field(raw, spans)
    assert text == "Talks in Ar-Rutbah, near Al-Qaim & Anbar"
    assert [text[s:e] for s, e in moved] == ["Ar-Rutbah", "Al-Qaim", "Anbar"]
