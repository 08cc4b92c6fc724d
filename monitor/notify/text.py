"""Untrusted text to clean plain text, for any destination (RELIABILITY.md B5, X01–X03).

Untrusted text is every feed field (titles, summaries, source names, matched text) and also
the analysts' own YAML (watchlist, rule and term names, kinds) and the outlet's display name.
Slack, the console and ``monitor match`` explanations all read it through this module first,
so a hostile field cannot fake a separate message, reverse the reading order, hide
characters or repaint a terminal:

1. **HTML to text first** (``html_to_text``) when a field looks like HTML, so an encoded
   ``&lt;!here&gt;`` is decoded once, here, and never again by Slack.
2. **Clean** (``clean_text``): C0/C1 controls (incl. NUL and ESC), lone surrogates, bidi
   marks/overrides/isolates and zero-width characters are removed; whitespace is collapsed and
   runs of newlines cut to at most three. ZWNJ/ZWJ survive only between two visible
   characters, where Persian spelling and emoji sequences need them.

The result is plain text, not yet safe inside any markup: ``monitor.notify.mrkdwn`` takes the
last steps for Slack. Text is cut (``cut_plain``, ``can_cut_before``) never after a ZWJ or
before a combining mark, so a cut never splits what a reader sees as one character.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

ELLIPSIS = "…"

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


def html_text(fragment: str) -> str:
    """The text of an HTML fragment (entities decoded, blocks as newlines), not yet cleaned.

    ``html_to_text`` cleans a whole field; ``passages`` converts a field piece by piece.
    """
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def html_to_text(markup: str) -> str:
    """Tags dropped, entities decoded (once), block elements turned into newlines, cleaned.

    Comments, declarations and CDATA-like sections are dropped, never passed through.
    """
    return clean_text(html_text(markup))


def looks_like_html(text: str) -> bool:
    """True when ``text`` has a tag or an entity, i.e. needs ``html_to_text`` to be read."""
    return bool(_LOOKS_HTML.search(text))


def field_to_text(text: str) -> str:
    """An item field as plain text: HTML is converted, plain text only cleaned."""
    return html_to_text(text) if looks_like_html(text) else clean_text(text)


def can_cut_before(text: str, i: int) -> bool:
    """Whether ``text`` may be cut before index ``i``: not after a ZWJ, not before a joiner,
    variation selector, skin-tone modifier or combining mark."""
    if i <= 0 or i >= len(text):
        return True
    prev, nxt = text[i - 1], text[i]
    if prev == "\u200d" or nxt in "\u200d\ufe0e\ufe0f" or 0x1F3FB <= ord(nxt) <= 0x1F3FF:
        return False
    return unicodedata.category(nxt) not in ("Mn", "Me", "Mc")


def cut_plain(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a safe boundary, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and not can_cut_before(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS
