"""The queue seam's contract (``monitor.queue.base``): one body per behaviour, run over the
SQLite queue and the Kafka queue (Tansu on 127.0.0.1, ``tests/harness/kafka.py``).

Where the backends differ by design the test says so in one expression: SQLite dedupes a
key that is still waiting and deletes what is committed; Kafka keeps every record and
commits an offset, so a message finished after an unfinished one comes again with it.
RELIABILITY.md D07 (a poison item is dead-lettered after 5 attempts, later ones flow) is
the last test, through the real match stage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.engine.base import Hit, Matcher
from monitor.models import Item, Match, Watchlist
from monitor.queue.base import ALERTS, ITEMS, Message, Queue, Subscription
from monitor.queue.offsets import OffsetTracker
from monitor.queue.sqlite import SqliteQueue
from monitor.stages import match_batch
from tests.harness.kafka import SESSION_TIMEOUT, Broker
from tests.harness.subscriptions import settle as settle_for
from tests.harness.subscriptions import take

try:
    from monitor.queue.kafka_consumer import KafkaSubscription as KafkaLike
except ImportError:  # without kafka-python the Kafka half skips; SQLite still runs
    KafkaLike = type(None)  # type: ignore[assignment,misc]

pytestmark = pytest.mark.timeout(60)


@dataclass
class Backend:
    name: str
    queue: Queue

    @property
    def kafka(self) -> bool:
        return self.name == "kafka"


@pytest.fixture(params=["sqlite", "kafka"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "kafka":
        from monitor.queue.kafka import KafkaQueue

        broker: Broker = request.getfixturevalue("kafka_broker")
        queue: Queue = KafkaQueue(broker.bootstrap, prefix=request.getfixturevalue(
            "kafka_prefix"), partitions=1, timeout=5.0, session_timeout=SESSION_TIMEOUT)
        queue.ensure_topics()  # type: ignore[attr-defined]
    else:
        queue = SqliteQueue(tmp_path / "queue.db", lease=30.0)
    yield Backend(request.param, queue)
    queue.close()


def settle(sub: Subscription, seconds: float = 0.6) -> list[Message]:
    """Whatever else comes within ``seconds`` (expected: nothing). SQLite answers at once,
    so a moment is enough there; a Kafka fetch may still be on its way."""
    return settle_for(sub, seconds if isinstance(sub, KafkaLike) else 0.05)


def publish(queue: Queue, *keys: str, topic: str = ITEMS) -> None:
    queue.publish_many(topic, [(k, {"k": k}) for k in keys])


# --- publish / poll / commit -----------------------------------------------------------------

def test_published_messages_are_handed_out_in_order_and_gone_once_committed(
    backend: Backend,
) -> None:
    """Also: a key still waiting is skipped by SQLite (Kafka cannot dedupe: the repeat is
    deduplicated downstream by id), and a batch cut short (a stage that raised before it
    committed) is handed out again at the next poll, not when the subscriber restarts."""
    q = backend.queue
    assert q.publish_many(ITEMS, [(f"k{i}", {"n": i}) for i in range(3)]) == 3
    assert q.publish_many(ITEMS, [("k1", {"n": 9})]) == (1 if backend.kafka else 0)
    sub = q.subscribe(ITEMS)
    got = take(sub, 4 if backend.kafka else 3)
    assert [m.payload["n"] for m in got] == ([0, 1, 2, 9] if backend.kafka else [0, 1, 2])
    assert [m.key for m in got][:3] == ["k0", "k1", "k2"]
    assert {m.topic for m in got} == {ITEMS} and {m.attempts for m in got} == {1}
    sub.commit(got[:1])  # ...and the stage raised
    again = take(sub, len(got) - 1)
    assert [m.key for m in again] == [m.key for m in got[1:]]
    sub.commit(again)
    assert settle(sub) == []
    assert q.admin.depth(ITEMS) == 0
    sub.close()


def test_topics_are_separate(backend: Backend) -> None:
    """Each subscription on a thread of its own (so the two groups join at once)."""
    q = backend.queue
    publish(q, "i1")
    publish(q, "a1", topic=ALERTS)

    def read(topic: str) -> list[str]:
        sub = q.subscribe(topic)
        got = take(sub, 1)
        sub.commit(got)
        extra = settle(sub, 0.3)
        sub.close()
        return [m.key for m in got + extra]

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(read, [ITEMS, ALERTS])) == [["i1"], ["a1"]]


# --- redelivery -------------------------------------------------------------------------------

def test_out_of_order_completion_commits_only_the_contiguous_prefix(backend: Backend) -> None:
    """c then a finish before b: nothing may be committed past b, so when the subscriber
    goes without committing b, b comes again to the next one (on Kafka c and d too: their
    offsets lie beyond b's). Once the gap fills, everything is committed."""
    q = backend.queue
    publish(q, "a", "b", "c", "d")
    first = q.subscribe(ITEMS)
    a, _, c, _ = take(first, 4)
    first.commit([c])
    first.commit([a])
    assert q.admin.depth(ITEMS) == (3 if backend.kafka else 2)
    first.close()
    second = q.subscribe(ITEMS)
    again = {m.key: m for m in take(second, 3 if backend.kafka else 2)}
    assert sorted(again) == (["b", "c", "d"] if backend.kafka else ["b", "d"])
    second.commit([again["d"]])
    assert q.admin.depth(ITEMS) == (3 if backend.kafka else 1), "d waits for b"
    second.commit(list(again.values()))
    assert q.admin.depth(ITEMS) == 0
    assert settle(second) == []
    second.close()


# --- retry and dead letters ---------------------------------------------------------------------

def test_retry_comes_after_its_delay_then_dead_letters_with_its_reason_and_others_flow(
    backend: Backend,
) -> None:
    q = backend.queue
    publish(q, "bad", "good")
    sub = q.subscribe(ITEMS)
    bad, good = take(sub, 2)
    retried_at = time.monotonic()
    assert sub.retry(bad, delay=1.0, error="TimeoutError: slow", max_attempts=3) is False
    sub.commit([good])
    publish(q, "later")
    (later,) = take(sub, 1)
    assert later.key == "later", "a retry waiting does not hold up the topic"
    sub.commit([later])
    (again,) = take(sub, 1)
    assert time.monotonic() - retried_at >= 0.9, "not before its delay"
    assert again.key == "bad" and again.payload == {"k": "bad"} and again.attempts == 2
    assert sub.retry(again, delay=0.05, error="TypeError: boom", max_attempts=3) is False
    (last,) = take(sub, 1)
    assert last.key == "bad" and last.attempts == 3
    assert sub.retry(last, delay=0.05, error="TypeError: boom", max_attempts=3) is True
    assert settle(sub) == []
    assert q.admin.dead(ITEMS) == [("bad", "TypeError: boom")]
    assert q.admin.dead(ALERTS) == []
    assert q.admin.depth(ITEMS) == 0
    sub.close()


# --- the admin side, from other threads ---------------------------------------------------------

def test_depth_lag_and_dead_letters_are_read_from_other_threads(backend: Backend) -> None:
    q = backend.queue
    publish(q, "a", "b", "c")
    sub = q.subscribe(ITEMS)

    def look(_: int) -> tuple[int, int]:
        q.admin.ping()
        return q.admin.depth(ITEMS), q.admin.depth(ALERTS)

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(look, range(8))) == {(3, 0)}
        got = take(sub, 3)
        sub.commit(got[:1])
        assert set(pool.map(look, range(4))) == {(2, 0)}
        sub.commit(got[1:])
        assert set(pool.map(look, range(4))) == {(0, 0)}
        assert list(pool.map(lambda t: q.admin.dead(t), [ITEMS, ALERTS])) == [[], []]
    sub.close()


