"""Contract tests for Queue and Store: one body per behaviour, run over every backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.models import Alert, Item
from monitor.queue.base import ITEMS, Queue
from monitor.queue.sqlite import SqliteQueue
from monitor.store.base import Store
from monitor.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    q = SqliteQueue(tmp_path / "queue.db")
    yield q
    q.close()


@pytest.fixture(params=["sqlite", "postgres"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Opens a store on the same database each time it is called (a restart)."""
    if request.param == "postgres":
        from monitor.store.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")
        return lambda: PostgresStore(url)
    return lambda: SqliteStore(tmp_path / "store.db")


@pytest.fixture
def store(reopen: Callable[[], Store]) -> Iterator[Store]:
    s = reopen()
    yield s
    s.close()


def item(n: int, **kw: str) -> Item:
    fields = {"id": f"i{n}", "source": "feed", "title": f"title {n}", "key": f"k{n}"} | kw
    return Item(**fields)  # type: ignore[arg-type]


def alert(n: int) -> Alert:
    return Alert(id=f"a{n}", watchlist="w", severity="high", item=item(n), matches=(),
                 created_at=time.time())


def test_unacked_message_comes_back_after_its_lease(queue: Queue) -> None:
    queue.publish_many(ITEMS, [("k1", {"n": 1})])
    (first,) = queue.claim(ITEMS, 10, lease=0.2)
    assert queue.claim(ITEMS, 10) == []
    time.sleep(0.3)
    (again,) = queue.claim(ITEMS, 10)
    assert again.payload == {"n": 1} and again.attempts == 2
    assert not queue.ack(first), "a lost lease must not ack someone else's claim"
    assert queue.ack(again)
    assert queue.depth(ITEMS) == 0


def test_queue_keeps_order_and_ignores_duplicate_keys(queue: Queue) -> None:
    assert queue.publish_many(ITEMS, [(f"k{i}", {"n": i}) for i in range(5)]) == 5
    assert queue.publish_many(ITEMS, [("k1", {"n": 99})]) == 0
    assert [m.payload["n"] for m in queue.claim(ITEMS, 10)] == [0, 1, 2, 3, 4]


def test_queue_survives_reopen(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db")
    q.publish_many(ITEMS, [("k", {"x": 1})])
    q.close()
    q2 = SqliteQueue(tmp_path / "q.db")
    assert [m.payload for m in q2.claim(ITEMS, 1)] == [{"x": 1}]
    q2.close()


def test_poison_message_is_dead_lettered_after_max_attempts(queue: Queue) -> None:
    queue.publish_many(ITEMS, [("bad", {}), ("good", {})])
    for attempt in range(1, 6):
        msgs = {m.key: m for m in queue.claim(ITEMS, 10)}
        if "good" in msgs:
            queue.ack(msgs["good"])
        dead = queue.nack(msgs["bad"], delay=0, error="TypeError: boom", max_attempts=5)
        assert dead == (attempt == 5)
    assert queue.claim(ITEMS, 10) == []
    assert queue.dead(ITEMS) == [("bad", "TypeError: boom")]


def test_seen_by_key_or_guid_across_reopen(reopen: Callable[[], Store]) -> None:
    s = reopen()
    first = item(1, guid="g1")
    assert s.unseen([first, first]) == [first]
    s.mark_seen([first])
    s.close()
    s = reopen()
    same_guid = item(2, guid="g1")
    same_key = item(3, key="k1")
    new = item(4)
    assert s.unseen([same_guid, same_key, new]) == [new]
    assert [i.id for i in s.items_since(0)] == ["i1"]
    s.close()


def test_cursor_saved_only_on_success(store: Store) -> None:
    assert store.record_poll("f", cursor={"etag": "1"}, error=None, items=3) == 0
    assert store.record_poll("f", cursor={"etag": "2"}, error="timeout", items=0) == 1
    assert store.record_poll("f", cursor=None, error="timeout", items=0) == 2
    state = store.source_state("f")
    assert state is not None
    assert state.cursor == {"etag": "1"} and state.failures == 2 and state.items_total == 3


def test_alert_is_stored_once_with_one_delivery_per_destination(store: Store) -> None:
    assert store.add_alert(alert(1), ["console", "slack"])
    assert not store.add_alert(alert(1), ["console", "slack"])
    tasks = store.claim_deliveries(10, 60, ["console", "slack"])
    assert sorted(t.destination for t in tasks) == ["console", "slack"]
    assert store.claim_deliveries(10, 60, ["console", "slack"]) == []
    assert all(store.mark_sent(t, "ref") for t in tasks)
    assert store.delivery_counts() == {"sent": 2}


def test_paused_destination_is_not_claimed_until_pause_ends(store: Store) -> None:
    store.add_alert(alert(1), ["slack"])
    store.pause_destination("slack", time.time() + 0.3)
    assert store.claim_deliveries(10, 60, ["slack"]) == []
    due = store.next_delivery_due(["slack"])
    assert due is not None and due > time.time()
    time.sleep(0.35)
    assert len(store.claim_deliveries(10, 60, ["slack"])) == 1


def test_expired_sending_lease_is_reclaimed_as_ambiguous(store: Store) -> None:
    store.add_alert(alert(1), ["slack"])
    (first,) = store.claim_deliveries(1, 0.1, ["slack"])
    assert not first.ambiguous
    time.sleep(0.2)
    (again,) = store.claim_deliveries(1, 60, ["slack"])
    assert again.ambiguous and again.attempts == 2
    assert not store.mark_sent(first, "late"), "the zombie's lease is fenced off"
    assert store.mark_sent(again, "ts")


def test_retry_and_dead_states(store: Store) -> None:
    store.add_alert(alert(1), ["slack"])
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    assert store.mark_retry(task, delay=0.0, error="500")
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    assert store.mark_dead(task, "channel_not_found")
    assert store.claim_deliveries(1, 60, ["slack"]) == []
    assert store.next_delivery_due(["slack"]) is None
    (row,) = store.deliveries("a1")
    assert row["state"] == "dead" and row["last_error"] == "channel_not_found"


def test_revive_makes_dead_deliveries_due_with_a_fresh_age(store: Store) -> None:
    old = Alert(id="a9", watchlist="w", severity="high", item=item(9), matches=(),
                created_at=time.time() - 3 * 86400)
    store.add_alert(old, ["slack"])
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    store.mark_dead(task, "channel_not_found")
    assert store.revive(["other"]) == 0
    assert store.revive() == 1
    (task,) = store.claim_deliveries(1, 60, ["slack"])
    assert task.attempts == 1 and task.alert.created_at > time.time() - 60


def test_concurrent_claims_never_share_a_delivery(reopen: Callable[[], Store]) -> None:
    """Two processes' stores over one database (SKIP LOCKED / BEGIN IMMEDIATE)."""
    import threading

    a, b = reopen(), reopen()
    for n in range(40):
        a.add_alert(alert(n), ["slack"])
    got: list[str] = []
    lock = threading.Lock()

    def worker(s: Store) -> None:
        while tasks := s.claim_deliveries(3, 60, ["slack"]):
            with lock:
                got.extend(t.alert.id for t in tasks)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.close()
    b.close()
    assert sorted(got) == sorted(f"a{n}" for n in range(40))
