"""Turn untrusted feed text into inert Slack Block Kit (RELIABILITY.md B5, X01–X03, N08).

Policy for untrusted text (titles, summaries, source names, matched text):

1. **HTML to text first** (``html_to_text``) when a field looks like HTML, so an encoded
   ``&lt;!here&gt;`` is decoded once, here, and never again by Slack.
2. **Clean** (``clean_text``): C0/C1 controls (incl. NUL and ESC), lone surrogates, bidi
   marks/overrides/isolates and zero-width characters are removed; whitespace is collapsed and
   runs of newlines cut to at most three. ZWNJ/ZWJ survive only between two visible
   characters, where Persian spelling and emoji sequences need them.
3. **Neutralise mrkdwn** (``neutralise_mrkdwn``): the formatting characters ``*``, ``_``,
   ``~`` and backtick are replaced with look-alikes that Slack does not treat as markup
   (``∗ ˍ ∼ ˋ``), and a ``>`` that starts a line becomes ``＞`` so it cannot open a quote.
   No zero-width characters are added, so copying the text out of Slack keeps it readable.
   Bold around matched terms and the title link are the only markup, and they come from this
   module's templates, never from input.
4. **Escape last** (``slack_escape``): ``&`` then ``<`` then ``>``. Nothing after this step
   decodes entities, so no input can produce ``<!channel>``, ``<@U…>``, ``<#C…>`` or a
   ``<url|label>`` link. Links are built only from ``safe_link`` URLs, after
   ``canonical_url`` has dropped tracking parameters and the fragment.

Untrusted text includes the analysts' own YAML (watchlist, rule and term names, kinds) and
the outlet's display name, not only feed fields. The one ``<!…>`` token the module writes is
the publication time, ``<!date^UNIX^{date_short_pretty} at {time}|2025-02-14 10:00 UTC>``,
built only from a parsed datetime (``read_published``), so Slack shows each reader local
time; an unparseable ``published`` value is shown as escaped text, never inside a token.

What the message shows: severity, watchlist and the rule that fired; the title linked; the
outlet and publication time; the passage where the alert fired (for a rule, the span holding
its matches together, not merely the first mention) with every match in bold, plus up to two
short passages for other terms; each matched term with its kind and the spelling found.

Every mrkdwn text object carries ``verbatim: true`` (Slack then auto-links nothing), and the
notifier sends ``unfurl_links``/``unfurl_media`` false and never ``link_names`` or ``parse``.

Limits (N08): message ``text`` ≤ 40,000, ≤ 50 blocks, section text ≤ 3,000 after escaping.
Lengths are counted in UTF-16 code units, the stricter of Slack's possible counts, and text
is cut only between escaped characters (never inside ``&amp;``), never after a ZWJ or before
a combining mark, and never inside a link, with ``…`` marking the cut.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.models import MATCH_FIELDS, Alert, Match
from monitor.sources.canonical import canonical_url, normalise_date

TEXT_LIMIT = 40_000
BLOCK_LIMIT = 50
SECTION_LIMIT = 3_000
HEADER_LIMIT = 150
BLOCK_ID_LIMIT = 255
URL_LIMIT = 2_000
TITLE_LIMIT = 300  # escaped label length inside the title link
SNIPPET_WINDOW = 300  # characters of the original field around the matches
EXTRA_WINDOW = 160  # a further passage for a term not yet shown, or one excerpt of a long one
PASSAGE_SPAN_LIMIT = 1_000  # a rule's first-to-last span shown whole up to this many characters
MAX_PASSAGES = 3  # passages in the one section (the first where the alert fired)
MIN_CONTEXT = 40  # characters of context kept on each side of a long span
SNAP_REACH = 30  # how far a window edge moves to reach a word boundary
TAG_REACH = 2_000  # how far back a window edge looks for the tag it may sit in
SOURCE_LIMIT = 200
DATE_LIMIT = 100
FALLBACK_NAMES_LIMIT = 400  # watchlist and rule names in the notification text
ELLIPSIS = "…"

SEVERITY_MARK = {"info": "⚪", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}

_INVISIBLE = {
    *range(0x00, 0x09),
    0x0B,
    0x0C,
    *range(0x0E, 0x20),
    *range(0x7F, 0xA0),  # C0 (kept \t\n\r), C1
    0x00AD,
    0x034F,
    0x061C,
    0x115F,
    0x1160,
    0x17B4,
    0x17B5,
    0x180E,  # soft hyphen, fillers
    0x200B,  # zero-width space (ZWNJ/ZWJ are handled by _STRAY_JOINER)
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2070),  # bidi marks, overrides, isolates, invisible operators
    0x3164,
    0xFEFF,
    0xFFA0,
    *range(0xFFF9, 0xFFFC),  # Hangul fillers, BOM, interlinear
}
_DROP_TABLE = dict.fromkeys(_INVISIBLE)
_SURROGATE = re.compile("[\ud800-\udfff]")
# ZWNJ/ZWJ are kept only inside a word or emoji sequence (Persian text, family emoji).
_STRAY_JOINER = re.compile(
    r"(?<!\S)[\u200c\u200d]+|[\u200c\u200d]+(?!\S)|(?<=[\u200c\u200d])[\u200c\u200d]+"
)
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n(?: ?\n){3,} ?")
_NL_EDGES = re.compile(r" ?\n ?")
_MRKDWN = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_QUOTE_START = re.compile(r"(^|\n)([ \t]*)>", re.MULTILINE)
_LOOKS_HTML = re.compile(
    r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z]{2,8});"
)
_BLOCK_TAGS = {
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
}
_SKIP_TAGS = {"script", "style", "template", "noscript", "head", "title"}
# ASCII digits only: ``\d`` would let Arabic-Indic digits through to the date token.
_ISO_MONTH = re.compile(r"[0-9]{4}(?:-[0-9]{2})?")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HAS_TIME = re.compile(r"[0-9]:[0-9]|T[0-9]")


# -- text hygiene ---------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as control: ``&`` first, then ``<``, ``>``.

    Apply last, after ``html_to_text``/``clean_text``: anything that decodes entities after
    this step would undo it.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _strip_invisible(text: str) -> str:
    text = _STRAY_JOINER.sub("", _SURROGATE.sub("", text.translate(_DROP_TABLE)))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _collapse(text: str) -> str:
    text = _HSPACE.sub(" ", text)
    text = _NEWLINES.sub("\n\n\n", text)
    return _NL_EDGES.sub("\n", text)


def clean_text(text: str) -> str:
    """Remove controls, bidi overrides and zero-width characters; collapse whitespace.

    Runs of spaces/tabs become one space and runs of newlines at most three, so a hostile
    field cannot fake a separate message, reverse the reading order or hide characters.
    """
    return _collapse(_strip_invisible(text)).strip()


def clean_inline(text: str) -> str:
    """``clean_text`` folded onto one line (for titles, names and snippets), not stripped."""
    return _HSPACE.sub(" ", _strip_invisible(text).replace("\n", " "))


class _TextExtractor(HTMLParser):
    """Collects text; block elements become newlines, script/style bodies are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(fragment: str) -> str:
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def html_to_text(markup: str) -> str:
    """Tags dropped, entities decoded (once), block elements turned into newlines, cleaned.

    Comments, declarations and CDATA-like sections are dropped, never passed through.
    """
    return clean_text(_html_text(markup))


