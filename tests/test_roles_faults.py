"""Roles under load and under faults: several ``match`` and ``notify`` instances share the
work; a ``match`` instance SIGKILLed mid-stream, or stalled (SIGSTOP) past the consumer
session timeout, loses nothing and duplicates nothing (RELIABILITY.md D06).

Everything is real: ``monitor run --role …`` subprocesses (``tests/harness/daemon.py``),
a Kafka-protocol broker (Tansu, ``tests/harness/kafka.py``; consumer session timeout
6 s), PostgreSQL (``pg_fixtures``), FeedStub serving the feeds and SlackStub receiving the
posts. The faults are real signals to the daemon processes (SIGKILL, SIGSTOP/SIGCONT);
the rebalances they cause are the broker's, observed through the consumers' INFO lines
(``kafka_assigned``, ``kafka_revoked``, ``kafka_commit_lost``). "Exactly once" is checked
on what SlackStub accepted: every expected alert id posted, none posted twice
(``lost_and_duplicated``), after a short settle period for late duplicates.
Without tansu or PostgreSQL these tests skip with the reason (a failure under CI=true).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import Broker, kafka_queue_config
from tests.harness.slackstub import Reply, SlackStub, lost_and_duplicated
from tests.harness.xdist import HEAVY

pytestmark = [pytest.mark.timeout(120), HEAVY]  # typical: 40-50 s; test 1 has its own

SETTLE = 2.0  # after the last expected post: long enough for a late duplicate to show
ROLES = ["match", "match", "notify", "notify", "poll"]  # consumers first
ASSIGNED = re.compile(r"kafka_assigned group=(\S+) partitions=(\S*)")


# --- helpers -------------------------------------------------------------------------------
def _sources(feed_stub: FeedStub, feeds: int, per_feed: int) -> list[dict[str, Any]]:
    """``feeds`` feeds of ``per_feed`` entries, every one matching the shipped rules.

    Polled every 5 s: later polls are cheap 304s, and a first poll whose 500 records the
    loaded broker did not take within ``queue.timeout`` (``poll_failed``, seen on 2 cores)
    is polled again 5 s later rather than after a minute."""
    sources = []
    for f in range(feeds):
        entries = [Entry(f"Convoy {f}-{n} reaches Ar-Rutbah", f"https://n.example/{f}/{n}")
                   for n in range(per_feed)]
        sources.append({"name": f"f{f}", "url": feed_stub.serve(f"/f{f}.xml", rss(entries)),
                        "interval": "5s"})
    return sources


def _config(tmp_path: Path, sources: list[dict[str, Any]], slack: SlackStub,
            kafka_broker: Broker, kafka_prefix: str, postgres_url: str,
            partitions: int = 2) -> tuple[Path, dict[str, str]]:
    """A config for the roles (upgraded database included) and the daemons' environment."""
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 500}
    env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, sources, [notifier], store={"url": postgres_url},
        queue=kafka_queue_config(kafka_broker, kafka_prefix, partitions=partitions)))
    upgraded = run_monitor("db", "upgrade", "--config", str(config), timeout=60)
    assert upgraded.code == 0, upgraded.stderr
    return config, env


def _wait(what: str, done: Callable[[], bool], running: list[Daemon], timeout: float,
          step: float = 0.1) -> None:
    """Poll ``done`` until it holds; fail on the deadline or if a daemon in ``running``
    exits meanwhile (with the tail of its log)."""
    deadline = time.monotonic() + timeout
    while not done():
        for d in running:
            if d.proc.poll() is not None:
                pytest.fail(f"waiting for {what}: pid {d.pid} exited with {d.proc.returncode}"
                            f"\n{d.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:g}s")
        time.sleep(step)


def _assignments(log: str, group: str) -> list[set[str]]:
    """Every ``kafka_assigned`` of ``group`` in a log, oldest first, as sets of
    ``items:N`` partitions (the retry topic's partitions left out)."""
    return [{p for p in parts.split(",") if p.startswith("items:")}
            for g, parts in ASSIGNED.findall(log) if g == group]


def _item_partitions(partitions: int) -> set[str]:
    return {f"items:{n}" for n in range(partitions)}


def _stop_all(daemons: list[Daemon]) -> list[tuple[int, str]]:
    """SIGTERM every daemon still running, once and all at once (a second SIGTERM means
    "exit now", code 130); then wait for each: (exit code, log) of each."""
    for d in daemons:
        if d.proc.poll() is None:
            d.proc.terminate()
    results = [d.stop(sig=0, timeout=30) for d in daemons]  # signal 0: nothing sent
    return [(r.code, r.stderr) for r in results]


