"""Feed parsing benchmark (issue 8): a 100,000-item feed whole and cut, on and off the loop.

Run:  .venv/bin/python bench/parse.py [--items 100000] [--giant-mb 8] [--budget 3]

Each case runs in a fresh interpreter, so its peak RSS is its own. Prints, per case, the
wall time, CPU time and peak RSS of the parsing process, and the event loop's worst lateness
(a 10 ms ticker runs beside the parse):

* ``on-loop whole``: feedparser on the event loop over the whole feed (before issue 8);
* ``in-process cut``: the same feed cut before parsing (``max_items: 500``: the first and
  the last 500 items parsed), timed in one process;
* ``worker cut`` / ``worker whole``: through the parser pool (a worker process): the loop's
  lateness, the parse's wall time, and the worker's peak RSS (sampled with psutil);
* ``worker giant``: one item of ``--giant-mb`` MB of HTML, stopped by ``--budget``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from monitor.errors import FetchRejected
from monitor.sources.fetch import FetchResult
from monitor.sources.parsing import ParserPool
from monitor.sources.rss import RssParser

URL = "http://127.0.0.1/big.xml"


def big_rss(n: int) -> bytes:
    items = "".join(f"<item><title>Story {i}</title><link>http://e.example/{i}</link></item>"
                    for i in range(n))
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Big"
            f"</title>{items}</channel></rss>").encode()


def giant_rss(megabytes: float) -> bytes:
    html = "<p>Para <b>bold</b> <a href='http://x.example/'>l</a> <script>x()</script></p>"
    body = html * int(megabytes * 1_000_000 / len(html))
    return ("<?xml version='1.0'?><rss version='2.0'><channel><title>G</title><item><title>"
            f"One</title><link>http://e.example/1</link><description><![CDATA[{body}]]>"
            "</description></item></channel></rss>").encode()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def with_ticker(work: Any) -> tuple[Any, float]:
    """Run ``work`` (a coroutine) beside a 10 ms ticker; the ticker's worst lateness."""
    worst = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before - 0.01)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    try:
        result = await work
    finally:
        done.set()
        await ticker  # it wakes late after a blocked loop, and records by how much
    return result, worst


def sample_peak(pool: ParserPool, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        for pid in pool.pids():
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], psutil.Process(pid).memory_info().rss / 2**20)
        stop.wait(0.005)


def case(name: str, items: int, giant_mb: float, budget: float) -> dict[str, Any]:
    body = giant_rss(giant_mb) if name == "worker giant" else big_rss(items)
    result = FetchResult(200, body, {"content-type": "application/rss+xml"}, URL)
    whole = name.endswith("whole")
    parser = RssParser("big", URL, max_items=50_000 if whole else 500)
    out: dict[str, Any] = {"case": name, "bytes": len(body)}
    started, cpu = time.perf_counter(), time.process_time()
    if name == "in-process cut":
        out["kept"] = len(parser.parse(result).items)
    elif name == "on-loop whole":

        async def on_loop() -> Any:
            return parser.parse(result)

        parsed, out["loop_late_s"] = asyncio.run(with_ticker(on_loop()))
        out["kept"] = len(parsed.items)
    else:
        pool = ParserPool(workers=1)
        asyncio.run(pool.run(len, b"warm", budget=30, where="warm-up"))  # start the worker
        stop, peak = threading.Event(), [0.0]
        sampler = threading.Thread(target=sample_peak, args=(pool, stop, peak))
        sampler.start()
        started, cpu = time.perf_counter(), time.process_time()
        async def work() -> Any:
            try:
                return await pool.run(parser.parse, result, where=parser.where,
                                      budget=budget if name.endswith("giant") else 60)
            except FetchRejected as exc:
                return exc

        parsed, out["loop_late_s"] = asyncio.run(with_ticker(work()))
        if isinstance(parsed, FetchRejected):
            out["error"] = parsed.reason
        else:
            out["kept"] = len(parsed.items)
        stop.set()
        sampler.join()
        out["worker_peak_rss_mib"] = round(peak[0])
        pool.close()
    out["wall_s"] = round(time.perf_counter() - started, 2)
    out["cpu_here_s"] = round(time.process_time() - cpu, 2)
    out["peak_rss_here_mib"] = round(peak_mib())
    if "loop_late_s" in out:
        out["loop_late_s"] = round(out["loop_late_s"], 3)
    return out


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--items", type=int, default=100_000)
    args.add_argument("--giant-mb", type=float, default=8.0)
    args.add_argument("--budget", type=float, default=3.0)
    args.add_argument("--case")
    opts = args.parse_args()
    if opts.case:
        print(json.dumps(case(opts.case, opts.items, opts.giant_mb, opts.budget)))
        return
    for name in ("on-loop whole", "in-process cut", "worker cut", "worker whole",
                 "worker giant"):
        done = subprocess.run([sys.executable, __file__, "--case", name, "--items",
                               str(opts.items), "--giant-mb", str(opts.giant_mb), "--budget",
                               str(opts.budget)], capture_output=True, text=True, check=True)
        print(done.stdout.strip())


if __name__ == "__main__":
    main()
