"""Quality on the labelled dev set (../shared/data/matching-dev): item x entity precision/recall.

The measure is the dev set README's: a pair (item, entity) is predicted when ``find`` reports
at least one match of that entity's term; it is true when the entity is in the item's labels.
The articles are others' text, so they are read from the shared folder at test time, never
copied here. Run ``pytest -s tests/test_matching_dev.py`` to see the per-entity table.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.engine.matcher import compile_watchlists
from monitor.engine.watchlist import load_watchlist
from monitor.models import Item, Watchlist

_DEFAULT_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "matching-dev"
DEV = Path(os.environ.get("MONITOR_MATCHING_DEV") or _DEFAULT_DEV)

MIN_PRECISION = 0.98  # issue 7 targets ("quality stays where it is")
MIN_RECALL = 0.97
# Without the opt-in, a bare "Assad" in a headline is not taken for Bashar al-Assad: recall
# falls by design (22 such item x entity pairs in this set), precision must not.
MIN_RECALL_STRICT = 0.93


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def headline_figures(wl: Watchlist) -> Watchlist:
    """The dev watchlist as an analyst configures a list of public figures: every person's
    bare family name may stand alone (``short: true`` for the whole watchlist). The set's
    labels count a headline's "Assad" as Bashar al-Assad, which only that opt-in allows."""
    terms = tuple(replace(t, short=True) if t.kind == "person" else t for t in wl.terms)
    return replace(wl, terms=terms)


def evaluate(dev: Path, *, short: bool = True
             ) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Per-entity true positives, false positives and false negatives."""
    wl = load_watchlist(dev / "watchlist.yaml")
    matcher = compile_watchlists([headline_figures(wl) if short else wl])
    labels = {row["id"]: set(row["entities"]) for row in _read_jsonl(dev / "labels.jsonl")}
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for raw in _read_jsonl(dev / "items.jsonl"):
        item = Item.from_dict(raw)
        predicted = {m.term for m in matcher.find(item)}
        truth = labels[item.id]
        tp.update(predicted & truth)
        fp.update(predicted - truth)
        fn.update(truth - predicted)
    return tp, fp, fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def _require_dev() -> None:
    if not (DEV / "items.jsonl").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"matching dev set missing at {DEV}; CI must provide ../shared/data")
        pytest.skip(f"matching dev set not found at {DEV} (set MONITOR_MATCHING_DEV)")


def test_dev_set_without_the_opt_in_keeps_precision() -> None:
    _require_dev()
    tp, fp, fn = evaluate(DEV, short=False)
    t, f, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"\nstrict (no short: true): precision {_ratio(t, t + f):.3f} "
          f"recall {_ratio(t, t + n):.3f}  tp={t} fp={f} fn={n}")
    assert _ratio(t, t + f) >= MIN_PRECISION
    assert _ratio(t, t + n) >= MIN_RECALL_STRICT


def test_dev_set_precision_and_recall() -> None:
    _require_dev()
    tp, fp, fn = evaluate(DEV)
    print(f"\n{'entity':40s} {'P':>6s} {'R':>6s}   tp  fp  fn")
    for e in sorted(set(tp) | set(fp) | set(fn)):
        print(f"{e:40s} {_ratio(tp[e], tp[e] + fp[e]):6.3f} {_ratio(tp[e], tp[e] + fn[e]):6.3f}"
              f"  {tp[e]:3d} {fp[e]:3d} {fn[e]:3d}")
    t, f, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision, recall = _ratio(t, t + f), _ratio(t, t + n)
    print(f"{'OVERALL':40s} {precision:6.3f} {recall:6.3f}  {t:3d} {f:3d} {n:3d}")
    assert precision >= MIN_PRECISION, f"precision {precision:.3f} < {MIN_PRECISION}"
    assert recall >= MIN_RECALL, f"recall {recall:.3f} < {MIN_RECALL}"
