"""Formatter: untrusted text is inert in Slack (X01–X03) and payloads fit Slack's limits (N08)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from monitor.models import Alert, Match
from monitor.notify.console import format_console
from monitor.notify.mrkdwn import neutralise_mrkdwn, safe_link, slack_escape, slack_len
from monitor.notify.slack_blocks import HEADER_LIMIT, SECTION_LIMIT, build_slack_message
from monitor.notify.text import clean_text, html_to_text
from tests.harness.slack_fixtures import make_alert
from tests.harness.slackstub import limit_problem

LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>")
# The one template-made ``<!…>`` token: digits, a fixed format and a fallback of digits.
DATE_TOKEN = re.compile(
    r"<!date\^[0-9]+\^\{date_short_pretty\}(?: at \{time\})?"
    r"\|[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{2}:[0-9]{2} UTC)?>"
)


def texts(message: dict[str, Any]) -> Iterator[str]:
    """Every string Slack would render: fallback text, block texts, element texts."""
    yield message["text"]
    for block in message["blocks"]:
        if "text" in block:
            yield block["text"]["text"]
        for element in block.get("elements", []):
            yield element["text"]


def text_objects(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for block in message["blocks"]:
        if "text" in block:
            yield block["text"]
        yield from block.get("elements", [])


def assert_inert(message: dict[str, Any], allowed_url: str | None = None) -> None:
    """No live angle-bracket markup except the template's own title link and date token."""
    for text in texts(message):
        assert len(DATE_TOKEN.findall(text)) <= 1, text
        outside_links = LINK.sub("", DATE_TOKEN.sub("", text))
        assert "<" not in outside_links and ">" not in outside_links, text
        for url, label in LINK.findall(text):
            assert url == allowed_url, text
            assert "<" not in label and ">" not in label
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), f"bare & in {text!r}"


