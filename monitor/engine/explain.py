"""Human-readable explanations of matches for ``monitor match --format text``.

Each item prints a header (id, source, url), then every field that has matches with the
matched spans highlighted — ANSI bold yellow when ``color`` is true, ``[[...]]`` otherwise —
and one line per match: term, surface text, field, offsets into the original field, score.
Long fields are shown as snippets around the matches so a 3,000-word article stays readable.

Everything printed from an item is plain text on one line (``plain_field``): feed fields are
often HTML, and a terminal or a log must see neither tags, nor entities, nor the control
characters (ESC above all) that a hostile feed could use to repaint the screen. The text is
converted with the Slack formatter's own rules (``notify.text.field_to_text``: tags dropped,
entities decoded once, controls removed), so both outputs read the same. The matcher's
offsets index the *original* field, so the spans are carried through the conversion as
private-use marks rather than recomputed, and the offsets printed per match stay the original
ones (``--format jsonl`` gives the same).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from monitor.models import MATCH_FIELDS, Item, Match
from monitor.notify.text import clean_inline, field_to_text, looks_like_html

_ON, _OFF = "\x1b[1;33m", "\x1b[0m"
CONTEXT_CHARS = 80  # characters shown either side of a match in long fields
SHORT_FIELD = 400  # fields up to this length are shown whole

# Span marks carried through HTML-to-text conversion: private-use characters, which
# ``clean_text`` keeps and HTML parsing passes through as text. Any already in the input are
# replaced (same length, so offsets hold) before marking.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKS = re.compile(f"[{_OPEN}{_CLOSE}]")
# A tag or an entity: a span edge must not fall inside one, or the mark would break it and
# let markup through as text.
_MARKUP = re.compile(
    r"</?[A-Za-z!?][^<>]*>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def highlight(text: str, spans: Sequence[tuple[int, int]], color: bool) -> str:
    """``text`` with each (start, end) span marked; overlapping spans are merged."""
    on, off = (_ON, _OFF) if color else ("[[", "]]")
    out: list[str] = []
    pos = 0
    for start, end in _merge(spans):
        out.append(text[pos:start])
        out.append(f"{on}{text[start:end]}{off}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def plain_text(text: str) -> str:
    """One line of plain text: HTML converted, entities decoded once, controls removed."""
    return clean_inline(field_to_text(text)).strip()


def plain_field(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``plain_text(text)`` and the (start, end) spans moved onto it.

    Spans outside ``text`` are dropped; a span whose text vanishes in conversion (inside a
    ``<script>``, say) is dropped too.
    """
    valid = _merge([(s, e) for s, e in spans if 0 <= s < e <= len(text)])
    if looks_like_html(text):
        valid = _merge(_outside_markup(text, valid))
    safe = _MARKS.sub("\ufffd", text)
    parts: list[str] = []
    pos = 0
    for start, end in valid:
        parts += [safe[pos:start], _OPEN, safe[start:end], _CLOSE]
        pos = end
    parts.append(safe[pos:])
    marked = plain_text("".join(parts))
    out: list[str] = []
    moved: list[tuple[int, int]] = []
    length, opened, last = 0, -1, 0
    for m in _MARKS.finditer(marked):
        piece = marked[last:m.start()]
        out.append(piece)
        length += len(piece)
        last = m.end()
        if m.group() == _OPEN:
            opened = length
        elif opened >= 0:
            if length > opened:
                moved.append((opened, length))
            opened = -1
    out.append(marked[last:])
    return "".join(out), _trim(moved, "".join(out))


def _outside_markup(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans with edges moved out of tags and entities: a start inside a tag moves past it,
    an end inside a tag moves before it; an edge inside an entity takes the whole entity."""
    pieces = [(m.start(), m.end(), m.group().startswith("<")) for m in _MARKUP.finditer(text)]
    starts = [p[0] for p in pieces]

    def inside(pos: int) -> tuple[int, int, bool] | None:
        i = bisect.bisect_right(starts, pos) - 1
        if i >= 0 and pieces[i][0] < pos < pieces[i][1]:
            return pieces[i]
        return None

    out = []
    for start, end in spans:
        if (p := inside(start)) is not None:
            start = p[1] if p[2] else p[0]
        if (p := inside(end)) is not None:
            end = p[0] if p[2] else p[1]
        if start < end:
            out.append((start, end))
    return out


def _trim(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Spans without the spaces conversion may have left at their edges."""
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            out.append((start, end))
    return out


def _snippets(text: str, spans: Sequence[tuple[int, int]], color: bool) -> str:
    if len(text) <= SHORT_FIELD:
        return highlight(text, spans, color)
    windows = _merge([(max(0, s - CONTEXT_CHARS), min(len(text), e + CONTEXT_CHARS))
                      for s, e in spans])
    parts = []
    for ws, we in windows:
        inner = [(s - ws, e - ws) for s, e in spans if s >= ws and e <= we]
        body = highlight(text[ws:we], inner, color)
        parts.append(("…" if ws > 0 else "") + body + ("…" if we < len(text) else ""))
    return "\n    ".join(parts)


def render_text(item: Item, matches: Sequence[Match], color: bool) -> str:
    """The text report of one item and its matches (empty matches: header only).

    Item text is shown as plain text (see the module docstring); the offsets printed per
    match are those of the original field, as in ``--format jsonl``.
    """
    # Identifiers are shown as given (an id may legitimately contain "<"), controls removed.
    source = f"  [{clean_inline(item.source)}]" if item.source else ""
    lines = [f"== {clean_inline(item.id)}{source}  {clean_inline(item.url)}".rstrip()]
    for field in MATCH_FIELDS:
        mine = [m for m in matches if m.field == field]
        if not mine:
            continue
        text, spans = plain_field(item.field_text(field), [(m.start, m.end) for m in mine])
        lines.append(f"  {field}: {_snippets(text, spans, color)}")
    for m in sorted(matches, key=lambda m: (MATCH_FIELDS.index(m.field), m.start)):
        rule = f" rule={m.rule}" if m.rule else ""
        lines.append(f"  - {m.watchlist}/{m.term} ({m.term_name}): "
                     f"{plain_text(m.matched_text)!r} "
                     f"{m.field}[{m.start}:{m.end}] score={m.score:.1f}{rule}")
    return "\n".join(lines)
