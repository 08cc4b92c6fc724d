"""RELIABILITY.md D08 on a real broker restart: Tansu on ``s3://`` storage in a local moto
server (``tests/harness/kafka.py``, ``kafka_s3_broker``) is killed and started again on the
same port, so what it acknowledged survives it.

Queue level: while the broker is down a publish raises ``StoreError`` (a
``ServiceUnavailable``: a poll keeps its cursor and tries again) within ``queue.timeout``;
once it is back the same queue publishes again, and a consumer of the group starts exactly
at the committed offset: nothing acknowledged is lost, and only what was never committed
comes again.

End to end: a running daemon (``monitor run``, ``queue.backend: kafka``) loses its broker
for a few polls while new matching stories appear; health is ``failing`` meanwhile, the
daemon stays up, and once the broker is back every story is posted exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from monitor.queue.base import ITEMS
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import SESSION_TIMEOUT, RestartableBroker, kafka_daemon
from tests.harness.probes import health, wait_for, wait_until
from tests.harness.slackstub import SlackStub, lost_and_duplicated
from tests.harness.subscriptions import settle, take
from tests.harness.xdist import HEAVY

pytestmark = [pytest.mark.timeout(60), HEAVY]

TIMEOUT = 2.0  # queue.timeout for these queues: a publish to a dead broker fails within it


def test_d08_broker_restart_loses_nothing_and_resumes_at_the_committed_offset(
    kafka_s3_broker: RestartableBroker, kafka_prefix: str
) -> None:
    from monitor.errors import ServiceUnavailable, StoreError
    from monitor.queue.kafka import KafkaQueue

    broker = kafka_s3_broker
    q = KafkaQueue(broker.bootstrap, prefix=kafka_prefix, partitions=1, timeout=TIMEOUT,
                   session_timeout=SESSION_TIMEOUT)
    try:
        q.ensure_topics()
        keys = [f"m{i}" for i in range(10)]
        assert q.publish_many(ITEMS, [(k, {"k": k}) for k in keys]) == 10
        first = q.subscribe(ITEMS)
        got = take(first, 10, within=20.0)
        assert [m.key for m in got] == keys
        first.commit(got[:4])  # the rest were handed out, never finished
        first.close()

        broker.stop()
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            q.publish_many(ITEMS, [("down", {"k": "down"})])
        assert isinstance(failed.value, ServiceUnavailable), "a poll keeps its cursor"
        assert time.monotonic() - started < TIMEOUT + 4, "bounded by queue.timeout"
        with pytest.raises(ServiceUnavailable):
            q.admin.ping()

        broker.start()
        # A poller's next turns publish what failed, until one is taken: the same queue
        # (and producer) works again once it has reconnected.
        failures: list[str] = []

        def publish_again() -> bool:
            try:
                q.publish_many(ITEMS, [("down", {"k": "down"}), ("after", {"k": "after"})])
            except ServiceUnavailable as exc:
                failures.append(str(exc))
                return False
            return True

        assert wait_until(publish_again, 20), failures[-3:]

        def answers() -> bool:
            try:
                q.admin.ping()  # what /healthz asks: ok again once the broker answers
            except ServiceUnavailable as exc:
                failures.append(str(exc))
                return False
            return True

        assert wait_until(answers, 20), failures[-3:]
        second = q.subscribe(ITEMS)
        resumed = take(second, 8, within=20.0)
        assert [m.key for m in resumed] == [*keys[4:], "down", "after"], (
            "from the committed offset: m0-m3 are not replayed, m4-m9 are (never committed)")
        second.commit(resumed)
        assert settle(second, 1.0) == [], "the failed publish was not delivered behind our back"
        assert q.admin.depth(ITEMS) == 0
        second.close()
    finally:
        q.close()


STORIES = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/{n}") for n in range(4)]


def test_d08_daemon_rides_out_a_broker_restart_and_alerts_each_story_once(
    tmp_path: Path, feed_stub: FeedStub, kafka_s3_broker: RestartableBroker, kafka_prefix: str
) -> None:
    """Polls every 1 s; the broker is killed after two stories were posted, two more
    appear, and at least three polls fail (``poll_failed``, cursor kept) before it comes
    back. The same process then posts the two new stories, each once."""
    broker = kafka_s3_broker
    url = feed_stub.serve("/f.xml", rss(STORIES[:2]))
    with SlackStub() as slack:
        daemon, base = kafka_daemon(tmp_path, url, broker, kafka_prefix, slack)
        try:
            assert wait_until(lambda: len(slack.posts()) == 2, 30), "the first two stories"
            assert wait_until(lambda: (h := health(base)) and h["status"] == "ok", 10)

            broker.stop()
            feed_stub.serve("/f.xml", rss(STORIES))  # two new stories while it is down
            polled = len(feed_stub.requests_for("/f.xml"))
            failing = wait_for(lambda: (h := health(base)) and h["status"] == "failing" and h,
                               15)
            assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) >= polled + 3, 15)
            assert len(slack.posts()) == 2, "nothing new can pass a broker that is down"
            alive_while_down = daemon.proc.poll() is None

            broker.start()
            assert wait_until(lambda: len(slack.posts()) == len(STORIES), 30), slack.posts()
            assert wait_until(lambda: (h := health(base)) and h["status"] == "ok", 15), (
                health(base))
            alive = daemon.proc.poll() is None
        finally:
            stopped = daemon.stop()
        counts = Counter(slack.alert_ids())
    assert alive_while_down and alive, stopped.stderr[-3000:]
    assert stopped.code == 0, stopped.stderr[-3000:]
    assert any(r.startswith("queue: Kafka 127.0.0.1:") for r in failing["reasons"]), failing
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}
    err = stopped.stderr
    assert "poll_failed" in err and "poll_crashed" not in err
    # kafka-python logs a reset connection with its traceback (kafka.net.transport); any
    # other traceback would be ours.
    lines = err.splitlines()
    ours = [lines[i + 1] for i, line in enumerate(lines[:-1])
            if line.startswith("Traceback") and "/kafka/" not in lines[i + 1]]
    assert ours == [], ours
