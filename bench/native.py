"""Compiled engine against the pure-Python engine, on the real-text benchmark's data.

    .venv/bin/python bench/native.py [--terms 1000,10000,50000] [--rounds 5]

The engine is chosen when ``monitor.engine`` is imported, so each measurement is a child
process: it loads the benchmark's real names, places and news articles
(``bench/match_real.py``) and times ``match_real.run_engine``: a matcher of N terms built,
every word cache emptied, a cold pass over the 116 articles (every word new), then a warm
one. Children of the two
engines alternate, round after round, so that a host whose speed drifts over minutes
weighs on both alike; the figures are medians over the rounds, and the ratio is taken
between the medians. The alerts of the two engines (each term's first match in each
article, with its span and score) are compared on every child: a difference is an error,
not a figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(n: int, seed: int) -> dict[str, Any]:
    """One engine's figures for N terms, timed as ``match_real.run_engine`` times them."""
    sys.path.insert(0, str(HERE))
    import match_real as mr

    from monitor.engine import native

    pools, _ = mr.load_pools()
    articles, _ = mr.load_articles()
    items = [a.item() for a in articles]
    specs = mr.make_terms(pools, n, seed)
    mr.warm_up(specs, items)  # the word lists, loaded once per process, outside the timing
    run = mr.run_engine([s.term for s in specs[:n]], items)
    digest = hashlib.sha256(json.dumps(
        [[(t, m.matched_text, m.field, m.start, m.end, m.score) for t, m in sorted(a.items())]
         for a in run.alerts], ensure_ascii=False).encode()).hexdigest()
    return {"engine": native.active(), "n": n, "articles": len(items), "build": run.build,
            "cold": run.secs, "warm": run.warm_secs, "matches": digest,
            "count": sum(len(a) for a in run.alerts)}


def spawn(n: int, seed: int, engine: str) -> dict[str, Any]:
    env = dict(os.environ, MONITOR_ENGINE=engine)
    done = subprocess.run([sys.executable, __file__, "--child", str(n), "--seed", str(seed)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child ({engine}, {n} terms) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terms", default="1000,10000,50000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seed)))
        return
    sizes = [int(x) for x in args.terms.split(",")]
    print("Compiled (mypyc) against pure-Python engine (bench/native.py)")
    print(f"command : {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"method  : {args.rounds} rounds per size, the two engines alternating, each a fresh "
          "process: build, one cold pass (word caches emptied) and one warm pass over the "
          "real-text benchmark's articles; medians over rounds")
    for n in sizes:
        runs: dict[str, list[dict[str, Any]]] = {"native": [], "python": []}
        for _ in range(args.rounds):
            for engine in runs:
                runs[engine].append(spawn(n, args.seed, engine))
        nat, py = runs["native"], runs["python"]
        if not nat[0]["engine"].startswith("compiled"):
            raise SystemExit(f"no compiled engine in use: {nat[0]['engine']} "
                             "(make build/engine/sources.sha256)")
        digests = {r["matches"] for r in nat + py}
        if len(digests) != 1:
            raise SystemExit(f"{n} terms: the engines' alerts differ ({len(digests)} sets)")
        articles = nat[0]["articles"]

        def med(rs: list[dict[str, Any]], key: str) -> float:
            return statistics.median(r[key] for r in rs)

        cold_n, cold_p = med(nat, "cold"), med(py, "cold")
        warm_n, warm_p = med(nat, "warm"), med(py, "warm")
        print(f"\n== {n:,} terms ({articles} articles; {nat[0]['count']} alerts, identical in "
              f"all {2 * args.rounds} runs)")
        for label, rs in (("compiled", nat), ("python  ", py)):
            colds = sorted(articles / r["cold"] for r in rs)
            print(f"  {label}: cold {articles / med(rs, 'cold'):,.0f} articles/s "
                  f"[{colds[0]:,.0f}–{colds[-1]:,.0f}], warm {articles / med(rs, 'warm'):,.0f}, "
                  f"index build {med(rs, 'build'):.2f} s")
        print(f"  compiled / python: cold {cold_p / cold_n:.2f}x, warm {warm_p / warm_n:.2f}x, "
              f"build {med(py, 'build') / med(nat, 'build'):.2f}x")


if __name__ == "__main__":
    main()
