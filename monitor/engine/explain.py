"""Human-readable explanations of matches for ``monitor match --format text``.

Each item prints a header (id, source, url), then every field that has matches with the
matched spans highlighted — ANSI bold yellow when ``color`` is true, ``[[...]]`` otherwise —
and one line per match: term, surface text, field, offsets into the original field, score.
Long fields are shown as snippets around the matches so a 3,000-word article stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.models import MATCH_FIELDS, Item, Match

_ON, _OFF = "\x1b[1;33m", "\x1b[0m"
CONTEXT_CHARS = 80  # characters shown either side of a match in long fields
SHORT_FIELD = 400  # fields up to this length are shown whole


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


def _snippets(text: str, spans: Sequence[tuple[int, int]], color: bool) -> str:
    if len(text) <= SHORT_FIELD:
        return highlight(text, spans, color)
    windows = _merge([(max(0, s - CONTEXT_CHARS), min(len(text), e + CONTEXT_CHARS))
                      for s, e in spans])
    parts = []
    for ws, we in windows:
        inner = [(s - ws, e - ws) for s, e in spans if s >= ws and e <= we]
        body = highlight(text[ws:we], inner, color).replace("\n", " ")
        parts.append(("…" if ws > 0 else "") + body + ("…" if we < len(text) else ""))
    return "\n    ".join(parts)


def render_text(item: Item, matches: Sequence[Match], color: bool) -> str:
    """The text report of one item and its matches (empty matches: header only)."""
    lines = [f"== {item.id}  [{item.source}]  {item.url}".rstrip()]
    for field in MATCH_FIELDS:
        mine = [m for m in matches if m.field == field]
        if not mine:
            continue
        text = item.field_text(field)
        lines.append(f"  {field}: {_snippets(text, [(m.start, m.end) for m in mine], color)}")
    for m in sorted(matches, key=lambda m: (MATCH_FIELDS.index(m.field), m.start)):
        rule = f" rule={m.rule}" if m.rule else ""
        lines.append(f"  - {m.watchlist}/{m.term} ({m.term_name}): {m.matched_text!r} "
                     f"{m.field}[{m.start}:{m.end}] score={m.score:.1f}{rule}")
    return "\n".join(lines)
