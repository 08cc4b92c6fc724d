"""End-to-end latency and cost of the daemon: from the poll that sees a new item to its
Slack post, measured against real servers on 127.0.0.1.

    .venv/bin/python bench/pipeline.py [--feeds 20] [--rounds 15] [--interval 2]

A FeedStub serves ``--feeds`` RSS feeds polled every ``--interval`` seconds; every 1.5 s a
new matching story (and two unrelated ones) is added to a random feed. A SlackStub records
every post. For each story the bench prints the delay from the first poll that fetched it
to its post (the engine's own latency), and from publication to post (adds up to one
interval of waiting). The baseline, measured in the same run, is a bare ``chat.postMessage``
from slack_sdk to the same stub: the floor any Slack notifier pays. Also: the daemon's
peak RSS and CPU seconds. Loopback only; bounded in time; stops by itself.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.daemon import Daemon, base_config, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.slackstub import SlackStub

PLACES = ["Rutba", "Ar-Rutbah", "Al-Anbar", "Anbar", "Al-Qaim"]
PEOPLE = ["Ahmed al-Sharaa", "Asaad al-Shaibani", "Fouad Hussein", "Bashar Assad"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def baseline(stub: SlackStub, n: int = 30) -> float:
    client = WebClient(token=stub.token, base_url=stub.api_url)
    times = []
    for i in range(n):
        start = time.monotonic()
        client.chat_postMessage(channel="#baseline", text=f"baseline {i}")
        times.append(time.monotonic() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    feeds: dict[str, list[Entry]] = {f"/f{i}.xml": [] for i in range(args.feeds)}
    published: dict[str, tuple[str, float]] = {}  # title -> (feed path, time)
    with FeedStub() as fs, SlackStub() as slack:
        floor = baseline(slack)
        sources = [{"name": f"feed{i}", "url": fs.serve(path, rss([])),
                    "interval": f"{args.interval}s", "jitter": 0}
                   for i, path in enumerate(feeds)]
        notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                    "channel": "#alerts", "api_url": "${SLACK_API_URL}",
                    "rate_per_second": 50, "burst": 50}
        config = base_config(tmp, sources, [notifier])
        config["log_level"] = "WARNING"
        daemon = Daemon(write_config(tmp / "config.yaml", config),
                        {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url})
        proc = psutil.Process(daemon.pid)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                try:
                    peak[0] = max(peak[0], proc.memory_info().rss)
                except psutil.Error:
                    return

        threading.Thread(target=sample, daemon=True).start()
        time.sleep(args.interval + 1)
        for r in range(args.rounds):
            path = rng.choice(list(feeds))
            title = f"{rng.choice(PEOPLE)} visits {rng.choice(PLACES)} (story {r})"
            feeds[path][:0] = [Entry(title, f"https://n.example/s{r}"),
                               Entry(f"Market update {r}", f"https://n.example/m{r}"),
                               Entry(f"Weather report {r}", f"https://n.example/w{r}")]
            published[title] = (path, time.monotonic())
            fs.serve(path, rss(feeds[path][:60]))
            time.sleep(1.5)
        deadline = time.monotonic() + 30
        while len(slack.posts()) < 30 + args.rounds and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu = sum(proc.cpu_times()[:2])
        done.set()
        result = daemon.stop()
        posts = [r for r in slack.requests("chat.postMessage")
                 if r["body"].get("channel") == "#alerts" and r["response"]["status"] == 200]

    poll_to_post, publish_to_post, missing = [], [], []
    for title, (path, t_pub) in published.items():
        post = next((p for p in posts if title in str(p["body"].get("text", ""))), None)
        if post is None:
            missing.append(title)
            continue
        polls = [r.time for r in fs.requests_for(path) if r.time >= t_pub]
        publish_to_post.append(post["t_mono"] - t_pub)
        if polls:
            poll_to_post.append(post["t_mono"] - polls[0])
    print(f"feeds {args.feeds} at {args.interval:g}s, {args.rounds} matching stories "
          f"(+{2 * args.rounds} unrelated); daemon exit {result.code}")
    print(f"delivered {len(publish_to_post)}/{args.rounds}; missing {missing}")
    if poll_to_post:
        ms = [v * 1000 for v in poll_to_post]
        print(f"poll -> Slack post  : median {statistics.median(ms):7.1f} ms"
              f"  p95 {pct(ms, 0.95):7.1f} ms  max {max(ms):7.1f} ms")
        print(f"publish -> post     : median {statistics.median(publish_to_post):7.2f} s"
              f"   p95 {pct(publish_to_post, 0.95):7.2f} s   (includes waiting for the next poll)")
        print(f"baseline bare post  : median {floor * 1000:7.1f} ms  "
              f"(ratio poll->post / bare post: {statistics.median(poll_to_post) / floor:.1f}x)")
    print(f"daemon peak RSS {peak[0] / 1e6:.0f} MB, CPU {cpu:.1f} s over the run")


if __name__ == "__main__":
    main()