# A poll role stopped by SIGTERM exits 1: ``App._shutdown`` (monitor/app.py, ``await
# asyncio.wait(workers, ...)``) is given no workers for ``--role poll`` and asyncio.wait
# raises on an empty set, so the poller's leases are not released either. Reported, not
# fixed here; tolerated in exactly that form so the rest of these tests can run.
def _exits(logs: list[tuple[int, str]]) -> list[int]:
    """Each daemon's exit code (every role shuts down cleanly on one SIGTERM: 0)."""
    return [code for code, _ in logs]


def _troubles(logs: list[tuple[int, str]]) -> list[dict[str, int]]:
    """Per daemon, how often each WARNING/ERROR event appeared (for the printed summary)."""
    out = []
    for _, log in logs:
        events = Counter[str]()
        for line in log.splitlines():
            parts = line.split(" ", 4)
            if len(parts) == 5 and parts[1] in ("WARNING", "ERROR"):
                events[f"{parts[1]} {parts[3]}"] += 1
        out.append(dict(events))
    return out


def _tails(logs: list[tuple[int, str]], size: int = 1500) -> list[str]:
    return [f"exit={code}: {log[-size:]}" for code, log in logs]


# --- 1. 5,000 alerts through two of each consumer role, one match instance SIGKILLed ------
FAULT_FEEDS, FAULT_PER_FEED, FAULT_PARTITIONS = 4, 500, 4  # 2,000 alerts; 2 partitions each
#: 5,000 alerts (the issue's figure) with MONITOR_SCALE_ALERTS=5000 (`make bench` runs it:
#: about 80 s, delivery-bound); 2,000 in the suite, which must stay near 10 minutes.
KILL_FEEDS = int(os.environ.get("MONITOR_SCALE_ALERTS", "2000")) // FAULT_PER_FEED


def _start_split(config: Path, env: dict[str, str], group: str) -> list[Daemon]:
    """Start two match and two notify instances, wait until the match instances hold
    half the item partitions each (so a fault to one of them takes real work away), then
    start the poller. Returns the daemons in ROLES order."""
    every = _item_partitions(FAULT_PARTITIONS)
    daemons = [Daemon(config, env, args=("--role", role)) for role in ROLES[:4]]

    def split() -> bool:
        held = [_assignments(d.log_text(), group) for d in daemons[:2]]
        return all(held) and all(h[-1] for h in held) and held[0][-1] | held[1][-1] == every

    try:
        _wait("both match instances holding item partitions", split, daemons, 60)
    except BaseException:
        _stop_all(daemons)
        raise
    return [*daemons, Daemon(config, env, args=("--role", "poll"))]


def _later_assignment_of_all(d: Daemon, group: str, before: int) -> Callable[[], bool]:
    every = _item_partitions(FAULT_PARTITIONS)
    return lambda: any(a == every for a in _assignments(d.log_text(), group)[before:])