def looks_like_html(text: str) -> bool:
    """True when ``text`` has a tag or an entity, i.e. needs ``html_to_text`` to be read."""
    return bool(_LOOKS_HTML.search(text))


def field_to_text(text: str) -> str:
    """An item field as plain text: HTML is converted, plain text only cleaned."""
    return html_to_text(text) if looks_like_html(text) else clean_text(text)


def neutralise_mrkdwn(text: str) -> str:
    """Make ``*bold*``, ``_italic_``, ``~strike~``, code and ``>`` quotes inert (see module doc)."""
    return _QUOTE_START.sub(lambda m: f"{m.group(1)}{m.group(2)}＞", text.translate(_MRKDWN))


def inert(text: str) -> str:
    """Cleaned, neutralised and escaped: untrusted text ready for a mrkdwn object."""
    return slack_escape(neutralise_mrkdwn(text))


def safe_link(url: str) -> str | None:
    """``url`` fit to sit inside ``<url|label>``, or None.

    Only http/https with a host and no userinfo, at most 2,000 characters; ``<``, ``>``,
    ``|`` (and spaces, controls) are percent-encoded so the link cannot end early or carry a
    second label. ``&`` is written as ``&amp;`` as Slack requires inside ``<…>``.
    """
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > URL_LIMIT or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    encoded = quote(url, safe="!#$%&'()*+,-./:;=?@[]~_")
    encoded = encoded.replace("&", "&amp;")
    return encoded if len(encoded) <= URL_LIMIT else None


