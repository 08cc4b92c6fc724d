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
   ``<url|label>`` link. Links are built only from ``safe_link`` URLs.

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
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.models import Alert, Match

TEXT_LIMIT = 40_000
BLOCK_LIMIT = 50
SECTION_LIMIT = 3_000
HEADER_LIMIT = 150
BLOCK_ID_LIMIT = 255
URL_LIMIT = 2_000
TITLE_LIMIT = 300  # escaped label length inside the title link
SNIPPET_WINDOW = 300  # characters of the original field around the matches
SOURCE_LIMIT = 200
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
    """
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


# -- snippets around matches ----------------------------------------------------------------


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


def choose_field(alert: Alert) -> str:
    """The field to quote: the non-title field with most matches, else the title."""
    counts: dict[str, int] = {}
    for m in alert.matches:
        if _valid_spans(alert.item.field_text(m.field), [m]):
            counts[m.field] = counts.get(m.field, 0) + 1
    body = {f: n for f, n in counts.items() if f != "title"}
    if body:
        return max(body, key=lambda f: (body[f], f == "summary"))
    return "title" if counts else ""


def _window(text: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    first_start, first_end = spans[0]
    start = max(0, first_start - SNIPPET_WINDOW // 3)
    end = min(len(text), max(start + SNIPPET_WINDOW, min(first_end, start + 2 * SNIPPET_WINDOW)))
    if start > 0:
        space = text.find(" ", start, first_start)
        start = space + 1 if space != -1 and space - start < 30 else start
    if end < len(text):
        space = text.rfind(" ", max(first_end, end - 30), end)
        end = space if space > first_end else end
    return start, end


_PARTIAL_TAG_HEAD = re.compile(r"^[^<]*?>")
_PARTIAL_TAG_TAIL = re.compile(r"<[^>]*$")
_PARTIAL_ENTITY_TAIL = re.compile(r"&#?[A-Za-z0-9]{0,8}$")


def _fragment(raw: str, is_html: bool, head: bool, tail: bool) -> str:
    """One piece of the window as inline text; trims tags/entities cut by the window edges."""
    if is_html:
        if head:
            raw = _PARTIAL_TAG_HEAD.sub("", raw, count=1) if "<" not in raw[:1] else raw
        if tail:
            raw = _PARTIAL_ENTITY_TAIL.sub("", _PARTIAL_TAG_TAIL.sub("", raw))
        raw = _html_text(raw)
    return clean_inline(raw)


def snippet_segments(alert: Alert) -> list[tuple[str, bool]]:
    """``(text, is_match)`` pieces of ~300 characters of the matched field around the
    matches. Offsets index the ORIGINAL field text; HTML is converted piece by piece so the
    offsets stay valid, and overlapping matches are merged."""
    field = choose_field(alert)
    text = alert.item.field_text(field) if field else ""
    spans = _valid_spans(text, [m for m in alert.matches if m.field == field])
    if not spans:
        body = alert.item.summary or alert.item.content
        plain = clean_inline(field_to_text(body))
        return [(plain[:SNIPPET_WINDOW] + (ELLIPSIS if len(plain) > SNIPPET_WINDOW else ""), False)]
    start, end = _window(text, spans)
    is_html = looks_like_html(text)
    pieces: list[tuple[str, bool]] = [(ELLIPSIS, False)] if start > 0 else []
    cursor = start
    for s, e in spans:
        if s < cursor or e > end:
            continue
        head = cursor == start and start > 0
        pieces.append((_fragment(text[cursor:s], is_html, head, False), False))
        pieces.append((_fragment(text[s:e], is_html, False, False), True))
        cursor = e
    head, tail = cursor == start and start > 0, end < len(text)
    pieces.append((_fragment(text[cursor:end], is_html, head, tail), False))
    if end < len(text):
        pieces.append((ELLIPSIS, False))
    pieces = [(t, bold) for t, bold in pieces if t]
    if pieces:
        pieces[0] = (pieces[0][0].lstrip(), pieces[0][1])
        pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
    return [(t, bold) for t, bold in pieces if t]


def matched_terms(alert: Alert) -> list[str]:
    """One ``name ("as written")`` entry per term, in first-seen order."""
    seen: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for m in alert.matches:
        names.setdefault(m.term, m.term_name or m.term)
        seen.setdefault(m.term, set()).add(clean_inline(m.matched_text).strip())
    out = []
    for term, name in names.items():
        variants = sorted(v for v in seen[term] if v and v.casefold() != name.casefold())
        out.append(f"{name} ({', '.join(variants[:3])})" if variants else name)
    return out


# -- Block Kit ------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _title_line(alert: Alert) -> str:
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    label = fit_plain(title, TITLE_LIMIT)
    link = safe_link(alert.item.url)
    return f"*<{link}|{label}>*" if link else f"*{label}*"


def _meta_line(alert: Alert) -> str:
    source = fit_plain(clean_inline(alert.item.source).strip() or "unknown source", SOURCE_LIMIT)
    published = fit_plain(clean_inline(alert.item.published or "").strip() or "unknown", 100)
    return f"Source: {source} · Published: {published}"


def _header_text(alert: Alert) -> str:
    mark = SEVERITY_MARK.get(alert.severity, "")
    watchlist = clean_inline(alert.watchlist).strip()
    label = f"{mark} {alert.severity.upper()} · {watchlist}".strip()
    return fit_plain(label, HEADER_LIMIT)


def build_slack_message(alert: Alert) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}`` for ``chat.postMessage`` or a webhook.

    The first block's ``block_id`` is the alert id, so a webhook-path checker (and a human
    with the message JSON) can tie a post back to its alert. Every untrusted string passes
    through the module policy; the result respects Slack's size limits for any input.
    """
    terms = matched_terms(alert)
    snippet = render_segments(snippet_segments(alert), SECTION_LIMIT)
    terms_text = render_segments([("Matched: " + "; ".join(terms), False)], SECTION_LIMIT)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "block_id": alert.id[:BLOCK_ID_LIMIT],
            "text": {"type": "plain_text", "text": _header_text(alert), "emoji": True},
        },
        {"type": "section", "text": _mrkdwn(_title_line(alert))},
        {"type": "context", "elements": [_mrkdwn(_meta_line(alert))]},
        {"type": "section", "text": _mrkdwn(snippet)},
        {"type": "context", "elements": [_mrkdwn(terms_text)]},
    ]
    return {"text": fallback_text(alert), "blocks": blocks[:BLOCK_LIMIT]}