@pytest.mark.timeout(210)  # typical: 35 s at 2,000 alerts, 80 s at 5,000 (~70 posts/s)
def test_alerts_through_two_match_and_two_notify_instances_post_once_though_one_is_killed(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    """Two match and two notify instances share 2,000 items (5,000 under ``make bench``,
    see KILL_FEEDS); one match instance is
    SIGKILLed mid-stream: the other takes its partitions over (after the 6 s session
    timeout), nothing is lost and no alert is posted twice; both notify instances post."""
    expected = KILL_FEEDS * FAULT_PER_FEED
    group = f"{kafka_prefix}-match"
    with SlackStub() as slack:
        config, env = _config(tmp_path, _sources(feed_stub, KILL_FEEDS, FAULT_PER_FEED),
                              slack, kafka_broker, kafka_prefix, postgres_url,
                              partitions=FAULT_PARTITIONS)
        daemons = _start_split(config, env, group)
        victim, survivor, others = daemons[0], daemons[1], daemons[1:]
        try:
            started = time.monotonic()
            _wait("the victim matching items", lambda: victim.log_text().count(
                "item_matched") >= 50, daemons, 60, step=0.05)
            before = len(_assignments(survivor.log_text(), group))
            victim.proc.kill()
            victim.proc.wait(timeout=10)
            killed_at = time.monotonic()
            posted_at_kill = len(slack.posts())
            matched_at_kill = [d.log_text().count("item_matched") for d in (victim, survivor)]
            _wait("the survivor taking every item partition",
                  _later_assignment_of_all(survivor, group, before), others, 45)
            takeover = time.monotonic() - killed_at
            _wait(f"{expected} distinct posts", lambda: len(set(slack.alert_ids())) >= expected,
                  others, 150, step=0.5)
            took = time.monotonic() - started
            time.sleep(SETTLE)
            ids = Counter(slack.alert_ids())
            alive = [d.proc.poll() is None for d in others]
        finally:
            logs = _stop_all(daemons)
    survivor_log = logs[1][1]
    print(f"\nSIGKILLed a match instance after {matched_at_kill} alerts matched (victim, "
          f"survivor) and {posted_at_kill}/{expected} posted; the survivor held all "
          f"{FAULT_PARTITIONS} item partitions {takeover:.1f}s later; all posted "
          f"{took:.1f}s after the poller started; survivor matched "
          f"{survivor_log.count('item_matched')} in all, commits lost "
          f"{survivor_log.count('kafka_commit_lost')}; exit codes {[c for c, _ in logs]}; "
          f"warnings/errors {_troubles(logs)}")
    assert posted_at_kill < expected, "the kill came after the last post: not mid-stream"
    assert sum(matched_at_kill) < expected, ("everything was matched before the kill",
                                             matched_at_kill)
    assert lost_and_duplicated(ids, expected) == {"lost": 0, "duplicated": 0}, _tails(logs)
    assert all(alive), (alive, _tails(logs[1:]))
    assert logs[0][0] == -signal.SIGKILL
    assert _exits(logs[1:]) == [0] * len(others), _tails(logs[1:])
    sent = [log.count("alert_sent") for _, log in logs[2:4]]
    assert all(n > 0 for n in sent), f"both notify instances posted alerts: {sent}"
    assert sum(sent) == expected, sent


# --- 2. a match instance stalled past the session timeout (D06) ----------------------------
# (module timeout: typical 50 s, of which 15 s is the stall)
STALL = 15.0  # seconds of SIGSTOP: more than the 6 s session timeout
SLOW_REPLY = 0.01  # seconds SlackStub waits before it answers each post
WOKE = ("kafka_commit_lost", "kafka_revoked", "kafka_assigned")


def test_a_stalled_match_instance_is_rebalanced_without_loss_or_duplicates(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    """D06: while items flow and Slack answers slowly, one match instance freezes
    (SIGSTOP) for longer than the session timeout; the group goes on without it. When it
    wakes (SIGCONT), its late commit is refused (``kafka_commit_lost``) or it rejoins the
    group; nothing is lost or posted twice, and both match instances are still up."""
    expected = FAULT_FEEDS * FAULT_PER_FEED
    group = f"{kafka_prefix}-match"
    with SlackStub() as slack:
        slack.script([Reply.ok(delay=SLOW_REPLY)] * expected)
        config, env = _config(tmp_path, _sources(feed_stub, FAULT_FEEDS, FAULT_PER_FEED),
                              slack, kafka_broker, kafka_prefix, postgres_url,
                              partitions=FAULT_PARTITIONS)
        daemons = _start_split(config, env, group)
        frozen, other = daemons[0], daemons[1]
        try:
            _wait("the instance to freeze matching items", lambda: frozen.log_text().count(
                "item_matched") >= 50, daemons, 60, step=0.05)
            before = len(_assignments(other.log_text(), group))
            mark = len(frozen.log_text().encode())
            frozen.proc.send_signal(signal.SIGSTOP)
            stopped_at = time.monotonic()
            matched_at_stop = [d.log_text().count("item_matched") for d in (frozen, other)]
            posted_at_stop = len(slack.posts())
            try:
                _wait("the other instance taking every item partition",
                      _later_assignment_of_all(other, group, before), daemons[1:], STALL)
                takeover = time.monotonic() - stopped_at
                time.sleep(max(0.0, STALL - (time.monotonic() - stopped_at)))
            finally:
                frozen.proc.send_signal(signal.SIGCONT)

            def woke() -> list[str]:
                after = frozen.log_text().encode()[mark:].decode("utf-8", "replace")
                return [line.split(" monitor.queue ", 1)[-1][:200]
                        for line in after.splitlines() if any(w in line for w in WOKE)]

            _wait("the woken instance's late commit refused, or its rejoin",
                  lambda: bool(woke()), daemons, 45)
            _wait(f"{expected} distinct posts", lambda: len(set(slack.alert_ids())) >= expected,
                  daemons, 90, step=0.5)
            time.sleep(SETTLE)
            events = woke()
            ids = Counter(slack.alert_ids())
            alive = [d.proc.poll() is None for d in daemons]
        finally:
            logs = _stop_all(daemons)
    matched = [log.count("item_matched") for _, log in logs[:2]]
    print(f"\nSIGSTOPped a match instance for {STALL:g}s after {matched_at_stop} alerts "
          f"matched (frozen, other) and {posted_at_stop}/{expected} posted; the other held "
          f"every item partition {takeover:.1f}s into the stall; the frozen one's queue "
          f"events after the stall: {events}; alerts matched per instance {matched}; "
          f"exit codes {[c for c, _ in logs]}; warnings/errors {_troubles(logs)}")
    for line in logs[0][1][mark:].splitlines():  # what the woken instance complained of
        if " ERROR " in line or " WARNING " in line:
            print("  frozen instance after the stall:", line[:400])
    assert posted_at_stop < expected and sum(matched_at_stop) < expected, (
        "the stall came after the stream: not while items flowed")
    assert events, "the woken instance neither lost a commit nor rejoined"
    assert lost_and_duplicated(ids, expected) == {"lost": 0, "duplicated": 0}, (
        events, _tails(logs))
    assert all(alive), (alive, events, _tails(logs))
    assert _exits(logs) == [0] * len(ROLES), (events, _tails(logs))


# --- 3. a watchlist edit reaches every match instance -------------------------------------
def test_a_watchlist_edit_reaches_every_match_instance(
    tmp_path: Path, kafka_broker: Broker, kafka_prefix: str, postgres_url: str
) -> None:
    """Each match instance watches the rules folder itself: an edit there (a ConfigMap
    update, a file written on a shared volume) is matched by every instance, whichever
    partitions it holds. Items are produced straight to the items topic; what the match
    group made of them is read back from the alerts topic by a group of the test's own."""
    from monitor.queue.base import ALERTS, ITEMS
    from monitor.queue.kafka import KafkaQueue

    rules = tmp_path / "rules"
    rules.mkdir()
    watchlist = rules / "w.yaml"
    watchlist.write_text("watchlist: w\nterms:\n  - {id: rutba, name: Rutba, kind: place}\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "idle", "url": "http://127.0.0.1:9/f.xml", "enabled": False}],
        [{"name": "console", "type": "console"}], rules=str(rules), store={"url": postgres_url},
        queue=kafka_queue_config(kafka_broker, kafka_prefix, partitions=FAULT_PARTITIONS)))
    assert run_monitor("db", "upgrade", "--config", str(config), timeout=60).code == 0
    group = f"{kafka_prefix}-match"
    every = _item_partitions(FAULT_PARTITIONS)
    matchers = [Daemon(config, args=("--role", "match")) for _ in range(2)]
    queue = KafkaQueue(kafka_broker.bootstrap, prefix=kafka_prefix, timeout=10,
                       session_timeout=6)
    try:
        def split() -> bool:
            held = [_assignments(d.log_text(), group) for d in matchers]
            return all(held) and all(h[-1] for h in held) and held[0][-1] | held[1][-1] == every

        _wait("both match instances holding item partitions", split, matchers, 60)
        watchlist.write_text("watchlist: w\nterms:\n  - {id: rutba, name: Rutba, kind: place}\n"
                             "  - {id: palmyra, name: Palmyra, kind: place}\n")
        _wait("both instances reloading the watchlist", lambda: all(
            "config_reload ok=yes" in d.log_text() for d in matchers), matchers, 30)
        stories = 24  # keys spread over the 4 partitions: both instances get some
        queue.publish_many(ITEMS, [(f"k{n}", {"id": f"i{n}", "source": "s", "key": f"k{n}",
                                              "title": f"Shelling near Palmyra, report {n}"})
                                   for n in range(stories)])
        alerts = queue.subscribe(ALERTS, group=f"{kafka_prefix}-reader")
        got: set[str] = set()
        deadline = time.monotonic() + 45
        while len(got) < stories and time.monotonic() < deadline:
            batch = alerts.poll(100, timeout=0.5)
            got |= {m.payload["item"]["id"] for m in batch
                    if any(x["term"] == "palmyra" for x in m.payload["matches"])}
            alerts.commit(batch)
        alerts.close()
    finally:
        queue.close()
        logs = _stop_all(matchers)
    assert len(got) == stories, (sorted(got), _tails(logs))
    by_instance = [log.count("terms=['Palmyra']") for _, log in logs]
    assert all(n > 0 for n in by_instance), f"each instance matched the new term: {by_instance}"
    assert _exits(logs) == [0, 0], _tails(logs)