# -- measuring and cutting ------------------------------------------------------------------


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _can_cut_before(text: str, i: int) -> bool:
    if i <= 0 or i >= len(text):
        return True
    prev, nxt = text[i - 1], text[i]
    if prev == "\u200d" or nxt in "\u200d\ufe0e\ufe0f" or 0x1F3FB <= ord(nxt) <= 0x1F3FF:
        return False
    return unicodedata.category(nxt) not in ("Mn", "Me", "Mc")


def fit_plain(text: str, limit: int) -> str:
    """Cut unescaped ``text`` to ``limit`` UTF-16 units once escaped, ending in ``…``.

    Returns the *escaped* string; cuts fall between characters, so an entity is never split.
    Every character costs at least one unit once escaped, so only the first ``limit + 1``
    can matter: a 100,000-character name is not escaped whole just to be cut.
    """
    text = text[: limit + 1]
    escaped = inert(text)
    if slack_len(escaped) <= limit:
        return escaped
    return render_segments([(text, False)], limit)


def render_segments(segments: Sequence[tuple[str, bool]], limit: int) -> str:
    """Escape ``(text, bold)`` segments into mrkdwn of at most ``limit`` UTF-16 units.

    Bold segments are wrapped in ``*…*``. When the budget runs out the text ends with ``…``
    (and a closing ``*`` if a bold run was open), cut at a safe character boundary.
    """
    rendered = [_wrap(inert(text), bold) for text, bold in segments]
    if slack_len("".join(rendered)) <= limit:
        return "".join(rendered)
    out: list[str] = []
    used = 0
    reserve = slack_len(ELLIPSIS) + 1  # room for "…" and a closing "*"
    for (text, bold), wrapped in zip(segments, rendered, strict=True):
        if used + slack_len(wrapped) <= limit - reserve:
            out.append(wrapped)
            used += slack_len(wrapped)
            continue
        out.append(_cut_segment(text, bold, limit - used - reserve))
        return "".join(out) + ELLIPSIS + ("*" if bold and out[-1] else "")
    return "".join(out)


def _wrap(piece: str, bold: bool) -> str:
    """Bold with the spaces outside the asterisks: Slack ignores ``* word *``."""
    core = piece.strip()
    if not bold or not core:
        return piece
    lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()) :]
    return f"{lead}*{core}*{trail}"


def _cut_segment(text: str, bold: bool, budget: int) -> str:
    """The longest escaped prefix of ``text`` that fits ``budget`` (bold opener included)."""
    budget -= 1 if bold else 0
    neutral = neutralise_mrkdwn(text)
    taken, used, best = [], 0, 0
    for i, char in enumerate(neutral):
        cost = slack_len(slack_escape(char))
        if used + cost > budget:
            break
        taken.append(slack_escape(char))
        used += cost
        if _can_cut_before(neutral, i + 1):
            best = len(taken)
    body = "".join(taken[:best]).rstrip()
    if not body:
        return ""
    return f"*{body}" if bold else body


# -- passages around matches ----------------------------------------------------------------
#
# A passage is one or more windows of one field's ORIGINAL text (offsets as the matcher gave
# them, into text that may be HTML). Windows are chosen on the original text and converted
# piece by piece (text between matches, then each match), so the offsets stay valid and every
# matched span inside a window is shown in bold.

_Span = tuple[int, int, str]  # (start, end, term id) in one field's original text
_WS_CHARS = frozenset(" \t\n\r\f\v\u00a0")
_TAG_START = re.compile(r"<[A-Za-z/!?]")
_ENTITY_HEAD = re.compile(r"&#?[A-Za-z0-9]{0,10}$")
_ENTITY_TAIL = re.compile(r"#?[A-Za-z0-9]*;")


@dataclass
class Passage:
    """Windows ``[(start, end), ...]`` (sorted, disjoint) of one field's original text."""

    field: str
    windows: list[tuple[int, int]] = dc_field(default_factory=list)


