"""Lost, emptied, damaged or replaced files, and two daemons on one data directory
(issue 8; RELIABILITY.md D10).

In-process tests cover the judgement, the lock, the watch and ``db recover``; the real
``monitor`` command covers what is about the process: a second daemon exits 3 naming the
PID that holds the folder, and a deleted queue is refused at restart and recovered with
every alert delivered once (lost = 0, duplicates = 0).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from monitor import cli
from monitor.config import Config, load_config
from monitor.datadir import (
    EMPTY,
    MISSING,
    DataDir,
    DataDirInUse,
    FileWatch,
    PairedStore,
    Side,
    StartRefused,
    check_report,
    judge,
    open_paired,
    parse_since,
    recover,
)
from monitor.models import Alert, Item
from monitor.queue.base import ITEMS
from monitor.queue.sqlite import SqliteQueue
from monitor.store.base import Priming
from monitor.store.sqlite import SqliteStore
from tests.harness.daemon import REPO, base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.pg_fixtures import PG_URL
from tests.harness.probes import wait_until
from tests.harness.slackstub import SlackStub, lost_and_duplicated

pytestmark = pytest.mark.timeout(90)


def make_config(tmp: Path, store_url: str | None = None, queue_dir: str = "data",
                sources: list[dict[str, Any]] | None = None) -> Config:
    data = base_config(tmp, sources or [], [{"name": "console", "type": "console"}])
    data["queue"] = {"path": str(tmp / queue_dir / "queue.db")}
    if store_url:
        data["store"] = {"url": store_url}
    return load_config(write_config(tmp / f"config-{queue_dir}.yaml", data), require_env=False)


def item(n: int, published: float | None = None) -> Item:
    when = dt.datetime.fromtimestamp(published or dt.datetime.now(dt.UTC).timestamp(), dt.UTC)
    return Item(id=f"i{n}", source="f", url=f"https://n.example/{n}", title=f"Story {n}",
                content="x" * 2000, key=f"https://n.example/{n}", published=when.isoformat())


def opened(config: Config) -> tuple[DataDir, SqliteStore, SqliteQueue]:
    data, store, queue = open_paired(config)
    assert isinstance(store, SqliteStore) and isinstance(queue, SqliteQueue)
    return data, store, queue


def close(*things: Any) -> None:
    for thing in things:
        if isinstance(thing, DataDir):
            thing.release()
        else:
            thing.close()


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- the judgement ---------------------------------------------------------------------------
S, Q = "store.db", "queue.db"


@pytest.mark.parametrize(("store", "queue", "ok", "lost", "words"), [
    (Side("store", S, None, 0, MISSING), Side("queue", Q, None, 0, MISSING), True, "", ""),
    (Side("store", S, "a", 1), Side("queue", Q, "a", 3), True, "", ""),
    (Side("store", S, None, 1), Side("queue", Q, None, 5), True, "", ""),  # before pairing
    (Side("store", S, "a", 0), Side("queue", Q, None, 0, MISSING), True, "", ""),  # cut short
    (Side("store", S, "a", 1), Side("queue", Q, None, 0, MISSING), False, "queue",
     "queue queue.db is missing but store store.db was paired"),
    (Side("store", S, "a", 1), Side("queue", Q, None, 0), False, "queue", "is new"),
    (Side("store", S, None, 0, EMPTY), Side("queue", Q, "a", 0), False, "store",
     "store store.db is empty (0 bytes) but queue queue.db belongs to a store"),
    (Side("store", S, None, 0), Side("queue", Q, None, 4), False, "store", "4 messages waiting"),
    (Side("store", S, "a", 1), Side("queue", Q, "b", 0), False, "pair", "do not belong"),
    (Side("store", S, None, 1), Side("queue", Q, "b", 0), False, "pair", "do not belong"),
])
def test_judge_every_combination(store: Side, queue: Side, ok: bool, lost: str,
                                 words: str) -> None:
    verdict = judge(store, queue)
    assert (verdict.ok, verdict.lost) == (ok, lost)
    assert words in verdict.problem
    if not ok:
        assert "\n" not in verdict.problem and "monitor db recover" in verdict.problem


def test_parse_since() -> None:
    assert parse_since("2h", now=10_000.0) == 2_800.0
    assert parse_since("0", now=5.0) == 5.0
    noon = dt.datetime(2025, 1, 31, 12, tzinfo=dt.UTC).timestamp()
    assert parse_since("2025-01-31T12:00") == noon == parse_since("2025-01-31T13:00+01:00")
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday")


# --- start-up: pairing, refusals, integrity --------------------------------------------------
def test_fresh_pair_then_deleted_queue_is_refused_naming_it(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data, store, queue = opened(config)
    store.mark_seen([item(1)])
    assert store.pair_id() and store.pair_id() == queue.pair_id()
    close(queue, store, data)
    remove(tmp_path / "data" / "queue.db")

    with pytest.raises(StartRefused) as refused:
        open_paired(config)
    message = str(refused.value)
    assert f"queue {tmp_path / 'data' / 'queue.db'} is missing" in message
    assert "monitor db recover" in message and "\n" not in message
    data = DataDir(config)
    data.lock()  # a refusal releases the lock
    data.release()


def test_zero_length_store_is_refused_not_treated_as_fresh(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data, store, queue = opened(config)
    store.mark_seen([item(1)])
    close(queue, store, data)
    (tmp_path / "data" / "monitor.db").write_bytes(b"")
    remove(tmp_path / "data" / "monitor.db-wal")

    with pytest.raises(StartRefused, match=r"monitor\.db is empty \(0 bytes\) but queue .*"
                                           r"restore .* from a backup.*--new-store"):
        open_paired(config)


def test_files_from_before_pairing_are_paired_unless_the_store_is_empty(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store, queue = SqliteStore(tmp_path / "data" / "monitor.db"), SqliteQueue(
        tmp_path / "data" / "queue.db")
    queue.publish_many(ITEMS, [("k", item(1).to_dict())])
    close(queue, store)
    with pytest.raises(StartRefused, match="1 messages waiting"):
        open_paired(config)  # an empty store beside a queue that holds work

    store = SqliteStore(tmp_path / "data" / "monitor.db")
    store.mark_seen([item(1)])
    close(store)
    data, store, queue = opened(config)  # a store with records: adopted, paired
    assert store.pair_id() == queue.pair_id() is not None
    close(queue, store, data)


def test_queue_from_another_pair_is_refused(tmp_path: Path) -> None:
    one, two = make_config(tmp_path, queue_dir="one"), make_config(
        tmp_path, store_url=f"sqlite:///{tmp_path / 'two' / 'monitor.db'}", queue_dir="two")
    for config in (one, two):
        data, store, queue = opened(config)
        store.mark_seen([item(1)])
        close(queue, store, data)
    (tmp_path / "two" / "queue.db").replace(tmp_path / "one" / "queue.db")
    with pytest.raises(StartRefused, match="do not belong together: one was replaced"):
        open_paired(one)


def test_garbage_in_the_middle_of_the_store_is_refused_at_start(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data, store, queue = opened(config)
    store.mark_seen([item(n) for n in range(60)])
    close(queue, store, data)
    path = tmp_path / "data" / "monitor.db"
    size = path.stat().st_size
    assert size > 20 * 4096
    with path.open("r+b") as fh:
        fh.seek(size // 2)
        fh.write(os.urandom(3 * 4096))

    with pytest.raises(StartRefused, match=r"store .*monitor\.db is damaged \(quick_check: "):
        open_paired(config)
    healthy, lines = check_report(config)
    assert not healthy
    assert any(line.startswith(f"damaged: store {path}") for line in lines), lines
    assert lines[-1].startswith("pairing not checked")


# --- the lock ----------------------------------------------------------------------------------
def test_one_lock_per_data_directory_naming_the_pid(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    first = DataDir(config)
    first.lock()
    assert (tmp_path / "data" / "monitor.lock").read_text() == f"{os.getpid()}\n"
    second = DataDir(config)
    with pytest.raises(DataDirInUse) as busy:
        second.lock()
    assert busy.value.pid == os.getpid()
    assert f"(PID {os.getpid()}, lock {tmp_path / 'data' / 'monitor.lock'})" in str(busy.value)

    assert cli.main(["db", "recover", "--config", str(tmp_path / "config-data.yaml")]) == 3
    err = capsys.readouterr().err
    assert "cannot recover: data directory" in err and f"PID {os.getpid()}" in err
    assert cli.main(["db", "check", "--config", str(tmp_path / "config-data.yaml")]) == 0

    first.release()
    assert (tmp_path / "data" / "monitor.lock").read_text() == ""
    second.lock()
    second.release()


def test_sqlite_store_in_another_folder_is_locked_too(tmp_path: Path) -> None:
    config = make_config(tmp_path, store_url=f"sqlite:///{tmp_path / 'store' / 'monitor.db'}")
    data = DataDir(config)
    data.lock()
    other = make_config(tmp_path, store_url=f"sqlite:///{tmp_path / 'store' / 'monitor.db'}",
                        queue_dir="elsewhere")
    with pytest.raises(DataDirInUse, match=r"data directory .*store is in use"):
        DataDir(other).lock()
    data.release()


# --- the watch ---------------------------------------------------------------------------------
def test_deleted_file_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "queue.db"
    path.write_bytes(b"x")
    watch = FileWatch({"queue": path}, interval=0.02).start()
    try:
        with caplog.at_level(logging.INFO, logger="monitor"):
            path.rename(tmp_path / "moved.db")
            assert wait_until(lambda: watch.reported, 5)
            ticks = watch.ticks
            assert wait_until(lambda: watch.ticks >= ticks + 5, 5)
            (tmp_path / "moved.db").rename(path)  # the very file, put back
            assert wait_until(lambda: not watch.reported, 5)
    finally:
        watch.stop()
    gone = [r.getMessage() for r in caplog.records if "data_file_gone" in r.getMessage()]
    assert len(gone) == 1 and f"role=queue file={path}" in gone[0]
    assert "monitor db recover" in gone[0]
    assert sum("data_file_back" in r.getMessage() for r in caplog.records) == 1


# --- db recover ----------------------------------------------------------------------------------
def test_recover_requeues_what_was_seen_but_not_the_primed_backlog(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data, store, queue = opened(config)
    now = dt.datetime.now(dt.UTC).timestamp()
    backlog, fresh, later = item(1, now - 7 * 86400), item(2, now - 60), item(3)
    store.mark_seen([backlog, fresh])  # the source's first poll: backlog primed, fresh queued
    store.record_poll("f", cursor={}, error=None, items=1, primed=Priming(2, 1, "1h"))
    store.mark_seen([later])
    store.add_alert(Alert(id=Alert.make_id("w", fresh.key), watchlist="w", severity="high",
                          item=fresh, matches=()), ["console"])
    seen_at = dict((i.key, t) for t, i in store.seen_items_since(0))
    assert store.last_matched_seen_at() == seen_at[fresh.key]
    close(queue, store, data)
    remove(tmp_path / "data" / "queue.db")

    data = DataDir(config)
    data.lock("recover")
    try:
        done = recover(config, data)
        assert done.lost == "queue" and not done.refused
        assert done.requeued == 2, "the fresh and the later item; not the primed backlog"
        again = recover(config, data)
        assert again.pair is None, "nothing left to recover"
        none = recover(config, data, since=parse_since("0"))
        assert none.requeued == 0 and none.pair and none.pair != done.pair
    finally:
        data.release()
    data, store, queue = opened(config)
    assert sorted(m.key for m in queue.claim(ITEMS, 10)) == [fresh.key, later.key]
    close(queue, store, data)


def test_recover_moves_a_damaged_queue_aside(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data, store, queue = opened(config)
    store.mark_seen([item(1)])
    close(queue, store, data)
    (tmp_path / "data" / "queue.db").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    with pytest.raises(StartRefused, match=r"queue .* is damaged .*`monitor db recover`"):
        open_paired(config)
    data = DataDir(config)
    data.lock("recover")
    try:
        done = recover(config, data)
    finally:
        data.release()
    assert done.requeued == 1 and done.moved and done.moved[0].exists()
    close(*opened(config))


# --- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture
def second_schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def test_postgres_store_takes_an_advisory_lock_and_pairs(
    tmp_path: Path, postgres_url: str, second_schema: str
) -> None:
    first = make_config(tmp_path, store_url=postgres_url, queue_dir="a")
    data, store, queue = open_paired(first)
    try:
        other = DataDir(make_config(tmp_path, store_url=postgres_url, queue_dir="b"))
        other.lock()  # its own folder: only the store is shared
        with pytest.raises(DataDirInUse) as busy:
            other.lock_postgres()
        other.release()
        assert busy.value.pid == os.getpid()
        assert "advisory lock 'monitor:all'" in str(busy.value)
        assert "postgres@" not in str(busy.value)
        elsewhere = DataDir(make_config(tmp_path, store_url=second_schema, queue_dir="c"))
        elsewhere.lock_postgres()  # another schema is another instance
        elsewhere.release()
        assert isinstance(queue, SqliteQueue) and isinstance(store, PairedStore)
        assert queue.pair_id() == store.pair_id() is not None
        store.mark_seen([item(1)])
    finally:
        close(queue, store, data)
    remove(tmp_path / "a" / "queue.db")
    with pytest.raises(StartRefused, match=r"queue .*a/queue\.db is missing but store "
                                           r"PostgreSQL 127\.0\.0\.1:5432/test was paired"):
        open_paired(first)


# --- the real command --------------------------------------------------------------------------
STORIES = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/{n}") for n in range(50)]


def slack_config(tmp_path: Path, slack: SlackStub, url: str,
                 **source: Any) -> tuple[Path, dict[str, str]]:
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 200,
                "burst": 100}
    config = base_config(tmp_path, [{"name": "f", "url": url, **source}], [notifier])
    config["delivery"]["lease"] = "1s"
    env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    return write_config(tmp_path / "config.yaml", config), env


def queued(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM messages WHERE attempts > 0")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


def test_queue_deleted_under_a_running_daemon_is_refused_then_recovered(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    """The issue's case: 50 matching items seen and queued but not matched (the matcher is
    held by a failpoint) when queue.db is deleted. A second daemon and `db recover` are
    refused while the first runs; the deletion is logged once; the restart is refused with
    the way out; after `db recover` every alert is delivered exactly once."""
    url = feed_stub.serve("/f.xml", rss(STORIES))
    data = tmp_path / "data"
    with SlackStub() as slack:
        config, env = slack_config(tmp_path, slack, url, interval="1h")
        log_path = tmp_path / "daemon.log"
        with log_path.open("w") as log_file:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)], cwd=REPO,
                env={k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
                | env | {"MONITOR_FAILPOINTS": "after_claim=sleep:120"},
                stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            assert wait_until(lambda: queued(data / "queue.db") == len(STORIES), 20), \
                log_path.read_text()
            second = run_monitor("run", "--config", str(config), env=env, timeout=30)
            assert second.code == 3, second.stderr
            assert second.stderr.startswith(f"monitor: not started: data directory {data} is "
                                            f"in use by another monitor (PID {daemon.pid}, ")
            assert run_monitor("db", "recover", "--config", str(config)).code == 3
            assert run_monitor("status", "--config", str(config)).code in (0, 1)

            remove(data / "queue.db")
            assert wait_until(lambda: "data_file_gone" in log_path.read_text(), 10)
            assert (data / "monitor.lock").read_text() == f"{daemon.pid}\n"
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
        assert log_path.read_text().count("data_file_gone") == 1
        assert slack.posts() == [], "nothing was matched before the crash"

        refused = run_monitor("run", "--once", "--config", str(config), env=env)
        assert refused.code == 3
        assert f"queue {data / 'queue.db'} is missing but store" in refused.stderr
        assert "monitor db recover" in refused.stderr
        assert slack.posts() == []

        recovered = run_monitor("db", "recover", "--config", str(config))
        assert recovered.code == 0, recovered.stderr
        assert f"queued {len(STORIES)} items seen since" in recovered.stdout
        for _ in range(2):  # the second run finds nothing new: no repeat
            again = run_monitor("run", "--once", "--config", str(config), env=env)
            assert again.code == 0, again.stderr
        counts = Counter(slack.alert_ids())
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}


def test_emptied_store_is_refused_and_a_new_store_does_not_alert_again(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    url = feed_stub.serve("/f.xml", rss(STORIES[:10]))
    data = tmp_path / "data"
    with SlackStub() as slack:
        config, env = slack_config(tmp_path, slack, url)
        first = run_monitor("run", "--once", "--config", str(config), env=env)
        assert first.code == 0 and len(slack.posts()) == 10, first.stderr
        (data / "monitor.db").write_bytes(b"")

        refused = run_monitor("run", "--once", "--config", str(config), env=env)
        assert refused.code == 3
        assert f"store {data / 'monitor.db'} is empty (0 bytes) but queue" in refused.stderr
        checked = run_monitor("db", "check", "--config", str(config))
        assert checked.code == 1 and "empty: store" in checked.stdout
        assert "not paired: " in checked.stdout
        plain = run_monitor("db", "recover", "--config", str(config))
        assert plain.code == 1 and "--new-store" in plain.stderr

        recovered = run_monitor("db", "recover", "--new-store", "--config", str(config))
        assert recovered.code == 0, recovered.stderr
        assert "source f: 10 items marked seen, 0 queued" in recovered.stdout
        again = run_monitor("run", "--once", "--config", str(config), env=env)
        assert again.code == 0, again.stderr
        assert run_monitor("db", "check", "--config", str(config)).code == 0
        counts = Counter(slack.alert_ids())
    assert len(counts) == 10 and set(counts.values()) == {1}, "duplicates = 0"
