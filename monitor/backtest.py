"""Replay stored items through a candidate watchlist before it goes live.

For each watchlist in the candidate files, the items seen in the window are matched by the
candidate and by the version currently in force (the same watchlist name under the
config's rules paths), and the difference is reported per watchlist and per term: items
the candidate would gain, items it would lose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.engine.matcher import compile_watchlists
from monitor.models import Item, Watchlist


@dataclass
class WatchlistDiff:
    name: str
    items: int
    candidate: set[str] = field(default_factory=set)  # item ids that would alert
    current: set[str] = field(default_factory=set)
    candidate_terms: Counter[str] = field(default_factory=Counter)  # term id -> items
    current_terms: Counter[str] = field(default_factory=Counter)
    titles: dict[str, str] = field(default_factory=dict)

    @property
    def gained(self) -> list[str]:
        return sorted(self.candidate - self.current)

    @property
    def lost(self) -> list[str]:
        return sorted(self.current - self.candidate)


def backtest(candidate: Sequence[Watchlist], current: Sequence[Watchlist],
             items: Sequence[Item]) -> list[WatchlistDiff]:
    live = {w.name: w for w in current}
    diffs = []
    for wl in candidate:
        diff = WatchlistDiff(wl.name, len(items))
        new = compile_watchlists([wl])
        old = compile_watchlists([live[wl.name]]) if wl.name in live else None
        for item in items:
            diff.titles[item.id] = item.title
            _tally(new.match(item), item, diff.candidate, diff.candidate_terms)
            if old is not None:
                _tally(old.match(item), item, diff.current, diff.current_terms)
        diffs.append(diff)
    return diffs


def _tally(hits: Sequence[object], item: Item, alerted: set[str], terms: Counter[str]) -> None:
    if not hits:
        return
    alerted.add(item.id)
    ids = {m.term for hit in hits for m in hit.matches}  # type: ignore[attr-defined]
    terms.update(ids)


def render(diffs: Sequence[WatchlistDiff], window: str) -> str:
    lines = []
    for d in diffs:
        lines.append(f"{d.name}: {d.items} item(s) seen in the last {window}; candidate "
                     f"alerts {len(d.candidate)}, current alerts {len(d.current)} "
                     f"(+{len(d.gained)} gained, -{len(d.lost)} lost)")
        terms = sorted(set(d.candidate_terms) | set(d.current_terms))
        for term in terms:
            new, old = d.candidate_terms[term], d.current_terms[term]
            mark = "" if new == old else f"  ({new - old:+d})"
            lines.append(f"  term {term}: candidate {new}, current {old}{mark}")
        for label, ids in (("gained", d.gained), ("lost", d.lost)):
            for item_id in ids[:50]:
                lines.append(f"  {label}: {item_id}  {d.titles.get(item_id, '')[:100]}")
            if len(ids) > 50:
                lines.append(f"  {label}: … and {len(ids) - 50} more")
    return "\n".join(lines)