def fallback_text(alert: Alert) -> str:
    """The notification / screen-reader text: severity, watchlist, title. Inert, ≤ 40,000."""
    title = clean_inline(field_to_text(alert.item.title)).strip() or "(untitled)"
    head = inert(f"[{alert.severity.upper()}] {clean_inline(alert.watchlist).strip()}: ")
    return head + fit_plain(title, min(TITLE_LIMIT, TEXT_LIMIT - slack_len(head)))


# -- console --------------------------------------------------------------------------------


def format_console(alert: Alert) -> str:
    """A plain-text block for a terminal; matches are marked ``[[like this]]``.

    Control characters (terminal escape sequences included) are stripped from every field.
    """
    item = alert.item
    title = clean_inline(field_to_text(item.title)).strip() or "(untitled)"
    snippet = "".join(f"[[{t}]]" if bold else t for t, bold in snippet_segments(alert))
    link = safe_link(item.url)
    lines = [
        f"[{alert.severity.upper()}] {clean_inline(alert.watchlist).strip()}  (alert {alert.id})",
        f"  title:     {_clip(title, TITLE_LIMIT)}",
        f"  url:       {link.replace('&amp;', '&') if link else '(no usable link)'}",
        f"  source:    {_clip(clean_inline(item.source).strip(), SOURCE_LIMIT)}",
        f"  published: {_clip(clean_inline(item.published or '').strip() or 'unknown', 100)}",
        f"  snippet:   {snippet.strip()}",
        f"  matched:   {_clip('; '.join(matched_terms(alert)), 1_000)}",
    ]
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
