"""``monitor run --role poll|match|notify`` (issue 9): roles need Kafka and PostgreSQL;
several pollers share the sources through the store's source leases (each source polled
once per interval); poll + 2 match + 2 notify post every alert exactly once.

Real servers: Tansu (``tests/harness/kafka.py``), PostgreSQL (``pg_fixtures``), FeedStub
and SlackStub, and real ``monitor run`` subprocesses. Without tansu or PostgreSQL the
Kafka+PostgreSQL tests skip with the reason (a failure under CI=true).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.app import ROLE_STAGES, loops_for
from monitor.commands.run import ROLES
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import UNRELATED, Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import Broker, kafka_queue_config
from tests.harness.slackstub import SlackStub

pytestmark = pytest.mark.timeout(120)

CONSOLE = {"name": "console", "type": "console"}


def _slack(slack: SlackStub) -> tuple[dict[str, Any], dict[str, str]]:
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 500}
    return notifier, {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}


def _stop_all(daemons: list[Daemon]) -> list[str]:
    """SIGTERM every daemon at once, then collect their logs."""
    for d in daemons:
        d.proc.terminate()
    return [d.stop(timeout=30).stderr for d in daemons]


# --- (a) validation ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_role_other_than_all_on_sqlite_is_refused_with_exit_2(
    tmp_path: Path, how: str
) -> None:
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "f", "url": "http://127.0.0.1:9/f.xml"}], [CONSOLE]))
    args = ("--role", "poll") if how == "flag" else ()
    env = {"MONITOR_ROLE": "match"} if how == "env" else {}
    result = run_monitor("run", "--config", str(config), *args, env=env, timeout=60)
    assert result.code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "needs queue.backend: kafka and a PostgreSQL store" in lines[0]
    assert not (tmp_path / "data" / "queue.db").exists(), "nothing was opened"


def test_a_role_on_kafka_with_a_sqlite_store_and_an_unknown_role_are_refused(
    tmp_path: Path,
) -> None:
    queue = {"backend": "kafka", "bootstrap_servers": "127.0.0.1:9", "topic_prefix": "x"}
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "f", "url": "http://127.0.0.1:9/f.xml"}], [CONSOLE], queue=queue))
    result = run_monitor("run", "--role", "notify", "--config", str(config), timeout=60)
    assert result.code == 2 and "needs queue.backend: kafka and a PostgreSQL" in result.stderr
    bad = run_monitor("run", "--config", str(config), env={"MONITOR_ROLE": "poller"},
                      timeout=60)
    assert bad.code == 2 and "MONITOR_ROLE='poller'" in bad.stderr


def test_each_role_runs_and_checks_only_its_own_loops() -> None:
    assert loops_for("all") == ["match", "deliver", "reload"]  # as before roles
    assert loops_for("poll") == []
    assert loops_for("match") == ["match", "reload"]
    assert loops_for("notify") == ["intake", "deliver"]
    assert set(ROLES) == set(ROLE_STAGES)


# --- the lease itself ----------------------------------------------------------------------
def test_the_poll_lease_is_one_conditional_statement(tmp_path: Path, postgres_url: str) -> None:
    lite = SqliteStore(tmp_path / "m.db")
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        later = time.time() + 30
        # Unconditional (the only poller: --role all, SQLite or not): always taken.
        assert lite.take_poll_lease("s", "one", later, shared=False)
        assert lite.take_poll_lease("s", "two", later, shared=False)
        # Shared: a lease in force keeps others out; its holder may renew it.
        assert a.take_poll_lease("s", "A", later) is True
        assert b.take_poll_lease("s", "B", later) is False
        assert a.take_poll_lease("s", "A", later) is True
        a.release_poll_leases("A")
        assert b.take_poll_lease("s", "B", time.time() + 0.2) is True
        time.sleep(0.3)  # expired: anyone takes it
        assert a.take_poll_lease("s", "A", later) is True
        # Racing for a fresh source from many threads: exactly one wins.
        stores = [PostgresStore(postgres_url) for _ in range(6)]
        won: list[bool] = []
        barrier = threading.Barrier(len(stores))

        def race(i: int) -> None:
            barrier.wait()
            won.append(stores[i].take_poll_lease("fresh", f"h{i}", later))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        assert sorted(won) == [False] * 5 + [True]
    finally:
        lite.close()
        a.close()
        b.close()


# --- (b) two pollers share 200 sources -----------------------------------------------------
SOURCES = 200
INTERVAL = 2.0
INTERVALS = 3


def test_b_two_pollers_poll_each_source_once_per_interval(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    body = rss(UNRELATED[:2])
    sources = [{"name": f"s{i:03d}", "url": feed_stub.serve(f"/f{i:03d}.xml", body),
                "interval": f"{INTERVAL:g}s", "jitter": 0} for i in range(SOURCES)]
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, sources, [CONSOLE], queue=kafka_queue_config(kafka_broker, kafka_prefix),
        store={"url": postgres_url}))
    upgraded = run_monitor("db", "upgrade", "--config", str(config), timeout=60)
    assert upgraded.code == 0, upgraded.stderr
    pollers = [Daemon(config, args=("--role", "poll")) for _ in range(2)]
    try:
        # The daemon staggers first polls by 0.1 s a source (20 s for 200): wait until
        # every source has had its first poll plus three intervals.
        deadline = time.monotonic() + 80
        while time.monotonic() < deadline:
            firsts = {r.path for r in feed_stub.requests}
            if len(firsts) == SOURCES:
                break
            assert all(d.proc.poll() is None for d in pollers), "a poller exited"
            time.sleep(0.5)
        assert len({r.path for r in feed_stub.requests}) == SOURCES
        time.sleep(INTERVALS * INTERVAL + 1.0)
        requests = feed_stub.requests
    finally:
        logs = _stop_all(pollers)
    for log in logs:
        assert "started role=poll" in log, log[-2000:]
    by_source: dict[str, list[float]] = {}
    for r in requests:
        by_source.setdefault(r.path, []).append(r.time)
    assert len(by_source) == SOURCES
    worst_gap, counts = INTERVAL, Counter[int]()
    for path, times in by_source.items():
        times.sort()
        window = [t for t in times if t < times[0] + INTERVALS * INTERVAL]
        counts[len(window)] += 1
        assert INTERVALS - 1 <= len(window) <= INTERVALS + 1, (path, times)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        if gaps:
            worst_gap = min(worst_gap, min(gaps))
    assert worst_gap >= INTERVAL / 2, worst_gap
    both = [log.count("polled source=") for log in logs]
    assert all(n > 0 for n in both), f"both pollers took sources: {both}"
    print(f"polls per source in {INTERVALS} intervals: {dict(counts)}; closest two polls of "
          f"one source: {worst_gap:.2f}s; polls by poller: {both}")


# --- (c) poll + 2 match + 2 notify ---------------------------------------------------------
FEEDS = 4
PER_FEED = 250


def test_c_roles_post_every_alert_exactly_once(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    sources = []
    for f in range(FEEDS):
        entries = [Entry(f"Convoy {f}-{n} reaches Ar-Rutbah", f"https://n.example/{f}/{n}")
                   for n in range(PER_FEED)]
        sources.append({"name": f"f{f}", "url": feed_stub.serve(f"/f{f}.xml", rss(entries)),
                        "interval": "60s"})
    expected = FEEDS * PER_FEED
    with SlackStub() as slack:
        notifier, env = _slack(slack)
        config = write_config(tmp_path / "config.yaml", base_config(
            tmp_path, sources, [notifier], store={"url": postgres_url},
            queue=kafka_queue_config(kafka_broker, kafka_prefix)))
        upgraded = run_monitor("db", "upgrade", "--config", str(config), timeout=60)
        assert upgraded.code == 0, upgraded.stderr
        started = time.monotonic()
        roles = ["match", "match", "notify", "notify", "poll"]  # consumers first
        daemons = [Daemon(config, env, args=("--role", role)) for role in roles]
        try:
            deadline = time.monotonic() + 75
            while time.monotonic() < deadline and len(slack.posts()) < expected:
                assert all(d.proc.poll() is None for d in daemons), "a daemon exited"
                time.sleep(0.5)
            took = time.monotonic() - started
            time.sleep(2.0)  # anything posted twice would show by now
            ids = Counter(slack.alert_ids())
        finally:
            logs = _stop_all(daemons)
    assert len(ids) == expected, (len(ids), [log[-1500:] for log in logs])
    assert set(ids.values()) == {1}, "dup = 0"
    matchers = [log.count("item_matched") for log in logs[:2]]
    notifiers = [log.count("alert_sent") for log in logs[2:4]]
    print(f"{expected} alerts posted once each in {took:.1f}s; items matched per matcher "
          f"{matchers}; alerts sent per notifier {notifiers}")
