"""Storage faults (RELIABILITY.md D09, issue 8): errors of the store or a queue are one
error type (StoreError), said once per state change, make health ``failing`` while they
last, and lose or duplicate nothing; the writes a Slack post depends on are durable.

The end-to-end tests run the real daemon against FeedStub and SlackStub and count
SlackStub's alert ids: lost = 0, duplicated = 0 (Web API path). Faults come from the
``queue_write`` and ``store_write`` failpoints (a real ``sqlite3.OperationalError`` raised
inside the transaction), or from a second connection holding an exclusive lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config
from monitor.errors import ServiceUnavailable, StoreError
from monitor.health import health as health_of
from monitor.models import Alert
from monitor.poller import Poller
from monitor.queue.base import ITEMS
from monitor.queue.sqlite import SqliteQueue
from monitor.sources.base import Cursor, PollResult, Source
from monitor.store.sqlite import SqliteStore
from monitor.testing import make_item
from tests.harness.daemon import Daemon, base_config, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.probes import free_port, get_json, health, metric, wait_for, wait_until
from tests.harness.slackstub import Reply, SlackStub, lost_and_duplicated

pytestmark = pytest.mark.timeout(90)

STORIES = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/s{n}") for n in range(3)]
DISK_FULL = "raise:sqlite3.OperationalError('database or disk is full')"
IO_ERROR = "raise:sqlite3.OperationalError('disk I/O error')"


def alert(n: int) -> Alert:
    return Alert(id=f"a{n}", watchlist="w", severity="high", item=make_item(n), matches=(),
                 created_at=time.time())


# --- the edge: one error type, said once ---------------------------------------------------

def test_store_error_is_a_service_unavailable() -> None:
    """A command meeting a storage error exits 3, like an unreachable store at start."""
    assert issubclass(StoreError, ServiceUnavailable)


def test_storage_error_is_said_once_fails_health_and_recovers_on_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store, queue = SqliteStore(tmp_path / "s.db"), SqliteQueue(tmp_path / "q.db")
    store.add_alert(alert(1), ["slack"])
    monkeypatch.setenv("MONITOR_FAILPOINTS", f"store_write={IO_ERROR}")
    for _ in range(5):  # five retries of a loop
        with pytest.raises(StoreError, match="disk I/O error"):
            store.claim_deliveries(1, 60, ["slack"])
    with pytest.raises(StoreError, match="disk I/O error"):
        store.ping()
    report = health_of(Config(), store, queue, [], {})
    assert report["status"] == "failing", report
    assert any(r.startswith("store: ") and "disk I/O error" in r for r in report["reasons"])
    assert report["deliveries"] == {"pending": 1}, "reads still work and say what is there"
    with pytest.raises(StoreError):
        store.ping()  # and a read that works does not clear a fault that began on a write

    monkeypatch.delenv("MONITOR_FAILPOINTS")
    assert store.claim_deliveries(1, 60, ["elsewhere"]) == []
    with pytest.raises(StoreError):
        store.ping()  # a transaction that wrote nothing proves nothing
    assert store.claim_deliveries(1, 60, ["slack"])
    store.ping()
    assert health_of(Config(), store, queue, [], {})["status"] == "ok"

    said = [r for r in caplog.records if r.name == "monitor.store" and r.levelno >= logging.INFO]
    assert [r.getMessage().split()[0] for r in said] == ["storage_failing", "storage_recovered"]
    assert said[0].levelno == logging.ERROR and said[0].exc_info is None
    assert "failures=5" in said[1].getMessage()


def test_bugs_are_not_storage_errors(tmp_path: Path) -> None:
    """A constraint violation is our bug, not the disk: it keeps its type and traceback,
    and health does not turn failing for it."""
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError), store.db.tx() as conn:
        conn.execute("INSERT INTO alerts (id, watchlist, payload, created_at)"
                     " VALUES ('x', NULL, '{}', 0)")
    store.ping()


def test_failpoint_fires_only_n_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    monkeypatch.setenv("MONITOR_FAILPOINTS", f"queue_write=2*{DISK_FULL}")
    for _ in range(2):
        with pytest.raises(StoreError, match="database or disk is full"):
            queue.publish_many(ITEMS, [("k", {"n": 1})])
    assert queue.depth(ITEMS) == 0, "a failed publish leaves nothing behind"
    assert queue.publish_many(ITEMS, [("k", {"n": 1})]) == 1
    queue.ping()


class _Feed(Source):
    def __init__(self) -> None:
        self.name, self.url = "f", "http://127.0.0.1/f.xml"

    async def poll(self, cursor: Cursor | None) -> PollResult:
        return PollResult([make_item(1), make_item(2)], Cursor(etag='"v1"'))


def test_poll_on_a_full_disk_fails_in_one_line_and_keeps_its_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 8 item 5: ``record_poll`` failing on a full disk was ``poll_crashed`` with a
    traceback. Now: ``poll_failed`` (one line, no traceback), no backoff, no cursor."""
    caplog.set_level(logging.DEBUG)
    config = Config.model_validate({"sources": [{"name": "f", "url": "http://127.0.0.1/f.xml",
                                                 "interval": 30}]})
    store, queue = SqliteStore(tmp_path / "s.db"), SqliteQueue(tmp_path / "q.db")
    poller = Poller(config, store, queue)
    monkeypatch.setenv("MONITOR_FAILPOINTS", f"store_write={DISK_FULL}")
    for _ in range(2):
        outcome = asyncio.run(poller.poll(_Feed(), config.sources[0]))
        assert not outcome.ok and outcome.delay is None, "the usual interval, no backoff"
    assert store.source_state("f") is None, "no cursor (ETag) was saved"
    monkeypatch.delenv("MONITOR_FAILPOINTS")
    assert asyncio.run(poller.poll(_Feed(), config.sources[0])).ok
    state = store.source_state("f")
    assert state is not None and state.cursor["etag"] == '"v1"'

    events = [(r.levelname, r.getMessage().split()[0]) for r in caplog.records
              if r.levelno >= logging.INFO and r.name.startswith("monitor")]
    assert ("ERROR", "storage_failing") in events
    assert not any(event == "poll_crashed" for _, event in events)
    assert [lvl for lvl, event in events if event == "poll_failed"] == ["WARNING", "WARNING"]
    assert [e for e in events if e[0] == "ERROR"] == [("ERROR", "storage_failing")]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)