def _valid_spans(text: str, matches: Iterable[Match]) -> list[tuple[int, int]]:
    """Sorted, merged (start, end) spans that really lie inside ``text``."""
    spans = sorted((m.start, m.end) for m in matches if 0 <= m.start < m.end <= len(text))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _term_spans(alert: Alert) -> dict[str, list[_Span]]:
    """Per matchable field (in ``MATCH_FIELDS`` order), the alert's matches whose offsets
    really lie in that field, sorted. A match with offsets outside its field (stale or
    hostile data) is ignored rather than quoted wrongly."""
    found: dict[str, list[_Span]] = {}
    for name in MATCH_FIELDS:
        size = len(alert.item.field_text(name))
        spans = [
            (m.start, m.end, m.term)
            for m in alert.matches
            if m.field == name and 0 <= m.start < m.end <= size
        ]
        if spans:
            found[name] = sorted(spans)
    return found


def choose_field(alert: Alert) -> str:
    """The field to quote: the non-title field with most matches, else the title."""
    counts = {name: len(spans) for name, spans in _term_spans(alert).items()}
    body = {f: n for f, n in counts.items() if f != "title"}
    if body:
        return max(body, key=lambda f: (body[f], f == "summary"))
    return "title" if counts else ""


def _in_markup_tag(text: str, i: int) -> int:
    """Index of the ``<`` of the tag that position ``i`` lies inside, or -1."""
    lt = text.rfind("<", max(0, i - TAG_REACH), i)
    if lt == -1 or text.find(">", lt, i) != -1 or not _TAG_START.match(text, lt):
        return -1
    return lt


def _snap_start(text: str, start: int, lo: int, is_html: bool) -> int:
    """Move ``start`` forward (never past ``lo``) to a word start, out of a tag or entity."""
    if 0 < start < lo and text[start - 1] not in _WS_CHARS:
        for i in range(start, min(lo, start + SNAP_REACH)):
            if text[i] in _WS_CHARS:
                start = i + 1
                break
    if is_html and start > 0:
        if _in_markup_tag(text, start) != -1:
            gt = text.find(">", start, lo)
            start = gt + 1 if gt != -1 else start
        head = _ENTITY_HEAD.search(text, max(0, start - 12), start)
        tail = _ENTITY_TAIL.match(text, start, min(len(text), start + 12))
        if head and tail and tail.end() <= lo:
            start = tail.end()
    return min(start, lo)


def _snap_end(text: str, end: int, hi: int, is_html: bool) -> int:
    """Move ``end`` back (never before ``hi``) to a word end, out of a tag or entity."""
    if hi < end < len(text) and text[end] not in _WS_CHARS:
        for i in range(end - 1, max(hi, end - SNAP_REACH) - 1, -1):
            if text[i] in _WS_CHARS:
                end = i
                break
    if is_html and end < len(text):
        lt = _in_markup_tag(text, end)
        end = lt if lt >= hi else end
        head = _ENTITY_HEAD.search(text, max(0, end - 12), end)
        if head and _ENTITY_TAIL.match(text, end, min(len(text), end + 12)):
            end = head.start() if head.start() >= hi else end
    return max(end, hi)


def _widen(text: str, lo: int, hi: int, size: int, is_html: bool) -> tuple[int, int]:
    """A window holding ``[lo, hi)`` widened to about ``size`` characters (a third before,
    the rest after, at least ``MIN_CONTEXT`` a side), cut at word boundaries and never
    inside a tag or an entity, so the converted piece reads cleanly."""
    context = max(size - (hi - lo), 2 * MIN_CONTEXT)
    before = max(context // 3, MIN_CONTEXT)
    start, end = lo - before, hi + context - before
    if start < 0:
        start, end = 0, end - start
    if end > len(text):
        start, end = max(0, start - (end - len(text))), len(text)
    return _snap_start(text, start, lo, is_html), _snap_end(text, end, hi, is_html)


def _merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted windows, those overlapping or a few characters apart joined (no "a … b" for a
    gap of one word)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1] + SNAP_REACH:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _min_cover(spans: Sequence[_Span]) -> Sequence[_Span]:
    """The shortest run of ``spans`` (sorted by start) holding every distinct term once."""
    need = len({term for _, _, term in spans})
    counts: dict[str, int] = {}
    best: tuple[float, int, int] = (float("inf"), 0, len(spans))
    left = 0
    for right, (_, end, term) in enumerate(spans):
        counts[term] = counts.get(term, 0) + 1
        while len(counts) == need:
            width = end - spans[left][0]
            if width < best[0]:
                best = (width, left, right + 1)
            gone = spans[left][2]
            counts[gone] -= 1
            if not counts[gone]:
                del counts[gone]
            left += 1
    return spans[best[1] : best[2]]