def section_texts(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def header_text(message: dict[str, Any]) -> str:
    header = message["blocks"][0]
    assert header["type"] == "header"
    return str(header["text"]["text"])


def meta_text(message: dict[str, Any]) -> str:
    """The context line under the title: outlet and publication time."""
    return str(message["blocks"][2]["elements"][0]["text"])


def terms_text(message: dict[str, Any]) -> str:
    return str(message["blocks"][-1]["elements"][0]["text"])


def passage_text(message: dict[str, Any]) -> str:
    return section_texts(message)[1]


def find_match(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    return at, at + len(needle)


def rule_alert(
    summary: str,
    fired: list[tuple[str, str, int]],
    rule: str | None = "officers-crossing",
    **fields: Any,
) -> Alert:
    """An alert on ``summary`` whose matches are exactly ``fired``: (spelling, kind, nth
    occurrence) — as the engine reports a rule's matches, not every mention."""
    base = make_alert(summary=summary, terms=(), rule=rule, **fields)
    matches = tuple(
        Match(
            "syria-iraq",
            text.lower(),
            text,
            text,
            100.0,
            "summary",
            *find_match(summary, text, nth),
            rule=rule,
            kind=kind,
        )
        for text, kind, nth in fired
    )
    return replace(base, matches=matches)


# -- X01: mentions -------------------------------------------------------------------------

MENTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U012AB3CD>",
    "<!subteam^S1>",
    "<#C1>",
    "<!date^1392734382^{date}|Feb 18>",
    "&lt;!channel&gt;",
    "&lt;!here&gt; &lt;!everyone&gt; &lt;@U012AB3CD&gt; &lt;!subteam^S1&gt; &lt;#C1&gt;",
    "&#60;!here&#62;",
    "&#x3c;@U012AB3CD&#x3e;",
    "&amp;lt;!channel&amp;gt;",
    "<![CDATA[<!channel>]]>",
    "<![CDATA[&lt;!here&gt;]]>",
    "<b>&lt;!channel&gt;</b>",
]


@pytest.mark.parametrize("hostile", MENTIONS)
@pytest.mark.parametrize("field", ["title", "summary", "source"])
def test_mention_forms_arrive_escaped_in_every_field(hostile: str, field: str) -> None:
    values = {"title": "News", "summary": "Seen near Rutba today.", "source": "feed"}
    values[field] = f"Rutba {hostile} Rutba"
    alert = make_alert(title=values["title"], summary=values["summary"], source=values["source"])

    message = build_slack_message(alert)

    assert_inert(message, allowed_url=safe_link(alert.item.url))
    rendered = DATE_TOKEN.sub("", "\n".join(texts(message)))
    assert not re.search(r"<[!@#]", rendered)


def test_mentions_in_matched_text_and_term_names_are_escaped() -> None:
    alert = make_alert()
    hostile = Match("w", "t", "<!channel>", "<@U1> &lt;!here&gt;", 90.0, "summary", 0, 6)
    alert = Alert(alert.id, "<!here>", "high", alert.item, (*alert.matches, hostile))

    message = build_slack_message(alert)

    assert_inert(message, allowed_url=safe_link(alert.item.url))


def test_every_mrkdwn_object_is_verbatim_and_header_is_plain_text() -> None:
    message = build_slack_message(make_alert())

    objects = list(text_objects(message))
    assert objects[0]["type"] == "plain_text"
    assert all(o["verbatim"] is True for o in objects if o["type"] == "mrkdwn")
    assert not {"link_names", "parse"} & set(message)


def test_first_block_id_carries_the_alert_id() -> None:
    alert = make_alert(alert_id="a-feedfacefeedfacefeedface")

    assert build_slack_message(alert)["blocks"][0]["block_id"] == alert.id


# -- X02: links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://user:pass@bank.example/",
        "https://bank.example@evil.example/",
        "ftp://files.example/x",
        "https:///no-host",
        "https://bank.example/" + "a" * 5_000,
        "https://bank.example/\x00x",
        "",
    ],
)
def test_unsafe_item_links_are_not_linked(url: str) -> None:
    alert = make_alert(url=url)

    message = build_slack_message(alert)

    assert safe_link(url) is None
    assert_inert(message, allowed_url=None)
    assert "*Officers cross at Rutba*" in section_texts(message)[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://news.example/a?x=1&y=2", "https://news.example/a?x=1&amp;y=2"),
        ("https://news.example/a>b", "https://news.example/a%3Eb"),
        ("https://news.example/a|b", "https://news.example/a%7Cb"),
        ("https://news.example/<x>", "https://news.example/%3Cx%3E"),
        ("http://news.example/a b", "http://news.example/a%20b"),
    ],
)
def test_link_delimiters_inside_urls_are_percent_encoded(url: str, expected: str) -> None:
    assert safe_link(url) == expected
    message = build_slack_message(make_alert(url=url))
    assert_inert(message, allowed_url=expected)


def test_disguised_link_in_title_stays_text() -> None:
    alert = make_alert(title="<https://evil.example|https://bank.example> login")

    title_line = section_texts(build_slack_message(alert))[0]

    assert LINK.findall(title_line) == [
        (
            "https://news.example/story/1",
            "&lt;https://evil.example|https://bank.example&gt; login",
        )
    ]


# -- X03: formatting, bidi, controls -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b\x07c\x1bd", "abcd"),
        ("a\u202eb\u202dc\u2066d\u2069e", "abcde"),
        ("a\u200bb\ufeffc\u2060d\u200ee", "abcde"),
        ("\u200dx\u200d \u200c\u200cy\u200c", "x y"),
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian ZWNJ inside a word is spelling
        ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),  # ZWJ inside an emoji sequence
        ("a\x85b\x9bc", "abc"),
        ("a" + "\n" * 500 + "b", "a\n\n\nb"),
        ("a \t\u00a0  b", "a b"),
        ("a\r\nb", "a\nb"),
        ("  padded  ", "padded"),
        ("lone \ud800 surrogate", "lone surrogate"),
    ],
)
def test_clean_text_strips_controls_and_collapses_whitespace(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("*bold*", "∗bold∗"),
        ("_italic_", "ˍitalicˍ"),
        ("~strike~", "∼strike∼"),
        ("`code` ```block```", "ˋcodeˋ ˋˋˋblockˋˋˋ"),
        ("> quote", "＞ quote"),
        ("line\n  > quote", "line\n  ＞ quote"),
        ("a > b", "a > b"),
    ],
)
def test_mrkdwn_formatting_is_neutralised(raw: str, expected: str) -> None:
    assert neutralise_mrkdwn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("a<br>b", "a\nb"),
        ("AT&amp;T &lt;!here&gt;", "AT&T <!here>"),
        ("<script>alert(1)</script>text", "text"),
        ("<!-- hidden -->shown", "shown"),
        ("<ul><li>x</li><li>y</li></ul>", "x\n\ny"),
    ],
)
def test_html_to_text_drops_tags_and_decodes_entities_once(raw: str, expected: str) -> None:
    assert html_to_text(raw) == expected