# --- Kafka only -----------------------------------------------------------------------------

def test_kafka_keeps_one_story_in_one_partition(kafka_broker: Broker, kafka_prefix: str) -> None:
    from monitor.queue.kafka import KafkaQueue

    q = KafkaQueue(kafka_broker.bootstrap, prefix=kafka_prefix, partitions=3,
                   session_timeout=SESSION_TIMEOUT)
    q.ensure_topics()
    rows = [(f"story{n % 4}", {"n": n}) for n in range(12)]
    assert q.publish_many(ITEMS, rows) == 12
    sub = q.subscribe(ITEMS)
    got = take(sub, 12)
    partitions: dict[str, set[int]] = {}
    for m in got:
        partitions.setdefault(m.key, set()).add(m.receipt[0].partition)
    assert all(len(p) == 1 for p in partitions.values()), partitions
    for key in partitions:
        assert [m.payload["n"] for m in got if m.key == key] == sorted(
            m.payload["n"] for m in got if m.key == key), "in order within a story"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "spread over partitions"
    sub.commit(got)
    assert q.admin.depth(ITEMS) == 0
    sub.close()
    q.close()


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)  # SQLite's is thread-safe
def test_kafka_subscription_belongs_to_one_thread(backend: Backend) -> None:
    sub = backend.queue.subscribe(ITEMS)
    sub.poll(1, timeout=0)
    failed: list[BaseException] = []
    other = threading.Thread(target=lambda: _catch(failed, lambda: sub.poll(1)))
    other.start()
    other.join()
    assert failed and "second thread" in str(failed[0])
    sub.close()