def _rule_passage(alert: Alert, spans: dict[str, list[_Span]]) -> Passage:
    """Where the rule fired: the field holding most of its terms, from the first to the
    last of its matches there, widened to the snippet window.

    A ``within:`` rule's matches lie in one window of one field, so this is the passage
    that made the rule fire, even when a term's first mention is far earlier. Without
    ``within:`` the matches may be spread out: past ``PASSAGE_SPAN_LIMIT`` the shortest run
    holding each term once is shown instead, and if even that is too long, one excerpt per
    term joined by "…"."""
    name = max(
        spans,
        key=lambda f: (len({t for _, _, t in spans[f]}), f != "title", f == "summary"),
    )
    text = alert.item.field_text(name)
    is_html = looks_like_html(text)
    chosen: Sequence[_Span] = spans[name]
    lo, hi = chosen[0][0], max(end for _, end, _ in chosen)
    if hi - lo > PASSAGE_SPAN_LIMIT:
        chosen = _min_cover(chosen)
        lo, hi = chosen[0][0], max(end for _, end, _ in chosen)
    if hi - lo <= PASSAGE_SPAN_LIMIT:
        return Passage(name, [_widen(text, lo, hi, SNIPPET_WINDOW, is_html)])
    firsts: dict[str, tuple[int, int]] = {}
    for start, end, term in chosen:
        firsts.setdefault(term, (start, end))
    excerpts = (_widen(text, s, e, EXTRA_WINDOW, is_html) for s, e in firsts.values())
    return Passage(name, _merge_windows(excerpts))


def _first_mention_passage(alert: Alert, spans: dict[str, list[_Span]]) -> Passage:
    """No rule: the window around the first mention in the field ``choose_field`` picks."""
    name = choose_field(alert)
    text = alert.item.field_text(name)
    start, end, _ = spans[name][0]
    return Passage(name, [_widen(text, start, end, SNIPPET_WINDOW, looks_like_html(text))])


def _terms_inside(spans: Iterable[_Span], windows: Sequence[tuple[int, int]]) -> set[str]:
    return {t for s, e, t in spans if any(ws <= s and e <= we for ws, we in windows)}


def _add_unshown_terms(
    alert: Alert, spans: dict[str, list[_Span]], passages: list[Passage]
) -> None:
    """Short passages for terms no passage shows yet, up to ``MAX_PASSAGES`` in all.

    The first field quoted is searched first, then the other body fields. A term found only
    in the title gets no passage of its own when the body is quoted: the title line right
    above already shows it. A window that touches an existing one in the same field is
    joined to it instead of counting as a new passage.
    """
    shown: set[str] = set()
    for passage in passages:
        shown |= _terms_inside(spans.get(passage.field, ()), passage.windows)
    first = passages[0].field
    for name in [first, *(f for f in spans if f not in (first, "title"))]:
        text = alert.item.field_text(name)
        is_html = looks_like_html(text)
        for start, end, term in spans.get(name, ()):
            if term in shown:
                continue
            window = _widen(text, start, end, EXTRA_WINDOW, is_html)
            target = next(
                (
                    p
                    for p in passages
                    if p.field == name
                    and any(
                        ws <= window[1] + SNAP_REACH and window[0] <= we + SNAP_REACH
                        for ws, we in p.windows
                    )
                ),
                None,
            )
            if target is not None:
                target.windows = _merge_windows([*target.windows, window])
            elif len(passages) < MAX_PASSAGES:
                passages.append(Passage(name, [window]))
            else:
                return
            shown |= _terms_inside(spans[name], [window])


def find_passages(alert: Alert) -> list[Passage]:
    """The passages to quote, most telling first (empty when no match lies in a field).

    With a rule: the passage that made it fire (``_rule_passage``). Without: the window
    around the first mention. Then up to two short passages for terms not yet shown.
    """
    spans = _term_spans(alert)
    if not spans:
        return []
    if alert.rule is not None:
        passages = [_rule_passage(alert, spans)]
    else:
        passages = [_first_mention_passage(alert, spans)]
    _add_unshown_terms(alert, spans, passages)
    return passages


def _fragment(raw: str, is_html: bool) -> str:
    """One piece of a window as inline text (windows never start or end inside markup)."""
    return clean_inline(_html_text(raw) if is_html else raw)


