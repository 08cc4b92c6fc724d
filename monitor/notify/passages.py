"""Which passages of an item to quote, with every match marked.

An alert shows the passage where it fired: for a rule, the span holding its matches
together, not merely the first mention; without a rule, the window around the first
mention. Then up to two short passages for terms not shown yet, so a reader sees each
matched term in context where space allows.

A passage is one or more windows of one field's ORIGINAL text (offsets as the matcher gave
them, into text that may be HTML). Windows are chosen on the original text and converted
piece by piece (text between matches, then each match), so the offsets stay valid and every
matched span inside a window is marked. Window edges fall on word boundaries and never
inside a tag or an entity, so each converted piece reads cleanly.

The result is ``(text, is_match)`` segments of clean plain text, for any destination: each
renderer marks matches its own way (Slack bold, console ``[[…]]``) and escapes and cuts for
its own limits.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

from monitor.models import MATCH_FIELDS, Alert, Match
from monitor.notify.text import (
    ELLIPSIS,
    clean_inline,
    cut_plain,
    field_to_text,
    html_text,
    looks_like_html,
)

SNIPPET_WINDOW = 300  # characters of the original field around the matches
EXTRA_WINDOW = 160  # a further passage for a term not yet shown, or one excerpt of a long one
PASSAGE_SPAN_LIMIT = 1_000  # a rule's first-to-last span shown whole up to this many characters
MAX_PASSAGES = 3  # passages in the one section (the first where the alert fired)
MIN_CONTEXT = 40  # characters of context kept on each side of a long span
SNAP_REACH = 30  # how far a window edge moves to reach a word boundary
TAG_REACH = 2_000  # how far back a window edge looks for the tag it may sit in

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
    return clean_inline(html_text(raw) if is_html else raw)


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
            out.append([(cut_plain(plain, SNIPPET_WINDOW), False)])
    return out


def snippet_segments(alert: Alert) -> list[tuple[str, bool]]:
    """All passages as one ``(text, is_match)`` list, passages separated by a newline."""
    flat: list[tuple[str, bool]] = []
    for i, segments in enumerate(passage_segments(alert)):
        flat.extend([("\n", False)] if i else [])
        flat.extend(segments)
    return flat
