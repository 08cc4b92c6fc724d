"""Contract tests for the Queue: one body per behaviour, run over every backend. (The
Store's contract tests are in tests/test_store_contract.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.queue.base import ITEMS, Queue
from monitor.queue.sqlite import SqliteQueue


@pytest.fixture(params=["sqlite"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    q = SqliteQueue(tmp_path / "queue.db")
    yield q
    q.close()


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


def _open_at(path: str, start: float) -> str:
    while time.time() < start:
        pass
    try:
        SqliteQueue(Path(path)).close()
    except Exception as exc:  # reported back to the test, which names it
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_processes_creating_one_queue_file_at_once_all_open_it(tmp_path: Path) -> None:
    """Seen in CI: two ``db upgrade`` at once, one failed "database is locked". Switching a
    fresh file to WAL is a read then a write, and SQLite refuses one of two such
    processes at once, without waiting. Before the fix half of these rounds failed."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(4) as pool:
        for round_ in range(40):
            start = time.time() + 0.05
            path = str(tmp_path / f"q{round_}.db")
            results = [pool.apply_async(_open_at, (path, start)) for _ in range(4)]
            errors = [e for e in (r.get(timeout=60) for r in results) if e]
            assert not errors, f"round {round_}: {errors}"