def _window_segments(
    text: str, is_html: bool, window: tuple[int, int], bold: Sequence[tuple[int, int]]
) -> list[tuple[str, bool]]:
    start, end = window
    pieces: list[tuple[str, bool]] = []
    cursor = start
    for s, e in bold[bisect_left(bold, (start, -1)) :]:
        if s >= end:
            break
        if s < cursor or e > end:
            continue
        pieces.append((_fragment(text[cursor:s], is_html), False))
        pieces.append((_fragment(text[s:e], is_html), True))
        cursor = e
    pieces.append((_fragment(text[cursor:end], is_html), False))
    pieces = [(t, b) for t, b in pieces if t]
    if pieces:
        pieces[0] = (pieces[0][0].lstrip(), pieces[0][1])
        pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
    return [(t, b) for t, b in pieces if t]


def _has_text(text: str, start: int, end: int, is_html: bool) -> bool:
    """Whether ``text[start:end]`` holds anything a reader would miss (not only markup).

    Decides whether "…" marks an omission; a long stretch is assumed to hold text rather
    than converting a megabyte of HTML to find out.
    """
    if end <= start:
        return False
    if not is_html or end - start > TAG_REACH:
        return True
    return bool(_fragment(text[start:end], is_html).strip())


def passage_segments(alert: Alert) -> list[list[tuple[str, bool]]]:
    """Each passage as ``(text, is_match)`` pieces: "…" where a window does not reach the
    field's edge and between the windows of one passage; every match in a window is bold.

    Without a usable match the start of the body is quoted, unmarked.
    """
    out: list[list[tuple[str, bool]]] = []
    for passage in find_passages(alert):
        text = alert.item.field_text(passage.field)
        is_html = looks_like_html(text)
        bold = _valid_spans(text, (m for m in alert.matches if m.field == passage.field))
        segments: list[tuple[str, bool]] = []
        for i, window in enumerate(passage.windows):
            if i:
                segments.append((f" {ELLIPSIS} ", False))
            elif _has_text(text, 0, window[0], is_html):
                segments.append((ELLIPSIS, False))
            segments.extend(_window_segments(text, is_html, window, bold))
        if _has_text(text, passage.windows[-1][1], len(text), is_html):
            segments.append((ELLIPSIS, False))
        out.append(segments)
    if not out:
        plain = clean_inline(field_to_text(alert.item.summary or alert.item.content)).strip()
        if plain:
            out.append([(_cut_plain(plain, SNIPPET_WINDOW), False)])
    return out


def snippet_segments(alert: Alert) -> list[tuple[str, bool]]:
    """All passages as one ``(text, is_match)`` list, passages separated by a newline."""
    flat: list[tuple[str, bool]] = []
    for i, segments in enumerate(passage_segments(alert)):
        flat.extend([("\n", False)] if i else [])
        flat.extend(segments)
    return flat


