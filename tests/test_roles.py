"""``monitor run --role poll|match|notify`` (issue 9): roles need Kafka and PostgreSQL;
several pollers share the sources through the store's source leases (each source polled
once per interval). Several match and notify instances: ``test_roles_faults.py``.

Real servers: Tansu (``tests/harness/kafka.py``), PostgreSQL (``pg_fixtures``), FeedStub
and real ``monitor run`` subprocesses. Without tansu or PostgreSQL the
Kafka+PostgreSQL tests skip with the reason (a failure under CI=true).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from monitor.app import ROLE_STAGES, loops_for
from monitor.commands.run import ROLES
from monitor.config import Config
from monitor.poller import Poller, lease_until
from monitor.queue.sqlite import SqliteQueue
from monitor.sources.base import Cursor, PollResult, Source
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import UNRELATED, rss
from tests.harness.feedstub import FeedStub
from tests.harness.kafka import Broker, kafka_queue_config
from tests.harness.xdist import HEAVY

pytestmark = [pytest.mark.timeout(120), HEAVY]

CONSOLE = {"name": "console", "type": "console"}


def _stop_all(daemons: list[Daemon]) -> list[str]:
    """SIGTERM every daemon once, all at once (a second SIGTERM means "exit now"), then
    collect their logs; each must have shut down cleanly (exit 0)."""
    for d in daemons:
        d.proc.terminate()
    results = [d.stop(sig=0, timeout=30) for d in daemons]
    for r in results:
        assert r.code == 0, f"exit {r.code}:\n{r.stderr[-2000:]}"
    return [r.stderr for r in results]


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


class _SlowFeed(Source):
    """A source whose fetch takes ``seconds``: a slow feed, or a poll that started late on
    a loaded host."""

    def __init__(self, seconds: float) -> None:
        self.name, self.url, self.seconds = "f", "http://127.0.0.1/f.xml", seconds

    async def poll(self, cursor: Cursor | None) -> PollResult:
        await asyncio.sleep(self.seconds)
        return PollResult([], Cursor())


def test_a_poll_holds_its_lease_for_an_interval_from_the_end_of_its_fetch(
    tmp_path: Path,
) -> None:
    """Seen once under load: two pollers fetched one source 0.4 s apart, because the lease
    ran from the start of a fetch that took most of the interval. The lease is renewed
    when the poll ends, so the other poller waits a full interval from there."""
    config = Config.model_validate({"sources": [{"name": "f", "url": "http://127.0.0.1/f.xml",
                                                 "interval": 2}]})
    store, queue = SqliteStore(tmp_path / "s.db"), SqliteQueue(tmp_path / "q.db")
    try:
        poller = Poller(config, store, queue, holder="A", shared=True)
        assert asyncio.run(poller.poll(_SlowFeed(1.5), config.sources[0])).ok
        ended = time.time()
        # Taken at the start, the lease would have ended 0.3 s from here (2 s - 0.2 s margin).
        time.sleep(0.5)
        assert not store.take_poll_lease("f", "B", time.time() + 30), "still A's"
        wait = lease_until(ended, 2.0) - time.time() + 0.05
        time.sleep(max(0.0, wait))
        assert store.take_poll_lease("f", "B", time.time() + 30), "A's interval is over"
    finally:
        store.close()
        queue.close()


def test_a_late_run_is_not_followed_at_once_by_the_next_on_time_run(tmp_path: Path) -> None:
    """The scheduler keeps run times on each source's grid: a run a busy host started late
    was followed by the next, on time, 0.4 s later (two fetches inside one 2 s interval).
    The daemon's poller skips a run that comes less than half an interval after the last
    one started; ``run --once`` and callers without a holder name are not paced."""
    config = Config.model_validate({"sources": [{"name": "f", "url": "http://127.0.0.1/f.xml",
                                                 "interval": 2}]})
    sc = config.sources[0]
    store, queue = SqliteStore(tmp_path / "s.db"), SqliteQueue(tmp_path / "q.db")
    try:
        daemon = Poller(config, store, queue, holder="A")
        assert not asyncio.run(daemon.poll(_SlowFeed(0), sc)).skipped
        assert asyncio.run(daemon.poll(_SlowFeed(0), sc)).skipped, "0 s after: skipped"
        time.sleep(1.05)
        assert not asyncio.run(daemon.poll(_SlowFeed(0), sc)).skipped, "half an interval on"
        once = Poller(config, store, queue, holder="B", once=True)
        assert not any(asyncio.run(once.poll(_SlowFeed(0), sc)).skipped for _ in range(2))
    finally:
        store.close()
        queue.close()


# --- (b) two pollers share 200 sources -----------------------------------------------------
SOURCES = 200
# 3 s: 200 sources make 67 polls/s on two cores; the feed server in this process then
# records a request up to about a second after it was sent (seen: one poller's two runs
# 0.59 s apart by the server's clock, though started 1.5 s apart or more).
INTERVAL = 3.0
INTERVALS = 3


def test_b_two_pollers_poll_each_source_once_per_interval(
    tmp_path: Path, feed_stub: FeedStub, kafka_broker: Broker, kafka_prefix: str,
    postgres_url: str
) -> None:
    body = rss(UNRELATED[:2])
    # Each poller reads its own copy of the config whose feed URLs carry its name in the
    # query (the feed server routes on the path alone): the server then knows which poller
    # sent each request, and the lease's promise can be checked exactly (below).
    configs = []
    for who in ("A", "B"):
        sources = [{"name": f"s{i:03d}",
                    "url": feed_stub.serve(f"/f{i:03d}.xml", body) + f"?poller={who}",
                    "interval": f"{INTERVAL:g}s", "jitter": 0} for i in range(SOURCES)]
        configs.append(write_config(tmp_path / f"config-{who}.yaml", base_config(
            tmp_path, sources, [CONSOLE], queue=kafka_queue_config(kafka_broker, kafka_prefix),
            store={"url": postgres_url})))
    upgraded = run_monitor("db", "upgrade", "--config", str(configs[0]), timeout=60)
    assert upgraded.code == 0, upgraded.stderr
    pollers = [Daemon(config, args=("--role", "poll")) for config in configs]
    try:
        # The daemon staggers first polls over at most one interval: wait until
        # every source has had its first poll plus three intervals.
        deadline = time.monotonic() + 80
        while time.monotonic() < deadline:
            if len(_polls(feed_stub)) == SOURCES:
                break
            assert all(d.proc.poll() is None for d in pollers), "a poller exited"
            time.sleep(0.5)
        assert len(_polls(feed_stub)) == SOURCES
        time.sleep(INTERVALS * INTERVAL + 1.0)
        by_source = _polls(feed_stub)
    finally:
        logs = _stop_all(pollers)
    for log in logs:
        assert "started role=poll" in log, log[-2000:]
    counts, handoffs, closest = Counter[int](), 0, float(INTERVAL)
    for path, polls in by_source.items():
        window = [p for p in polls if p[0] < polls[0][0] + INTERVALS * INTERVAL]
        counts[len(window)] += 1
        # Never more than once per interval: at most one extra poll in any three intervals.
        assert len(window) <= INTERVALS + 1, (path, polls)
        # And never starved: polled again during the ten seconds watched. Not "every
        # interval": on a loaded host a poll may wait seconds (a poller opens four
        # connections per host, which 200 sources share here; the parser workers), and
        # the scheduler drops the run that comes due meanwhile (seen in CI: one source's
        # polls 9.06 s apart, both by one poller).
        assert len(polls) >= INTERVALS - 1, (path, polls)
        for (t1, who1), (t2, who2) in itertools.pairwise(polls):
            if who1 == who2:
                continue
            # A poller renews a source's lease when its poll ends, to the next interval less
            # the margin; the other may take it only after that. Its request reached the
            # server after it took the lease, the first poller's before its poll ended, so
            # the two requests are at least that far apart, however loaded the host (a race
            # between pollers is 0 s). One poller's own runs are paced by MIN_GAP; the
            # server records them late by as much as a loaded host delays its threads.
            handoffs += 1
            closest = min(closest, t2 - t1)
            assert t2 - t1 >= lease_until(0, INTERVAL) - 0.05, (path, polls, [
                [line for line in log.splitlines() if f"source=s{path[2:5]} " in line]
                for log in logs])
    # Not asserted: that both pollers do work. A live poller keeps the sources it leased,
    # so whichever comes first may hold them all while the other stands by (it takes over
    # what the first stops renewing); seen split [1237, 531] and [0, 905]. Balancing the
    # sources between live pollers is left (DESIGN.md, "Source leases").
    both = [log.count("polled source=") for log in logs]
    print(f"polls per source in {INTERVALS} intervals: {dict(counts)}; hand-overs between "
          f"pollers: {handoffs}, closest {closest:.2f}s apart; polls by poller: {both}")


def _polls(stub: FeedStub) -> dict[str, list[tuple[float, str]]]:
    """Each source's requests at the feed server, in order: (time, poller)."""
    by_source: dict[str, list[tuple[float, str]]] = {}
    for r in stub.requests:
        path, _, query = r.path.partition("?poller=")
        by_source.setdefault(path, []).append((r.time, query))
    for polls in by_source.values():
        polls.sort()
    return by_source


# (c) poll + 2 match + 2 notify posting 5,000 alerts exactly once, and the same under a
# SIGKILL or a SIGSTOP of one match instance: tests/test_roles_faults.py.