def _catch(into: list[BaseException], fn: Any) -> None:
    try:
        fn()
    except BaseException as exc:
        into.append(exc)


def test_offset_tracker_commits_the_highest_contiguous_finished_offset() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for offset in (5, 6, 8, 9):  # 7 is a gap (a transaction marker, say): never handed out
        assert t.handed_out("p", offset)
    t.finish("p", 6)
    assert t.committable() == {}, "5 is unfinished"
    assert t.unfinished() == {"p": 5}
    t.finish("p", 5)
    t.finish("p", 9)
    assert t.committable() == {"p": 7}
    t.committed({"p": 7})
    assert t.unfinished() == {"p": 8}
    assert not t.handed_out("p", 6), "already committed"
    assert not t.handed_out("p", 9), "finished: a rewind does not hand it out again"
    t.finish("p", 8)
    assert t.committable() == {"p": 10}


# --- D07: a poison item through the match stage --------------------------------------------------

class _Matcher(Matcher):
    """Every item hits watchlist ``w``; an item titled "poison" breaks the matcher."""

    watchlists = (Watchlist("w", ()),)

    def find(self, item: Item) -> list[Match]:
        return []

    def match(self, item: Item) -> list[Hit]:
        if item.title == "poison":
            raise ValueError("matcher broke on this item")
        return [Hit(self.watchlists[0], ())]


def test_d07_poison_item_is_dead_lettered_after_5_attempts_and_later_items_flow(
    backend: Backend,
) -> None:
    q = backend.queue
    q.publish_many(ITEMS, [("poison", {"id": "p", "title": "poison"}),
                           *((f"k{n}", {"id": f"i{n}", "title": f"story {n}"}) for n in range(3))])
    items, matcher = q.subscribe(ITEMS), _Matcher()
    alerts = 0
    end = time.monotonic() + 30
    while (alerts < 3 or q.admin.depth(ITEMS)) and time.monotonic() < end:
        alerts += match_batch(items, q, lambda: matcher, timeout=0.3, retry_delay=0.05)[1]
    q.publish_many(ITEMS, [("k9", {"id": "i9", "title": "story 9"})])
    while alerts < 4 and time.monotonic() < end:
        alerts += match_batch(items, q, lambda: matcher, timeout=0.3, retry_delay=0.05)[1]
    assert q.admin.dead(ITEMS) == [("poison", "ValueError: matcher broke on this item")]
    assert alerts == 4, "every other item, before and after the poison, alerted once"
    assert q.admin.depth(ITEMS) == 0
    assert q.admin.depth(ALERTS) == 4, "one alert each, waiting for intake"
    items.close()


# --- a broker that does not answer -----------------------------------------------------------

def test_kafka_unreachable_broker_fails_publish_and_health_then_recovers(
    kafka_broker: Broker, kafka_prefix: str, tmp_path: Path
) -> None:
    """Nothing listens yet: a publish raises StoreError (a ServiceUnavailable, so a poll
    keeps its cursor) within the timeout, and health is failing. Once a broker answers on
    that address, the same queue publishes and health is ok again."""
    from monitor.config import Config
    from monitor.errors import ServiceUnavailable, StoreError
    from monitor.health import health
    from monitor.queue.kafka import KafkaQueue
    from monitor.store.sqlite import SqliteStore

    later = Broker(kafka_broker.binary)  # its port is chosen, nothing listens there yet
    q = KafkaQueue(later.bootstrap, prefix=kafka_prefix, partitions=1, timeout=1.0,
                   session_timeout=SESSION_TIMEOUT)
    store = SqliteStore(tmp_path / "s.db")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            publish(q, "k")
        assert isinstance(failed.value, ServiceUnavailable)
        assert time.monotonic() - started < 5, "bounded by queue.timeout"
        with pytest.raises(ServiceUnavailable):
            q.admin.ping()
        report = health(Config(), store, q.admin, [], {})
        assert report["status"] == "failing"
        assert any(r.startswith("queue: Kafka 127.0.0.1:") for r in report["reasons"])

        later.start()
        q.ensure_topics()
        publish(q, "k")
        assert q.admin.depth(ITEMS) == 1
        assert health(Config(), store, q.admin, [], {})["status"] == "ok"
    finally:
        q.close()
        store.close()
        later.stop()