def _cut_plain(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a safe boundary, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and not _can_cut_before(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def matched_terms(alert: Alert) -> list[str]:
    """One ``name (kind; as "variant")`` entry per term, in first-seen order.

    The kind tells a person from a place of the same name (a "Rutba" or a "Tikriti");
    the variants show how the outlet spelled it when that differs from the watchlist name.
    """
    seen: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for m in alert.matches:
        names.setdefault(m.term, clean_inline(m.term_name or m.term).strip() or "?")
        kinds.setdefault(m.term, clean_inline(m.kind or "").strip())
        seen.setdefault(m.term, set()).add(clean_inline(m.matched_text).strip())
    out = []
    for term, name in names.items():
        variants = sorted(v for v in seen[term] if v and v.casefold() != name.casefold())
        notes = [kinds[term]] if kinds[term] else []
        if variants:
            notes.append("as " + ", ".join(f'"{_cut_plain(v, 100)}"' for v in variants[:3]))
        out.append(f"{name} ({'; '.join(notes)})" if notes else name)
    return out


# -- outlet, time, link ---------------------------------------------------------------------


def outlet_name(alert: Alert) -> str:
    """The outlet as analysts know it (``source_title``), else the source's config key.

    Both are untrusted (a feed names itself); the result is cleaned plain text.
    """
    item = alert.item
    title = clean_inline(field_to_text(item.source_title)).strip()
    return title or clean_inline(item.source).strip()


@dataclass(frozen=True)
class Published:
    """``item.published`` read for display.

    ``text`` is readable UTC (``2025-02-14 10:00 UTC``), a date (``2025-02-14``), a month
    (``2025-02``), the raw value cleaned when it is not a date, or ``unknown``. ``epoch``
    and ``slack_format`` are set only when the value is a real date or time: Slack then
    renders it in each reader's time zone.
    """

    text: str
    epoch: int | None = None
    slack_format: str = ""


def read_published(value: str | None) -> Published:
    """Parse an ISO-8601 (or RFC 822, GDELT compact) ``published`` value, partial or not.

    A date without a time is pinned to 12:00 UTC, so ``{date_short_pretty}`` names the same
    day for every reader between UTC−11 and UTC+11 (midnight would show the day before to
    everyone in the Americas). Values out of Slack's range (before 1970) stay plain text.
    """
    raw = clean_inline(value or "").strip()
    if not raw:
        return Published("unknown")
    iso = normalise_date(raw)
    if iso is None:
        return Published(raw)
    try:
        if _ISO_MONTH.fullmatch(iso):
            if len(iso) == 7 and not 1 <= int(iso[5:]) <= 12:
                return Published(raw)
            return Published(iso)
        if _ISO_DAY.fullmatch(iso) or (_ISO_STAMP.fullmatch(iso) and not _HAS_TIME.search(raw)):
            day = datetime.strptime(iso[:10], "%Y-%m-%d").replace(hour=12, tzinfo=UTC)
            return _dated(day.strftime("%Y-%m-%d"), day, "{date_short_pretty}")
        if _ISO_STAMP.fullmatch(iso):
            moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            text = moment.strftime("%Y-%m-%d %H:%M UTC")
            return _dated(text, moment, "{date_short_pretty} at {time}")
    except (ValueError, OverflowError):
        pass
    return Published(raw)


def _dated(text: str, moment: datetime, slack_format: str) -> Published:
    epoch = int(moment.timestamp())
    return Published(text, epoch, slack_format) if epoch >= 0 else Published(text)


def published_mrkdwn(published: Published) -> str:
    """The template's ``<!date^…>`` token, the only ``<!…>`` this module writes.

    Every part is made here from a parsed datetime (digits, the fixed format, a fallback of
    digits, ``-``, ``:`` and ``UTC``); feed text only ever reaches the plain-text branch,
    cleaned, neutralised and escaped.
    """
    if published.epoch is None:
        return fit_plain(published.text, DATE_LIMIT)
    fallback = slack_escape(published.text)
    return f"<!date^{published.epoch}^{published.slack_format}|{fallback}>"


def item_link(alert: Alert) -> str | None:
    """The story's link for ``<url|label>`` without tracking parameters or fragment.

    The raw URL must pass ``safe_link`` first, so canonicalising (which re-encodes the
    query) can never turn an unsafe link into an accepted one.
    """
    url = alert.item.url
    raw = safe_link(url)
    if raw is None:
        return None
    return safe_link(canonical_url(url)) or raw


# -- Block Kit ------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _fit_parts(parts: Sequence[str], limit: int) -> list[str]:
    """Each plain part made inert and cut so together they fit ``limit`` UTF-16 units:
    short parts stay whole and the long ones share what is left, so a huge watchlist name
    cannot push the rule name out of a header (or the other way round)."""
    parts = [p[: limit + 1] for p in parts]  # the rest could never fit (see ``fit_plain``)
    out = [inert(p) for p in parts]
    left = limit
    order = sorted(range(len(parts)), key=lambda i: slack_len(out[i]))
    for n, i in enumerate(order):
        share = left // (len(parts) - n)
        if slack_len(out[i]) > share:
            out[i] = fit_plain(parts[i], share)
        left -= slack_len(out[i])
    return out


def _names(alert: Alert) -> list[str]:
    """Watchlist and, when one fired, rule name: cleaned but untrusted (analysts' YAML)."""
    names = [clean_inline(alert.watchlist).strip()]
    if alert.rule is not None:
        names.append(clean_inline(alert.rule).strip() or "(unnamed)")
    return names


def _header_text(alert: Alert) -> str:
    mark = SEVERITY_MARK.get(alert.severity, "")
    prefix = inert(f"{mark} {alert.severity.upper()} · ".lstrip())
    fixed = slack_len(prefix) + (slack_len(" · rule: ") if alert.rule is not None else 0)
    parts = _fit_parts(_names(alert), HEADER_LIMIT - fixed)
    return (prefix + " · rule: ".join(parts)).strip()


def _title_line(alert: Alert) -> str:
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    label = fit_plain(title, TITLE_LIMIT)
    link = item_link(alert)
    return f"*<{link}|{label}>*" if link else f"*{label}*"


def _meta_line(alert: Alert) -> str:
    outlet = fit_plain(outlet_name(alert) or "unknown source", SOURCE_LIMIT)
    published = published_mrkdwn(read_published(alert.item.published))
    return f"Source: {outlet} · Published: {published}"


def _passages_text(alert: Alert) -> str:
    """All passages in one section of at most ``SECTION_LIMIT`` units after escaping.

    When they do not fit whole, the later (shorter) passages get an equal share each and
    the first passage, where the alert fired, gets the rest.
    """
    passages = passage_segments(alert)
    if not passages:
        return "(no text)"
    full = [render_segments(p, SECTION_LIMIT) for p in passages]
    if slack_len("\n".join(full)) <= SECTION_LIMIT:
        return "\n".join(full)
    budget = SECTION_LIMIT - (len(passages) - 1)
    share = budget // len(passages)
    rest = [
        f if slack_len(f) <= share else render_segments(p, share)
        for p, f in zip(passages[1:], full[1:], strict=True)
    ]
    first_budget = budget - sum(slack_len(r) for r in rest)
    first = (
        full[0]
        if slack_len(full[0]) <= first_budget
        else (render_segments(passages[0], first_budget))
    )
    return "\n".join([first, *rest])


def build_slack_message(alert: Alert) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}`` for ``chat.postMessage`` or a webhook.

    Blocks: header (severity, watchlist, rule; ``block_id`` is the alert id, so a
    webhook-path checker and a human with the message JSON can tie a post to its alert),
    the title linked to the cleaned URL, a context line (outlet, publication time in the
    reader's zone), the passages where the alert fired with matches in bold, and the
    matched terms with their kinds. Every untrusted string passes through the module
    policy; the result respects Slack's size limits for any input.
    """
    terms_text = render_segments(
        [("Matched: " + " · ".join(matched_terms(alert)), False)], SECTION_LIMIT
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "block_id": alert.id[:BLOCK_ID_LIMIT],
            "text": {"type": "plain_text", "text": _header_text(alert), "emoji": True},
        },
        {"type": "section", "text": _mrkdwn(_title_line(alert))},
        {"type": "context", "elements": [_mrkdwn(_meta_line(alert))]},
        {"type": "section", "text": _mrkdwn(_passages_text(alert))},
        {"type": "context", "elements": [_mrkdwn(terms_text)]},
    ]
    return {"text": fallback_text(alert), "blocks": blocks[:BLOCK_LIMIT]}


def fallback_text(alert: Alert) -> str:
    """The notification / screen-reader text: severity, watchlist, rule, title.

    Inert and far below 40,000: names share ``FALLBACK_NAMES_LIMIT``, the title ≤ 300.
    """
    parts = _fit_parts(_names(alert), FALLBACK_NAMES_LIMIT)
    names = parts[0] + (f" (rule: {parts[1]})" if len(parts) > 1 else "")
    head = f"[{inert(alert.severity.upper())}] {names}: "
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    return head + fit_plain(title, min(TITLE_LIMIT, TEXT_LIMIT - slack_len(head)))


# -- console --------------------------------------------------------------------------------


def format_console(alert: Alert) -> str:
    """A plain-text block for a terminal with the same facts as the Slack message; matches
    are marked ``[[like this]]`` and each passage has its own line.

    Control characters (terminal escape sequences included) are stripped from every field.
    """
    item = alert.item
    title = clean_inline(field_to_text(item.title)).strip() or "(untitled)"
    passages = [
        "".join(f"[[{t}]]" if bold else t for t, bold in segments).strip()
        for segments in passage_segments(alert)
    ] or ["(no text)"]
    link = item_link(alert)
    names = [_clip(n, SOURCE_LIMIT) for n in _names(alert)]
    lines = [
        f"[{alert.severity.upper()}] {names[0]}  (alert {alert.id})",
        f"  rule:      {names[1] if len(names) > 1 else '(none: any term alerts)'}",
        f"  title:     {_clip(title, TITLE_LIMIT)}",
        f"  url:       {link.replace('&amp;', '&') if link else '(no usable link)'}",
        f"  source:    {_clip(outlet_name(alert) or 'unknown source', SOURCE_LIMIT)}",
        f"  published: {_clip(read_published(item.published).text, DATE_LIMIT)}",
        f"  snippet:   {passages[0]}",
        *(f"             {p}" for p in passages[1:]),
        f"  matched:   {_clip(' · '.join(matched_terms(alert)), 1_000)}",
    ]
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