def test_slack_escape_replaces_ampersand_first() -> None:
    assert slack_escape("&lt;!here&gt; <x> & y") == "&amp;lt;!here&amp;gt; &lt;x&gt; &amp; y"


def test_encoded_here_in_html_summary_never_becomes_live() -> None:
    summary = "<p>Update near Rutba: &lt;!here&gt; *now* \u202eevil\x00</p>" + "<br>" * 500
    alert = make_alert(summary=summary)

    message = build_slack_message(alert)

    snippet = section_texts(message)[1]
    assert "&lt;!here&gt;" in snippet and "<!here>" not in snippet
    assert "∗now∗" in snippet and "\u202e" not in snippet and "\x00" not in snippet
    assert "\n\n\n\n" not in snippet
    assert_inert(message, allowed_url=safe_link(alert.item.url))


def test_hostile_title_is_neutralised_in_fallback_text() -> None:
    alert = make_alert(title="> *URGENT* <!channel>\n\n\n\n\nreset password")

    text = build_slack_message(alert)["text"]

    assert text == "[HIGH] syria-iraq: ＞ ∗URGENT∗ &lt;!channel&gt; reset password"


# -- snippet ---------------------------------------------------------------------------------


def test_snippet_bolds_matches_using_offsets_into_the_original_html() -> None:
    summary = "<p>Officers <b>crossed</b> at <a href='x'>Rutba</a> &amp; returned to Rutba.</p>"
    alert = make_alert(summary=summary, terms=("Rutba",))

    snippet = section_texts(build_slack_message(alert))[1]

    assert snippet == "Officers crossed at *Rutba* &amp; returned to *Rutba*."


def test_snippet_is_a_window_around_the_first_match() -> None:
    summary = "lead " * 200 + "the Rutba crossing " + "tail " * 200
    alert = make_alert(summary=summary)

    snippet = section_texts(build_slack_message(alert))[1]

    assert snippet.startswith("… ") or snippet.startswith("…")
    assert snippet.endswith("…")
    assert "*Rutba*" in snippet
    assert 200 <= len(snippet) <= 400


def test_snippet_ignores_offsets_outside_the_field() -> None:
    alert = make_alert()
    bad = Match("w", "t", "Ghost", "Ghost", 90.0, "summary", 500, 900)
    alert = Alert(alert.id, alert.watchlist, "high", alert.item, (*alert.matches, bad))

    snippet = section_texts(build_slack_message(alert))[1]

    assert snippet == "Former Syrian officers were seen near *Rutba* in Anbar."


def test_title_only_match_quotes_the_title() -> None:
    alert = make_alert(title="Rutba border reopens", field="title")

    snippet = section_texts(build_slack_message(alert))[1]

    assert snippet == "*Rutba* border reopens"


def test_context_lists_matched_terms_with_variants() -> None:
    alert = make_alert(summary="Ar-Rutbah and Rutba", terms=("Rutba",))
    variant = Match("syria-iraq", "rutba", "Rutba", "Ar-Rutbah", 91.0, "summary", 0, 9)
    alert = Alert(alert.id, alert.watchlist, "high", alert.item, (*alert.matches, variant))

    context = build_slack_message(alert)["blocks"][-1]["elements"][0]["text"]

    assert context == 'Matched: Rutba (topic; as "Ar-Rutbah")'


