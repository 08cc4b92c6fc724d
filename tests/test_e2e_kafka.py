"""End to end on Kafka (``queue.backend: kafka``): the real ``monitor run --once`` against
FeedStub, SlackStub and a Tansu broker on 127.0.0.1 (``tests/harness/kafka.py``).

RELIABILITY.md D05: the daemon is SIGKILLed after a stage stored or produced its result but
before it committed its offsets, twice (after matching, then after intake); the replayed
records are matched and taken in again, the store dedupes them by alert id, and every
story is posted exactly once; the groups' lag ends at 0.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.queue.base import ALERTS, ITEMS
from tests.harness.daemon import base_config, run_monitor, write_config
from tests.harness.feeds import UNRELATED, Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import SESSION_TIMEOUT, Broker, kafka_queue_config
from tests.harness.slackstub import SlackStub, lost_and_duplicated
from tests.harness.xdist import HEAVY

pytestmark = [pytest.mark.timeout(120), HEAVY]

STORIES = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/{n}") for n in range(5)]


def setup(tmp_path: Path, feed_stub: FeedStub, slack: SlackStub, broker: Broker, prefix: str,
          entries: list[Entry], store_url: str | None = None) -> tuple[Path, dict[str, str]]:
    url = feed_stub.serve("/f.xml", rss(entries))
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 20}
    extra: dict[str, Any] = {"store": {"url": store_url}} if store_url else {}
    config = base_config(tmp_path, [{"name": "f", "url": url}], [notifier],
                         queue=kafka_queue_config(broker, prefix), **extra)
    env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    return write_config(tmp_path / "config.yaml", config), env


def run_once(config: Path, env: dict[str, str], failpoint: str | None = None) -> Any:
    extra = {"MONITOR_FAILPOINTS": failpoint} if failpoint else {}
    return run_monitor("run", "--once", "--config", str(config), env=env | extra)


def lag(broker: Broker, prefix: str) -> dict[str, int]:
    from monitor.queue.kafka import KafkaQueue

    queue = KafkaQueue(broker.bootstrap, prefix=prefix, session_timeout=SESSION_TIMEOUT)
    try:
        return {topic: queue.admin.depth(topic) for topic in (ITEMS, ALERTS)}
    finally:
        queue.close()


def test_pipeline_on_kafka_and_postgres_alerts_once_and_status_reads_the_lag(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    """The scaled-out stack in one process: Kafka queue, PostgreSQL store (an empty schema,
    created at the first start). The SQLite store on Kafka: D05 below."""
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, kafka_broker, kafka_prefix,
                            [*UNRELATED[:2], *STORIES[:2], *UNRELATED[2:]], postgres_url)
        first = run_once(config, env)
        assert first.code == 0, first.stderr
        assert "kafka_topics_created" in first.stderr
        assert len(slack.posts()) == 2, [p.get("text") for p in slack.posts()]
        assert all("Ar-Rutbah" in str(p.get("text")) for p in slack.posts())
        assert len(set(slack.alert_ids())) == 2
    assert lag(kafka_broker, kafka_prefix) == {ITEMS: 0, ALERTS: 0}
    status = run_monitor("status", "--json", "--config", str(config), env=env)
    report = json.loads(status.stdout)
    assert report["queues"] == {ITEMS: 0, ALERTS: 0}, status.stderr
    assert report["queue_dead"] == {}
    assert not [r for r in report["reasons"] if r.startswith("queue")], report["reasons"]


def test_d05_kill_before_the_offset_commit_replays_and_posts_exactly_once(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str
) -> None:
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, kafka_broker, kafka_prefix, STORIES)
        for point in ("after_match_before_commit", "after_intake_before_commit"):
            crashed = run_once(config, env, f"{point}=kill")
            assert crashed.code == -signal.SIGKILL, crashed.stderr
            assert slack.posts() == [], "nothing is posted before the outbox runs"
        restarted = run_once(config, env)
        assert restarted.code == 0, restarted.stderr
        counts = Counter(slack.alert_ids())
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}
    assert "alert_duplicate" in restarted.stderr, "the replay was deduplicated by alert id"
    assert lag(kafka_broker, kafka_prefix) == {ITEMS: 0, ALERTS: 0}


def test_db_commands_and_check_speak_of_the_broker_not_a_queue_file(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str
) -> None:
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, kafka_broker, kafka_prefix, STORIES)
    queue_file = tmp_path / "data" / "queue.db"
    upgraded = run_monitor("db", "upgrade", "--config", str(config), env=env)
    assert upgraded.code == 0, upgraded.stderr
    assert f"ok: queue kafka {kafka_broker.bootstrap}: topics {kafka_prefix}.items" \
        in upgraded.stdout
    assert lag(kafka_broker, kafka_prefix) == {ITEMS: 0, ALERTS: 0}, "the topics exist"
    checked = run_monitor("db", "check", "--config", str(config), env=env)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert f"ok: queue kafka {kafka_broker.bootstrap} (topics {kafka_prefix}.*): reachable; " \
        "waiting items 0, alerts 0; dead-lettered 0" in checked.stdout, checked.stdout
    recover = run_monitor("db", "recover", "--config", str(config), env=env)
    assert recover.code == 2 and "the broker keeps the queue" in recover.stderr
    summary = run_monitor("check", "--config", str(config), env=env)
    assert f"queue:      kafka {kafka_broker.bootstrap}, topics {kafka_prefix}.*" \
        in summary.stdout, summary.stdout
    assert not queue_file.exists(), "no SQLite queue file is made for a Kafka queue"
    # A broker that is not there: db check says which and fails.
    dead = write_config(tmp_path / "dead.yaml", base_config(
        tmp_path, [{"name": "f", "url": "http://127.0.0.1:9/f.xml"}], [],
        queue={"backend": "kafka", "bootstrap_servers": "127.0.0.1:9", "timeout": "2s"}))
    down = run_monitor("db", "check", "--config", str(dead), env=env)
    assert down.code == 1, down.stdout + down.stderr
    assert "unreachable: queue kafka 127.0.0.1:9 (topics monitor.*)" in down.stdout
