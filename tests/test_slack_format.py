"""Formatter: untrusted text is inert in Slack (X01–X03) and payloads fit Slack's limits (N08)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.models import Alert, Match
from monitor.notify.format import (
    SECTION_LIMIT,
    build_slack_message,
    clean_text,
    html_to_text,
    neutralise_mrkdwn,
    safe_link,
    slack_escape,
    slack_len,
)
from tests.harness.slack_fixtures import make_alert
from tests.harness.slackstub import limit_problem

LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>")


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
    """No live angle-bracket markup except the template's own title link."""
    for text in texts(message):
        outside_links = LINK.sub("", text)
        assert "<" not in outside_links and ">" not in outside_links, text
        for url, label in LINK.findall(text):
            assert url == allowed_url, text
            assert "<" not in label and ">" not in label
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), f"bare & in {text!r}"


def section_texts(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


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
    rendered = "\n".join(texts(message))
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

    assert context == "Matched: Rutba (Ar-Rutbah)"


# -- N08: oversized content ------------------------------------------------------------------


def oversized_alert(unit: str) -> Alert:
    title = (unit * (100_000 // len(unit) + 1))[:100_000]
    body = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    words = body[:500] + " Rutba " + body[500:]
    # 80 matches, spread through the summary and packed near the window edges
    summary = words.replace(unit * 4, "Rutba" + unit * 3, 79)
    return make_alert(title=title, summary=summary)


@pytest.mark.parametrize(
    "unit",
    ["a&b ", "👍🏽&", "&", "🇸🇾 ", "e\u0301&<", "👨‍👩‍👧&"],
    ids=["ascii-amp", "skin-tone", "only-amp", "flag", "combining", "zwj-family"],
)
def test_oversized_item_fits_slack_limits(unit: str) -> None:
    alert = oversized_alert(unit)
    assert len(alert.matches) >= 80

    message = build_slack_message(alert)

    assert limit_problem(message) is None
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


def test_emoji_at_the_cut_point_is_never_split() -> None:
    title = "x" * 298 + "👨‍👩‍👧" + "tail"
    label = LINK.findall(section_texts(build_slack_message(make_alert(title=title)))[0])[0][1]

    assert label.endswith("…")
    kept = label[:-1]
    assert kept == "x" * 298 or kept.endswith("👨‍👩‍👧")
