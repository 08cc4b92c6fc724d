"""RELIABILITY.md D08, the network half: the broker stays up, but the link between the daemon
and Kafka is blackholed (a FaultProxy in front of Tansu, which advertises the proxy's port,
so every connection of the daemon's passes it: bootstrap, partition leaders, the group
coordinator). A blackhole is harder than a dead broker: nothing is refused, requests just
never come back, and every wait has to end on its own timeout.

While the link is down the feed publishes 30 new matching stories. The daemon must stay up,
say ``failing`` on ``/healthz`` naming the broker, count the failed publishes, and keep its
poll cursor; once the link is back every story is posted exactly once by the same process.

The blackhole lasts ``MONITOR_BLACKHOLE_SECONDS`` (20 s in the suite; the catalogue's 60 s
with ``MONITOR_BLACKHOLE_SECONDS=60``, as ``make bench`` runs it).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from monitor.server import PROBE_TIMEOUT
from tests.harness.faultproxy import FaultProxy
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import Broker, kafka_daemon
from tests.harness.probes import health, metric, wait_for, wait_until
from tests.harness.slackstub import SlackStub, lost_and_duplicated
from tests.harness.xdist import HEAVY

BLACKHOLE = float(os.environ.get("MONITOR_BLACKHOLE_SECONDS", "20"))

pytestmark = [pytest.mark.timeout(BLACKHOLE + 120), HEAVY]

BEFORE = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/before/{n}")
          for n in range(2)]
DURING = [Entry(f"Checkpoint {n} near Ar-Rutbah reopens", f"https://n.example/during/{n}")
          for n in range(30)]


def _publish_errors(base: str) -> float:
    return metric(base, 'monitor_queue_publish_errors_total{backend="kafka"}')


def _said(log: str, lines: int = 60) -> str:
    """The log's last lines, without the scheduler's once-a-second skipped-run warnings."""
    kept = [line for line in log.splitlines()
            if "job_max_instances" not in line and "maximum number of running" not in line]
    return "\n".join(kept[-lines:])


def test_d08_a_blackholed_broker_link_delays_but_loses_nothing(
    tmp_path: Path, feed_stub: FeedStub, kafka_proxied_broker: tuple[Broker, FaultProxy],
    kafka_prefix: str,
) -> None:
    broker, proxy = kafka_proxied_broker
    url = feed_stub.serve("/f.xml", rss(BEFORE))
    with SlackStub() as slack:
        daemon, base = kafka_daemon(tmp_path, url, broker, kafka_prefix, slack)
        try:
            assert wait_until(lambda: len(slack.posts()) == len(BEFORE), 40), slack.posts()
            assert wait_until(lambda: (h := health(base)) and h["status"] == "ok", 15), (
                health(base))
            errors_before = _publish_errors(base)

            proxy.blackhole()
            cut = time.monotonic()
            # The stories appear in three steps across the outage, as a live feed's would.
            for step in range(3):
                feed_stub.serve("/f.xml", rss(BEFORE + DURING[: 10 * (step + 1)]))
                if step < 2:
                    time.sleep(BLACKHOLE / 4)
            polled = len(feed_stub.requests_for("/f.xml"))
            # /healthz answers within its 3 s bound (a partition must not hang the probes)
            # and names the broker, first hand or as what the last computation found.
            failing = wait_for(lambda: (h := health(base)) and h["status"] == "failing"
                               and any("queue: Kafka 127.0.0.1:" in r for r in h["reasons"])
                               and h, max(1.0, BLACKHOLE - (time.monotonic() - cut)))
            asked = time.monotonic()
            answer = health(base)
            answered_in = time.monotonic() - asked
            assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) >= polled + 2, 15)
            rest = BLACKHOLE - (time.monotonic() - cut)
            if rest > 0:
                time.sleep(rest)
            posted_while_cut = len(slack.posts())
            errors_while_cut = _publish_errors(base) - errors_before
            alive_while_cut = daemon.proc.poll() is None
            seen_while_cut = proxy.connections

            proxy.blackhole(False)
            healed = time.monotonic()
            everything = len(BEFORE) + len(DURING)
            assert wait_until(lambda: len(slack.posts()) >= everything, 60), (
                f"{len(slack.posts())} of {everything} posted 60 s after the link came back; "
                f"the daemon said:\n{_said(daemon.log_text())}")
            caught_up = time.monotonic() - healed
            assert wait_until(lambda: (h := health(base)) and h["status"] == "ok", 20), (
                health(base))
            alive = daemon.proc.poll() is None
            # Anything still in flight would show up as a duplicate within a few polls.
            time.sleep(3)
        finally:
            stopped = daemon.stop()
        counts = Counter(slack.alert_ids())
    print(f"blackhole {BLACKHOLE:g} s: {errors_while_cut:g} failed publishes, "
          f"{seen_while_cut} proxy connections, all posted {caught_up:.1f} s after it ended")
    assert alive_while_cut and alive, stopped.stderr[-3000:]
    assert stopped.code == 0, stopped.stderr[-3000:]
    assert posted_while_cut == len(BEFORE), "nothing can pass a link that is cut"
    assert failing["status"] == "failing", failing
    assert answer is not None and answer["status"] == "failing", answer
    assert answered_in < PROBE_TIMEOUT + 1.5, f"/healthz took {answered_in:.1f}s during the cut"
    assert errors_while_cut >= 1, "the failed publishes were not counted"
    assert lost_and_duplicated(counts, len(BEFORE) + len(DURING)) == {
        "lost": 0, "duplicated": 0}
    err = stopped.stderr
    assert "poll_failed" in err and "poll_crashed" not in err
    lines = err.splitlines()
    ours = [lines[i + 1] for i, line in enumerate(lines[:-1])
            if line.startswith("Traceback") and "/kafka/" not in lines[i + 1]]
    assert ours == [], ours