def test_a_dropped_postgres_connection_fails_the_call_it_cut_then_is_opened_again(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A PostgreSQL restart or failover drops the store's connection: the call it cuts off
    fails as a StoreError (said once, without the URL), and the next call opens a new
    connection instead of failing until the daemon is restarted."""
    import psycopg

    from monitor.store.postgres import PostgresStore

    caplog.set_level(logging.INFO)
    store = PostgresStore(postgres_url)
    store.record_poll("f", cursor={}, error=None, items=0)
    first = store.conn.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    with pytest.raises(StoreError):
        store.delivery_counts()
    store.record_poll("f", cursor={}, error=None, items=0)  # a write, on a new connection
    store.ping()
    assert store.conn.info.backend_pid != first
    state = store.source_state("f")
    assert state is not None
    said = [r.getMessage().split()[0] for r in caplog.records if r.name == "monitor.store"]
    assert said == ["storage_failing", "store_reconnected", "storage_recovered"], said
    assert not any("postgresql://" in r.getMessage() for r in caplog.records)
    store.close()


# --- durability: "about to send" and "sent" survive an OS crash with the defaults ----------

def _synchronous(statements: list[str]) -> list[tuple[str, str]]:
    """(synchronous setting in force, first statement) of each transaction traced."""
    out, sync, begun = [], "NORMAL", False
    for sql in statements:
        if m := re.fullmatch(r"PRAGMA synchronous=(\w+)", sql):
            sync = m[1]
        elif sql == "BEGIN IMMEDIATE":
            begun = True
        elif begun:
            out.append((sync, sql))
            begun = False
    return out


def test_about_to_send_and_sent_are_committed_with_synchronous_full(tmp_path: Path) -> None:
    """Under ``durability: normal`` (WAL, synchronous=NORMAL) a commit may be lost by an OS
    crash; lost "sending" rows were re-posted without a reconcile (issue 8). The claim, the
    finish, the alert's intake and a queue publish now commit with synchronous=FULL; the
    rest stays NORMAL."""
    store, queue = SqliteStore(tmp_path / "s.db"), SqliteQueue(tmp_path / "q.db")
    traced: list[str] = []
    store.db.conn.set_trace_callback(traced.append)
    queue.db.conn.set_trace_callback(traced.append)
    queue.publish_many(ITEMS, [("k", {"n": 1})])
    store.record_poll("f", cursor={}, error=None, items=1)
    store.add_alert(alert(1), ["slack"])
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    store.mark_sent(task, "ref")
    store.record_destination("slack", None)

    transactions = _synchronous(traced)

    def mode(first: str) -> str:
        (found,) = [sync for sync, sql in transactions if first in sql]
        return found

    assert mode("INTO messages") == "FULL", "a publish"
    assert mode("INTO source_state") == "NORMAL", "a poll's record"
    assert mode("INTO alerts") == "FULL", "an alert's intake"
    assert mode("SELECT d.alert_id") == "FULL", "the claim: about to send"
    assert mode("UPDATE deliveries SET state") == "FULL", "the finish: sent"
    assert mode("INTO destination_state") == "NORMAL"
    for db in (store.db, queue.db):
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1, "back to NORMAL"


def test_durability_full_needs_no_switching(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", durability="full")
    traced: list[str] = []
    store.db.conn.set_trace_callback(traced.append)
    store.add_alert(alert(1), ["slack"])
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    store.mark_sent(task, "ref")
    assert not [s for s in traced if s.startswith("PRAGMA")]
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


# --- end to end ----------------------------------------------------------------------------

def _config(tmp_path: Path, url: str, slack: SlackStub, **source: Any) -> tuple[Path, str,
                                                                               dict[str, str]]:
    port = free_port()
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 20}
    config = base_config(tmp_path, [{"name": "f", "url": url, "jitter": 0} | source],
                         [notifier])
    config["delivery"]["lease"] = "1s"  # a send whose outcome was not recorded: back soon
    config["server"] = {"port": port}
    env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    return write_config(tmp_path / "config.yaml", config), f"http://127.0.0.1:{port}", env


def _lines(stderr: str, word: str) -> list[str]:
    return [line for line in stderr.splitlines() if f" {word} " in f"{line} "]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def test_d09a_queue_write_failing_for_three_polls_advances_nothing_then_delivers_all(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    """D09(a): publishing to the queue fails with "database or disk is full" for three
    poll cycles: each cycle fails without saving the feed's ETag, one ERROR says so, the
    polls keep their schedule, health is failing meanwhile; then everything is delivered
    once, by the same process."""
    url = feed_stub.serve("/f.xml", rss(STORIES))
    with SlackStub() as slack:
        config, base, env = _config(tmp_path, url, slack, interval="1s")
        daemon = Daemon(config, env | {"MONITOR_FAILPOINTS": f"queue_write=3*{DISK_FULL}"})
        failing = wait_for(lambda: (h := health(base)) and h["status"] == "failing" and h, 20)
        ready_code, _ = get_json(f"{base}/readyz")
        assert wait_until(lambda: len(slack.posts()) == len(STORIES), 30)
        assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) >= 6, 10)
        assert wait_until(lambda: (h := health(base)) and h["status"] == "ok", 10)
        publish_errors = metric(base, 'monitor_queue_publish_errors_total{backend="sqlite"}')
        alive = daemon.proc.poll() is None
        stopped = daemon.stop()
        polls = feed_stub.requests_for("/f.xml")
        counts = Counter(slack.alert_ids())
    assert any("queue: " in r and "database or disk is full" in r for r in failing["reasons"])
    assert ready_code == 503
    assert publish_errors == 3, "each failed publish is counted"
    assert alive and stopped.code == 0, stopped.stderr[-3000:]
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}

    etags = [r.headers.get("if-none-match") for r in polls]
    assert etags[:4] == [None] * 4, "three failed polls saved no ETag; the 4th fetches fresh"
    assert all(etags[4:]), "the ETag is saved once a poll succeeds"
    gaps = [b.time - a.time for a, b in itertools.pairwise(polls[:4])]
    assert max(gaps) < 2.0, f"failed polls keep the 1 s schedule (no backoff): {gaps}"

    err = stopped.stderr
    assert len(_lines(err, "storage_failing")) == 1 and "queue.db" in _errors(err)[0]
    assert _errors(err) == _lines(err, "storage_failing"), "one ERROR line, not one per poll"
    assert len(_lines(err, "storage_recovered")) == 1
    assert len(_lines(err, "poll_failed")) == 3
    assert "poll_crashed" not in err and "Traceback" not in err


def test_d09b_exclusive_lock_on_both_databases_delays_but_loses_nothing(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    """D09(b), scaled to 4 s: another process holds BEGIN EXCLUSIVE on monitor.db and
    queue.db while a Slack post is in flight, an alert waits and a new story arrives. The
    busy timeout (30 s) waits; nothing fails, nothing is lost or posted twice."""
    url = feed_stub.serve("/f.xml", rss([]))
    with SlackStub() as slack:
        config, base, env = _config(tmp_path, url, slack, interval="1s")
        daemon = Daemon(config, env)
        assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) >= 2, 20)
        slack.script([Reply.ok(delay=1.0)])  # the first post stays in flight for a second
        feed_stub.serve("/f.xml", rss(STORIES[:2]))
        assert wait_until(lambda: slack.requests("chat.postMessage"), 20)
        locks = []
        for name in ("monitor.db", "queue.db"):
            lock = sqlite3.connect(tmp_path / "data" / name, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            locks.append(lock)
        held = time.monotonic()
        fetched = len(feed_stub.requests_for("/f.xml"))
        feed_stub.serve("/f.xml", rss(STORIES))
        time.sleep(4.0)  # the fault's duration: the lock is held this long
        blocked_polls = len(feed_stub.requests_for("/f.xml")) - fetched
        posted_while_locked = len(slack.posts())
        for lock in locks:
            lock.execute("COMMIT")
            lock.close()
        held = time.monotonic() - held
        assert wait_until(lambda: len(slack.posts()) == len(STORIES), 30)
        assert wait_until(lambda: get_json(f"{base}/readyz")[0] == 200, 10)
        alive = daemon.proc.poll() is None
        stopped = daemon.stop()
        counts = Counter(slack.alert_ids())
    assert held >= 4.0
    assert blocked_polls <= 1, "polls wait on the lock (one at a time), they do not fail"
    assert posted_while_locked <= 1, "only the post already in flight, nothing claimed"
    assert alive and stopped.code == 0
    assert len(counts) == len(STORIES) and set(counts.values()) == {1}, "lost = dup = 0"
    assert _errors(stopped.stderr) == [], "waiting on a lock is not an error"
    assert "storage_failing" not in stopped.stderr and "Traceback" not in stopped.stderr


def test_store_io_error_during_delivery_fails_health_once_and_delivers_each_alert_once(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    """"disk I/O error" on every store write, starting while a Slack post is in flight:
    the post cannot be recorded as sent and nothing else can be claimed. Health is failing
    and /readyz 503 for as long as it lasts, with one ERROR line for the state change and
    one line for the recovery, however many retries. Afterwards every alert is delivered
    exactly once: the post in flight is found through Slack history, not posted again."""
    faults = tmp_path / "failpoints"
    faults.write_text("")
    url = feed_stub.serve("/f.xml", rss(STORIES))
    with SlackStub() as slack:
        slack.script([Reply.ok(delay=1.0)])  # the first post stays in flight for a second
        config, base, env = _config(tmp_path, url, slack, interval="1h")
        daemon = Daemon(config, env | {"MONITOR_FAILPOINTS": f"@{faults}"})
        assert wait_until(lambda: slack.requests("chat.postMessage"), 30)
        faults.write_text(f"store_write={IO_ERROR}\n")
        assert wait_until(lambda: len(slack.posts()) == 1, 5), "Slack accepted the first"

        def failed_retries() -> int:
            report = health(base) or {}
            found = re.search(r"disk I/O error.*?(\d+) operations failed",
                              " ".join(report.get("reasons", [])))
            return int(found[1]) if report.get("status") == "failing" and found else 0

        assert wait_until(lambda: failed_retries() >= 4, 15), "several retries failed"
        ready_code, ready = get_json(f"{base}/readyz")
        posted_during_fault = len(slack.posts())
        faults.write_text("")
        assert wait_until(lambda: (h := health(base)) and h["status"] == "ok"
                          and h["deliveries"] == {"sent": len(STORIES)}, 20)
        assert get_json(f"{base}/readyz")[0] == 200
        alive = daemon.proc.poll() is None
        stopped = daemon.stop()
        counts = Counter(slack.alert_ids())
    assert ready_code == 503 and any("disk I/O error" in r for r in ready["reasons"]), ready
    assert posted_during_fault == 1, "no claim could be recorded, so nothing was posted"
    assert alive and stopped.code == 0
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}, \
        "dup = 0 on the Web API path"

    err = stopped.stderr
    assert len(_lines(err, "storage_failing")) == 1, "one line for the fault, not per retry"
    assert _errors(err) == _lines(err, "storage_failing")
    assert len(_lines(err, "storage_recovered")) == 1
    assert len(_lines(err, "alert_sent_unrecorded")) == 1
    assert len(_lines(err, "alert_reconciled")) == 1
    assert "Traceback" not in err