# -- N08: oversized content ------------------------------------------------------------------


def oversized_alert(unit: str, rule: bool = False) -> Alert:
    title = (unit * (100_000 // len(unit) + 1))[:100_000]
    body = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    words = body[:500] + " Rutba " + body[500:]
    # 80 matches, spread through the summary and packed near the window edges
    summary = words.replace(unit * 4, "Rutba" + unit * 3, 79)
    alert = make_alert(
        title=title,
        summary=summary,
        source_title=title,
        published=title[:5_000],
        rule=title if rule else None,
    )
    return replace(alert, watchlist=title[:50_000], id=alert.id + "x" * 300)


UNITS = ["a&b ", "👍🏽&", "&", "🇸🇾 ", "e\u0301&<", "👨‍👩‍👧&"]
UNIT_IDS = ["ascii-amp", "skin-tone", "only-amp", "flag", "combining", "zwj-family"]


@pytest.mark.parametrize("rule", [False, True], ids=["no-rule", "rule"])
@pytest.mark.parametrize("unit", UNITS, ids=UNIT_IDS)
def test_oversized_item_fits_slack_limits(unit: str, rule: bool) -> None:
    alert = oversized_alert(unit, rule)
    assert len(alert.matches) >= 80

    message = build_slack_message(alert)

    assert limit_problem(message) is None
    assert slack_len(header_text(message)) <= HEADER_LIMIT
    if rule:
        assert " · rule: " in header_text(message)
        assert "(rule: " in message["text"]
    assert_inert(message, allowed_url=safe_link(alert.item.url))
    assert slack_len(message["text"]) <= 40_000 and len(message["blocks"]) <= 50
    for text in section_texts(message):
        assert slack_len(text) <= SECTION_LIMIT
    for text in texts(message):
        text.encode("utf-8")  # no lone surrogates
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), "an entity was cut"
        assert not text.endswith("\u200d…") and "\u200d…" not in text
    title_line = section_texts(message)[0]
    assert re.fullmatch(r"\*<https://news\.example/story/1\|[^<>]+…>\*", title_line)
    snippet = section_texts(message)[1]
    assert snippet.count("*") % 2 == 0


@pytest.mark.parametrize("unit", UNITS, ids=UNIT_IDS)
def test_oversized_multi_term_passages_fit_one_section(unit: str) -> None:
    filler = (unit * (20_000 // len(unit) + 1))[:20_000]
    names = ("Rutba", "Anbar", "Qaim", "Haditha")
    summary = "".join(f" {n} " + filler for n in names) + " Rutba near Anbar " + filler
    content = " Tikrit " + filler
    fired = make_alert(summary=summary, terms=names, content=content)
    tikrit = Match("syria-iraq", "tikrit", "Tikrit", "Tikrit", 100.0, "content", 1, 7)

    for rule in (None, "within-rule"):
        alert = replace(fired, rule=rule, matches=(*fired.matches, tikrit))
        message = build_slack_message(alert)

        assert limit_problem(message) is None
        passages = passage_text(message)
        assert slack_len(passages) <= SECTION_LIMIT
        assert 1 <= passages.count("\n") + 1 <= 3
        assert passages.count("*") % 2 == 0 and "*Rutba*" in passages
        assert not re.search(r"&(?!amp;|lt;|gt;)", passages), "an entity was cut"
        assert_inert(message, allowed_url=safe_link(alert.item.url))


def test_emoji_at_the_cut_point_is_never_split() -> None:
    title = "x" * 298 + "👨‍👩‍👧" + "tail"
    label = LINK.findall(section_texts(build_slack_message(make_alert(title=title)))[0])[0][1]

    assert label.endswith("…")
    kept = label[:-1]
    assert kept == "x" * 298 or kept.endswith("👨‍👩‍👧")


# -- what the analyst acts on: rule, passage, outlet, time, link, kinds ----------------------


def test_payload_names_the_rule_that_fired_and_carries_a_slack_date() -> None:
    message = build_slack_message(make_alert(rule="officers-crossing"))

    assert header_text(message) == "🟠 HIGH · syria-iraq · rule: officers-crossing"
    assert message["text"].startswith("[HIGH] syria-iraq (rule: officers-crossing): ")
    assert meta_text(message) == (
        "Source: aljazeera · Published: "
        "<!date^1739527200^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>"
    )


def test_without_a_rule_the_header_names_only_the_watchlist() -> None:
    message = build_slack_message(make_alert())

    assert header_text(message) == "🟠 HIGH · syria-iraq"
    assert "rule" not in message["text"]


def test_outlet_display_name_is_used_and_falls_back_to_the_source_key() -> None:
    named = build_slack_message(make_alert(source_title="Al Jazeera English"))
    unnamed = build_slack_message(make_alert(source_title=" \u200b "))

    assert meta_text(named).startswith("Source: Al Jazeera English · ")
    assert meta_text(unnamed).startswith("Source: aljazeera · ")


def test_link_is_posted_without_tracking_parameters_or_fragment() -> None:
    alert = make_alert(url="https://News.Example/story/1?utm_source=x&id=3&fbclid=Y#frag")

    title_line = section_texts(build_slack_message(alert))[0]

    assert LINK.findall(title_line) == [
        ("https://news.example/story/1?id=3", "Officers cross at Rutba")
    ]
    assert "(no usable link)" not in format_console(alert)
    assert "  url:       https://news.example/story/1?id=3\n" in format_console(alert)


def test_canonicalising_never_rescues_an_unsafe_link() -> None:
    alert = make_alert(url="https://news.example/a\nb?utm_source=x")

    assert_inert(build_slack_message(alert), allowed_url=None)


WITHIN_SUMMARY = (
    "<p>Rutba was mentioned in passing by the governor.</p><p>"
    + "Other news of the day &amp; more. " * 60
    + "</p><p>Yesterday <b>Syrian officers</b> crossed the border near Rutba, witnesses said.</p>"
)


def test_within_rule_passage_bolds_both_terms_where_the_rule_fired() -> None:
    alert = rule_alert(WITHIN_SUMMARY, [("Syrian officers", "topic", 0), ("Rutba", "place", 1)])

    passage = passage_text(build_slack_message(alert))

    assert "Rutba was mentioned" not in passage  # the first mention is not where it fired
    assert passage.startswith("…") and "\n" not in passage
    assert passage.endswith(
        "Yesterday *Syrian officers* crossed the border near *Rutba*, witnesses said."
    )
    assert "<b>" not in passage and "&amp;amp;" not in passage


def test_long_within_span_is_shown_whole_up_to_the_limit() -> None:
    summary = (
        "Intro words here. " * 20
        + "Syrian officers left. "
        + "word " * 120
        + "They reached Rutba at dawn. "
        + "Outro text. " * 20
    )
    alert = rule_alert(summary, [("Syrian officers", "topic", 0), ("Rutba", "place", 0)])

    passage = passage_text(build_slack_message(alert))

    assert "*Syrian officers* left. " + "word " * 120 + "They reached *Rutba*" in passage
    assert passage.startswith("…") and passage.endswith("…")


def test_rule_span_too_long_to_show_whole_is_shown_as_excerpts_with_both_terms() -> None:
    summary = (
        "Syrian officers left Damascus. "
        + "filler " * 600
        + "They reached Rutba at dawn. "
        + "end " * 50
    )
    alert = rule_alert(summary, [("Syrian officers", "topic", 0), ("Rutba", "place", 0)])

    passage = passage_text(build_slack_message(alert))

    assert "*Syrian officers*" in passage and "*Rutba*" in passage
    assert " … " in passage and slack_len(passage) < 800


def test_without_rule_a_second_passage_shows_a_term_not_yet_shown() -> None:
    summary = (
        "Officers were seen near Rutba on Monday. "
        + "Unrelated text. " * 80
        + "Later, in Anbar, the convoy stopped."
    )
    alert = make_alert(summary=summary, terms=("Rutba", "Anbar"))

    first, second = passage_text(build_slack_message(alert)).split("\n")

    assert first.startswith("Officers were seen near *Rutba* on Monday.") and "Anbar" not in first
    assert second.startswith("…") and second.endswith("in *Anbar*, the convoy stopped.")
    assert "[[Rutba]]" in format_console(alert) and "[[Anbar]]" in format_console(alert)


def test_a_term_in_another_field_gets_its_own_passage() -> None:
    alert = make_alert(summary="Officers were seen near Rutba.", content="Talks in Anbar went on.")
    anbar = Match("syria-iraq", "anbar", "Anbar", "Anbar", 100.0, "content", 9, 14, kind="place")
    alert = replace(alert, matches=(*alert.matches, anbar))

    passage = passage_text(build_slack_message(alert))

    assert passage == "Officers were seen near *Rutba*.\nTalks in *Anbar* went on."


def test_at_most_three_passages_in_one_section() -> None:
    names = ("Rutba", "Anbar", "Qaim", "Haditha", "Tikrit")
    summary = " ".join(f"News of {n}. " + "filler " * 200 for n in names)
    alert = make_alert(summary=summary, terms=names)

    message = build_slack_message(alert)

    passages = passage_text(message).split("\n")
    assert len(passages) == 3 and all("*" in p for p in passages)
    assert slack_len(passage_text(message)) <= SECTION_LIMIT
    assert terms_text(message).count("(topic)") == 5  # every term still listed


def test_passage_edges_never_fall_inside_a_tag_or_an_entity() -> None:
    tag = '<a href="https://x.example/' + "p" * 60 + '">link</a>'
    summary = (
        "<p>"
        + ("Word &amp; " + tag + " ") * 40
        + "near Rutba today "
        + (tag + " &eacute;t&eacute; ") * 40
        + "</p>"
    )
    alert = make_alert(summary=summary)

    passage = passage_text(build_slack_message(alert))

    assert "*Rutba*" in passage
    assert not re.search(r"href|x\.example|amp;(?<!&amp;)|eacute|ppp", passage), passage


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (
            "2025-02-14T10:00:00Z",
            "<!date^1739527200^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>",
        ),
        (
            "2025-02-14T12:00:00+02:00",
            "<!date^1739527200^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>",
        ),
        (
            "Fri, 14 Feb 2025 10:00:00 GMT",
            "<!date^1739527200^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>",
        ),
        ("2025-02-14", "<!date^1739534400^{date_short_pretty}|2025-02-14>"),  # noon UTC
        ("2025-02", "2025-02"),
        ("2025-13", "2025-13"),
        ("2025-02-30", "2025-02-30"),
        ("last Tuesday *maybe*", "last Tuesday ∗maybe∗"),
        ("١٤-٠٢-٢٠٢٥", "١٤-٠٢-٢٠٢٥"),
        (None, "unknown"),
        ("  ", "unknown"),
        ("1969-07-20T20:17:00Z", "1969-07-20 20:17 UTC"),
    ],
)
def test_publication_time_partial_garbage_and_missing(published: str | None, expected: str) -> None:
    alert = make_alert(published=published)

    message = build_slack_message(alert)

    assert meta_text(message) == f"Source: aljazeera · Published: {expected}"
    assert_inert(message, allowed_url=safe_link(alert.item.url))


@pytest.mark.parametrize(
    "published",
    [
        "<!channel>",
        "2025-02-14T10:00:00Z|<!here>",
        "2025-02-14T10:00:00Z><!here",
        "<!date^1739527200^{date_short_pretty}|<!channel>>",
        "&lt;!channel&gt;",
        "2025-02-14\u202e<@U012AB3CD>",
        "2025-02-14T10:00:00Z" + "<!everyone>" * 5_000,
    ],
)
def test_hostile_published_value_can_never_make_a_token(published: str) -> None:
    alert = make_alert(published=published)

    message = build_slack_message(alert)

    assert_inert(message, allowed_url=safe_link(alert.item.url))
    assert not DATE_TOKEN.search(meta_text(message))
    assert not re.search(r"<[!@#]", "\n".join(texts(message)))
    assert slack_len(meta_text(message)) < 400
    # The terminal shows the raw value as text (nothing there interprets it), on one line.
    (line,) = [x for x in format_console(alert).split("\n") if x.startswith("  published: ")]
    assert len(line) <= len("  published: ") + 100 and "\u202e" not in line


def test_matched_terms_show_their_kind_and_the_spelling_found() -> None:
    summary = "Ahmed al-Shara'a met officials near Rutba."
    alert = make_alert(summary=summary, terms=("Rutba",), kinds={"Rutba": "place"})
    sharaa = Match(
        "syria-iraq",
        "sharaa",
        "Ahmad al-Sharaa",
        "Ahmed al-Shara'a",
        92.0,
        "summary",
        0,
        16,
        kind="person",
    )
    alert = replace(alert, matches=(sharaa, *alert.matches))

    message = build_slack_message(alert)

    assert terms_text(message) == (
        'Matched: Ahmad al-Sharaa (person; as "Ahmed al-Shara\'a") · Rutba (place)'
    )
    assert passage_text(message) == "*Ahmed al-Shara'a* met officials near *Rutba*."


HOSTILE_NAMES = [*MENTIONS, "<https://evil.example|https://bank.example>", "*bold* _it_ ~x~"]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
@pytest.mark.parametrize("where", ["source_title", "rule", "watchlist", "term", "kind"])
def test_hostile_outlet_rule_and_term_names_are_escaped(hostile: str, where: str) -> None:
    alert = make_alert(
        source_title=hostile if where == "source_title" else "Al Jazeera",
        rule=hostile if where == "rule" else "officers-crossing",
    )
    if where == "watchlist":
        alert = replace(alert, watchlist=hostile)
    if where in ("term", "kind"):
        (match,) = alert.matches
        changed = {"term_name": hostile} if where == "term" else {"kind": hostile}
        alert = replace(alert, matches=(replace(match, **changed),))

    message = build_slack_message(alert)

    assert_inert(message, allowed_url=safe_link(alert.item.url))
    rendered = DATE_TOKEN.sub("", "\n".join(texts(message)))
    assert not re.search(r"<[!@#]", rendered)
    assert not re.search(r"(?<![<\w])[*_~]\w", header_text(message) + meta_text(message))
    console = format_console(alert)
    assert "\x1b" not in console and "\u202e" not in console


def test_console_shows_rule_passage_outlet_utc_time_clean_link_and_kinds() -> None:
    alert = rule_alert(
        WITHIN_SUMMARY,
        [("Syrian officers", "topic", 0), ("Rutba", "place", 1)],
        source_title="Al\x1b[31m Jazeera",
        url="https://news.example/s?utm_medium=rss&id=3#top",
    )

    lines = format_console(alert).split("\n")

    assert lines[1] == "  rule:      officers-crossing"
    assert "  url:       https://news.example/s?id=3" in lines
    assert "  source:    Al[31m Jazeera" in lines
    assert "  published: 2025-02-14 10:00 UTC" in lines
    assert lines[-1] == "  matched:   Syrian officers (topic) · Rutba (place)"
    (snippet,) = [line for line in lines if line.startswith("  snippet:")]
    assert snippet.endswith(
        "Yesterday [[Syrian officers]] crossed the border near [[Rutba]], witnesses said."
    )
    assert "  rule:      (none: any term alerts)" in format_console(make_alert())


def test_no_ellipsis_where_only_markup_was_left_out() -> None:
    summary = (
        "<p>Officers near Rutba.</p><p>" + "filler " * 100 + "</p><p>Then Anbar fell quiet.</p>"
    )
    alert = make_alert(summary=summary, terms=("Rutba", "Anbar"))

    first, second = passage_text(build_slack_message(alert)).split("\n")

    assert first.startswith("Officers near *Rutba*.") and first.endswith("…")
    assert second.startswith("…") and second.endswith("Then *Anbar* fell quiet.")
